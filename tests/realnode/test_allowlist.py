"""An IP allow-list as visitors see it, over real HTTP through Traefik on the real node:
two clients inside the node's network, one from an allowed address and one from another,
get the portal (200) and the page server's 403 page; a forged X-Forwarded-For does not
let the blocked one in, the runtime's own 403 pages reach the allowed one untouched, and
an emptied list opens the site again."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from portico.core import names
from tests.support.controlplane import BASE_DOMAIN, Cluster, Operator, fresh_namespace, wait_for
from tests.support.portals import portal
from tests.support.realnode import Answer, Instance, PageServer, RealCluster, fetch_from, until

READY_TIMEOUT = 240.0
ALLOWED, BLOCKED = "127.0.0.2", "127.0.0.3"  # two clients on the node's loopback


@pytest.fixture(scope="module")
def namespace(
    real_cluster: RealCluster, operator: Operator, page_server: PageServer
) -> Iterator[str]:
    with fresh_namespace(real_cluster.plane, "allow") as name:
        yield name


def _ranges(real_cluster: RealCluster, namespace: str, ranges: list[str]) -> None:
    patch = {"spec": {"access": {"allowedSourceRanges": ranges}}}
    real_cluster.kubectl(
        "patch", "portal", "office", "-n", namespace, "--type=merge", "-p", json.dumps(patch)
    )


def test_an_allowed_address_gets_the_portal_and_another_the_403_page(
    real_cluster: RealCluster, namespace: str, crm: Instance
) -> None:
    cluster = Cluster(real_cluster.plane)
    subdomain = f"office-{namespace}"
    host = f"{subdomain}.{BASE_DOMAIN}"
    body = portal(
        "office", namespace, crm.name, subdomain=subdomain, displayName="Contoso Office",
        additionalLanguages=["de-DE"],
    )  # fmt: skip
    body["spec"]["access"] = {"allowedSourceRanges": [f"{ALLOWED}/32", "2001:db8::/32"]}
    cluster.apply(body)
    cluster.wait_phase(namespace, "office", "Ready", timeout=READY_TIMEOUT)
    middleware = cluster.get("middleware.traefik.io", names.allowlist_name("office"), namespace)
    assert middleware is not None, "Traefik's allow-list Middleware"

    def allowed() -> Answer | None:
        answer = fetch_from(real_cluster.node, ALLOWED, host)
        return answer if answer.status == 200 and "Contoso Office" in answer.body else None

    def blocked(source: str, headers: dict[str, str] | None = None) -> Answer | None:
        answer = fetch_from(real_cluster.node, source, host, headers)
        page = "von Ihrer Netzwerkadresse aus nicht erreichbar" in answer.body
        return answer if answer.status == 403 and page else None

    german = {"Accept-Language": "de-DE"}
    until("the portal from the allowed address", allowed, timeout=120)
    # Traefik's own route (its ipAllowList and the errors Middleware), not the page server's
    # fallback: the runtime answers the allowed client, so the route is applied.
    page = until("the 403 page from the other address", lambda: blocked(BLOCKED, german), 60)
    assert "<h1>Contoso Office</h1>" in page.body and page.headers["cache-control"] == "no-store"
    assert "frame-ancestors 'none'" in page.headers.get("content-security-policy", "")
    # What the blocked client says of itself changes nothing.
    forged = blocked(BLOCKED, {**german, "X-Forwarded-For": ALLOWED, "X-Real-Ip": ALLOWED})
    assert forged is not None, "a forged X-Forwarded-For must not pass the list"
    # The runtime's own 403 (a form without its CSRF token) reaches the allowed client as
    # the runtime wrote it: only the allow-list's refusals become the page.
    own = fetch_from(real_cluster.node, ALLOWED, host, method="POST", path="/signin", form="a=b")
    assert own.status == 403 and "This form has expired" in own.body, own
    assert "network address" not in own.body
    # Several requests each way, all answered the same.
    for _ in range(5):
        assert allowed() is not None
        assert blocked(BLOCKED, german) is not None

    _ranges(real_cluster, namespace, [])
    wait_for(
        "the Middleware pruned",
        lambda: (
            cluster.get("middleware.traefik.io", names.allowlist_name("office"), namespace) is None
        ),
        timeout=120,
    )

    def open_again() -> Answer | None:
        answer = fetch_from(real_cluster.node, BLOCKED, host)
        return answer if answer.status == 200 and "Contoso Office" in answer.body else None

    until("the portal from any address once the list is emptied", open_again, timeout=60)
