"""Content pages served from the instance: lists, items, search and paging, in the visitor's
language, escaped, and gated by web roles on the server. The instance is the stand-in on
loopback; the runtime is the real app (its lifespan, its one httpx client)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from portico_runtime import jobs, web
from portico_runtime.config import Reader, parse
from portico_runtime.content import gate, kinds
from portico_runtime.visitor import AUTHENTICATED, Contact
from portico_standin import content as standin_content
from portico_standin.content import Content, Item
from portico_standin.state import InstanceState, store
from tests.support.content import as_contact, with_visitors
from tests.support.runtime import (
    credentials,
    portal_json,
    running_instance,
    write_config,
)

# --- the gate, pure ---------------------------------------------------------------------


def test_an_item_without_roles_is_for_everyone() -> None:
    assert gate.may_read([], frozenset())
    assert gate.may_read([], frozenset({AUTHENTICATED}))


def test_an_item_with_roles_needs_one_of_them() -> None:
    assert not gate.may_read(["Partners"], frozenset())
    assert not gate.may_read(["Partners"], frozenset({AUTHENTICATED}))
    assert gate.may_read(["Partners", "Staff"], frozenset({AUTHENTICATED, "Staff"}))
    assert gate.may_read([AUTHENTICATED], frozenset({AUTHENTICATED}))


def test_the_visitor_roles() -> None:
    assert gate.roles_of(None) == frozenset()
    contact = Contact("c", "a@b", roles=frozenset({AUTHENTICATED, "Staff"}))
    assert gate.roles_of(contact) == {AUTHENTICATED, "Staff"}


@pytest.mark.parametrize("item", [{"webRoles": "Staff"}, {"webRoles": [1]}, "x", None])
def test_malformed_roles_read_as_nobody_not_everyone(item: Any) -> None:
    assert not gate.readable(item, frozenset({AUTHENTICATED, "Staff"}))


def test_a_template_without_forums_has_no_forum_pages() -> None:
    from portico.core.features import features

    assert kinds.offered(tuple(features("Partner"))) == (kinds.ARTICLES,)
    assert kinds.offered(tuple(features("Community"))) == kinds.KINDS
    assert kinds.offered(tuple(features("Custom"))) == ()


# --- the runtime against the stand-in ----------------------------------------------------


def provisioned(tmp: Path, url: str, example: str) -> dict[str, Any]:
    config = portal_json(example, url, credentials(tmp))
    config["languages"] = ["en-US", "de-DE", "fr-FR"]
    jobs.provision(parse(config))
    return config


@pytest.fixture
def community(tmp_path: Path) -> Iterator[tuple[TestClient, InstanceState, dict[str, Any]]]:
    with running_instance() as (url, state):
        config = provisioned(tmp_path, url, "customer-community.yaml")
        app = with_visitors(web.create_app(Reader(write_config(tmp_path, config))))
        with TestClient(app) as client:
            yield client, state, config


def key(config: dict[str, Any]) -> str:
    return f"{config['portal']['namespace']}/{config['portal']['name']}"


def test_provision_installs_sample_content_in_every_language(tmp_path: Path) -> None:
    with running_instance() as (url, state):
        config = provisioned(tmp_path, url, "customer-community.yaml")
        items = store(state, Content).of(key(config))
        assert {(k, lang) for k, _, lang in items} == {
            (kind, lang)
            for kind in ("articles", "blogposts", "forumthreads")
            for lang in ("en-US", "de-DE", "fr-FR")
        }
        again = jobs.provision(parse(config))  # a second run installs the same items
        assert "sample content" in again and len(store(state, Content).of(key(config))) == len(
            items
        )
        partner = provisioned(tmp_path, url, "partner-partner.yaml")
        assert {k for k, _, _ in store(state, Content).of(key(partner))} == {"articles"}


def test_article_list_and_page(community: Any) -> None:
    client, _, _ = community
    listing = client.get("/knowledge")
    assert listing.status_code == 200
    assert '<a href="/knowledge/KA-01001">How to reset your password</a>' in listing.text
    page = client.get("/knowledge/KA-01001")
    assert page.status_code == 200
    assert "<h1>How to reset your password</h1>" in page.text
    assert "<p>The link is valid for one hour.</p>" in page.text  # paragraphs kept
    assert client.get("/knowledge/KA-99999").status_code == 404


def test_blog_posts_and_forum_threads(community: Any) -> None:
    client, _, _ = community
    assert "Welcome to our community" in client.get("/blogs").text
    assert "<h1>Welcome to our community</h1>" in client.get("/blogs/BP-0001").text
    assert "Password reset e-mail does not arrive" in client.get("/forums").text
    assert client.get("/forums/FT-0001").status_code == 200


def test_pages_are_in_the_visitors_language(community: Any) -> None:
    client, _, _ = community
    page = client.get("/knowledge/KA-01001", headers={"Accept-Language": "de"})
    assert page.headers["content-language"] == "de-DE"
    assert '<html lang="de-DE">' in page.text
    assert "<h1>So setzen Sie Ihr Kennwort zurück</h1>" in page.text
    assert "Wissensdatenbank" in page.text
    fr = client.get("/search?q=mot", headers={"Accept-Language": "fr-FR"})
    assert "Réinitialiser votre mot de passe" in fr.text and "résultats pour" in fr.text


def test_the_gate_hides_role_content_from_anonymous_visitors(community: Any) -> None:
    client, _, _ = community
    assert "Warranty terms" not in client.get("/knowledge").text
    assert client.get("/knowledge/KA-01003").status_code == 404
    assert "Warranty" not in client.get("/search?q=warranty").text
    signed_in = as_contact("c-1")
    assert "Warranty terms" in client.get("/knowledge", headers=signed_in).text
    page = client.get("/knowledge/KA-01003", headers=signed_in)
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"


def test_the_runtime_gates_even_when_the_instance_does_not(
    community: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    client, state, config = community
    # A fault no honest instance produces: it ignores the roles it is given.
    monkeypatch.setattr(standin_content, "readable", lambda item, roles: True)
    item = Item("articles", "KA-STAFF", "Staff only", "secret plan", "en-US", ("Staff",))
    store(state, Content).put(key(config), item)
    assert "Staff only" not in client.get("/knowledge").text
    assert client.get("/knowledge/KA-STAFF", headers=as_contact("c-1")).status_code == 404
    assert "Staff only" not in client.get("/search?q=staff", headers=as_contact("c-1")).text
    staff = as_contact("c-2", "s@example.com", "Staff")
    assert client.get("/knowledge/KA-STAFF", headers=staff).status_code == 200


def test_content_from_the_instance_is_escaped(community: Any) -> None:
    client, state, config = community
    evil = Item(
        "articles", "KA-X", "<script>alert(1)</script>", "<img src=x onerror=alert(2)>", "en-US"
    )
    store(state, Content).put(key(config), evil)
    page = client.get("/knowledge/KA-X")
    assert "<script>alert(1)" not in page.text and "<img src=x" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    search = client.get('/search?q="><script>')
    assert '"><script>' not in search.text


def test_search_results_and_paging(community: Any) -> None:
    client, state, config = community
    for n in range(23):
        item = Item("articles", f"KA-P{n:02}", f"Printer guide {n}", "printer setup", "en-US")
        store(state, Content).put(key(config), item)
    first = client.get("/search?q=printer")
    assert first.status_code == 200
    assert "23 results for “printer”" in first.text
    assert first.text.count('<a href="/knowledge/KA-P') == 10
    assert "Page 1 of 3" in first.text and 'rel="next" href="?q=printer&amp;page=2"' in first.text
    assert 'rel="prev"' not in first.text
    last = client.get("/search?q=printer&page=3")
    assert last.text.count('<a href="/knowledge/KA-P') == 3
    assert '<ol class="results" start="21">' in last.text and 'rel="next"' not in last.text
    nothing = client.get("/search?q=zebra")
    assert "Nothing found for “zebra”." in nothing.text
    empty = client.get("/search")
    assert empty.status_code == 200 and 'role="search"' in empty.text


def test_a_template_without_forums_or_blogs_serves_no_such_pages(tmp_path: Path) -> None:
    with running_instance() as (url, _):
        config = provisioned(tmp_path, url, "partner-partner.yaml")
        with TestClient(web.create_app(Reader(write_config(tmp_path, config)))) as client:
            assert client.get("/knowledge").status_code == 200
            assert client.get("/forums").status_code == 404
            assert client.get("/blogs/BP-0001").status_code == 404
            assert 'href="/forums"' not in client.get("/knowledge").text


def test_an_unreachable_instance_is_a_page_not_an_error(tmp_path: Path) -> None:
    config = portal_json("customer-community.yaml", "http://127.0.0.1:1", credentials(tmp_path))
    with TestClient(web.create_app(Reader(write_config(tmp_path, config)))) as client:
        page = client.get("/knowledge/KA-01001")
        assert page.status_code == 503 and page.headers["retry-after"] == "30"
        assert "Temporarily unavailable" in page.text


def test_pages_are_accessible_landmarks(community: Any) -> None:
    client, _, _ = community
    page = client.get("/search?q=password").text
    for landmark in (
        '<main id="main">',
        '<a class="skip" href="#main">',
        'aria-label="Main"',
        '<label for="site-q">',
        'role="status"',
        'aria-current="page"',
    ):
        assert landmark in page


def test_the_instance_api_never_follows_redirects(tmp_path: Path) -> None:
    """A redirect could carry the portal's token to another origin: it is an error."""
    import asyncio
    import http.server
    import threading

    from portico_dev.procs import free_port
    from portico_runtime.client import InstanceError
    from portico_runtime.instance_api import InstanceAPI

    seen: list[str] = []

    class Redirect(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.path)
            self.send_response(302)
            self.send_header("Location", "http://127.0.0.2:9/steal")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    port = free_port()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Redirect)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        config = parse(
            portal_json(
                "customer-community.yaml", f"http://127.0.0.1:{port}", credentials(tmp_path)
            )
        )

        async def call() -> None:
            api = InstanceAPI()
            try:
                with pytest.raises(InstanceError, match="HTTP 302"):
                    await api.get(config, "/portico/v1/instance")
            finally:
                await api.close()

        asyncio.run(call())
        assert seen == ["/portico/v1/instance"]
    finally:
        server.shutdown()
