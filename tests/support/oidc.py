"""A portal signing in with the real OpenID provider (tests/support/oidcprovider.py): the
users it knows, a portal wired to it, and the provider's own sign-in as a browser does it
(on loopback, or at an address the browser reaches on loopback: see `Resolving`)."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import httpx

from portico_dev.procs import free_port
from tests.support import oidcprovider
from tests.support.identity import Portal, portal
from tests.support.oidcprovider import User

ALICE = User("u1", "alice", "alice-password", "alice@contoso.com", True, "Alice", "Anders")
MALLORY = User("u2", "mallory", "mallory-password", "ada@example.com", False, "Mal", "Lory")
CAROL = User("u3", "carol", "carol-password", "carol@fabrikam.com", True, "Carol", "C")


@contextmanager
def oidc_portal(
    tmp: Path,
    registration: str = "Open",
    provider_tls: tuple[Path, Path] | None = None,
    **changes: object,
) -> Iterator[tuple[Portal, oidcprovider.Provider]]:
    """A portal with the provider `zitadel`: http://localhost:PORT/, or over HTTPS at
    https://127.0.0.1:PORT/ with PROVIDER_TLS = (certificate, key)."""
    port, idp_port = free_port(), free_port()
    callback = f"https://127.0.0.1:{port}/auth/zitadel/callback"
    issuer = f"https://127.0.0.1:{idp_port}/" if provider_tls else ""
    users = [ALICE, MALLORY, CAROL]
    with oidcprovider.provider(
        tmp, users, [callback], port=idp_port, issuer=issuer, tls=provider_tls
    ) as idp:
        secret = tmp / "client-secret"
        secret.write_text(idp.client_secret)
        provider = {
            "name": "zitadel",
            "issuer": idp.issuer,
            "clientId": idp.client_id,
            "clientSecretFile": str(secret),
        }
        auth = {"localSignIn": True, "registration": registration, "identityProviders": [provider]}
        with portal(tmp, port=port, authentication=auth, **changes) as p:
            yield p, idp


class Resolving(httpx.HTTPTransport):
    """A browser whose name resolution sends ADDRESS (host:port) to 127.0.0.1 at the same
    port, as an /etc/hosts line would: the URL, Host header, TLS server name and the
    certificate's name check stay ADDRESS's. For an issuer at the real node's address,
    which a relay joins to the same port on the host's loopback."""

    def __init__(self, address: str, verify: ssl.SSLContext) -> None:
        super().__init__(verify=verify)
        self.address = address

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.netloc.decode() == self.address:
            request.extensions = {**request.extensions, "sni_hostname": request.url.host}
            request.url = request.url.copy_with(host="127.0.0.1")
        return super().handle_request(request)


def provider_sign_in(
    authorize_url: str,
    user: User,
    tamper: dict[str, str] | None = None,
    *,
    verify: ssl.SSLContext | None = None,
    transport: httpx.BaseTransport | None = None,
) -> str:
    """What a person does at the provider: open the authorization URL, fill in the login
    form; returns the URL the provider sends them back to (the runtime's callback), the
    first address off the provider's origin. VERIFY: the CA the browser trusts for an
    HTTPS provider; TRANSPORT: how the browser reaches it (see `Resolving`)."""
    if tamper:
        parts = urlsplit(authorize_url)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        query.update(tamper)
        authorize_url = urlunsplit(parts._replace(query=urlencode(query)))
    provider = httpx.URL(authorize_url)
    with httpx.Client(
        follow_redirects=False,
        timeout=30,
        trust_env=False,
        verify=verify if verify is not None else True,
        transport=transport,
    ) as browser:
        login = browser.get(authorize_url)
        assert login.status_code == 302, login.text
        login_url = httpx.URL(authorize_url).join(login.headers["location"])
        auth_request = parse_qs(login_url.query.decode())["authRequestID"][0]
        assert browser.get(login_url).status_code == 200
        done = browser.post(
            login_url.copy_with(query=None),
            data={"id": auth_request, "username": user.username, "password": user.password},
        )
        assert done.status_code == 302, done.text
        nxt = login_url.join(done.headers["location"])
        while (nxt.scheme, nxt.netloc) == (provider.scheme, provider.netloc):
            step = browser.get(nxt)
            assert step.status_code in (302, 303), step.text
            nxt = nxt.join(step.headers["location"])
        return str(nxt)


def start(visitor: httpx.Client) -> str:
    page = visitor.get("/signin")
    assert 'href="/auth/zitadel/signin"' in page.text
    redirect = visitor.get("/auth/zitadel/signin")
    assert redirect.status_code in (302, 303, 307), redirect.text
    location = redirect.headers["location"]
    query = parse_qs(urlsplit(location).query)
    assert query["code_challenge_method"] == ["S256"] and query["code_challenge"]
    assert query["state"] and query["nonce"] and "openid" in query["scope"][0]
    return location
