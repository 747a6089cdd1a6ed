"""Sign-in with a real OpenID provider (zitadel OIDC, tests/support/oidcprovider.py)
through the runtime on uvicorn (HTTPS, loopback): code flow with PKCE, a replayed state,
a wrong nonce, a tampered ID token, e-mail linking only when verified, registration rules.
"""

from __future__ import annotations

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from tests.support.identity import csrf, open_invitation, submit
from tests.support.oidc import ALICE, CAROL, MALLORY, oidc_portal, provider_sign_in, start


def test_sign_up_with_the_provider_then_sign_in_and_out(tmp_path: Path) -> None:
    with oidc_portal(tmp_path) as (p, idp), p.browser() as visitor:
        back = provider_sign_in(start(visitor), ALICE)
        done = visitor.get(back)
        assert done.status_code == 303 and done.headers["location"] == "/profile", done.text
        for token_word in ("access_token", "id_token", "code_verifier"):
            assert token_word not in visitor.cookies.get("__Host-portico-session", "")
        profile = visitor.get("/profile")
        assert "alice@contoso.com" in profile.text and 'value="Alice"' in profile.text
        # The identity is linked by (issuer, subject): a second sign-in finds the same contact.
        visitor.cookies.clear()
        again = visitor.get(provider_sign_in(start(visitor), ALICE))
        assert again.status_code == 303
        assert "alice@contoso.com" in visitor.get("/profile").text
        # Sign-out ends the session here and sends the browser to the provider's logout.
        out = visitor.post("/signout", data={"csrf": csrf(visitor.get("/profile"))})
        assert out.status_code == 303 and out.headers["location"].startswith(idp.issuer)
        assert "client_id=web" in out.headers["location"]
        assert visitor.get("/profile").status_code == 303


def test_a_replayed_state_is_refused(tmp_path: Path) -> None:
    with oidc_portal(tmp_path) as (p, _), p.browser() as visitor:
        back = provider_sign_in(start(visitor), ALICE)
        assert visitor.get(back).status_code == 303
        visitor.cookies.clear()
        replay = visitor.get(back)
        assert replay.status_code == 400 and "Start again" in replay.text
        assert visitor.get("/profile").status_code == 303


def test_a_wrong_nonce_is_refused(tmp_path: Path) -> None:
    with oidc_portal(tmp_path) as (p, _), p.browser() as visitor:
        back = provider_sign_in(start(visitor), ALICE, tamper={"nonce": "not-the-session-nonce"})
        refused = visitor.get(back)
        assert refused.status_code == 400 and "could not be completed" in refused.text
        assert visitor.get("/profile").status_code == 303


class TamperingProxy(BaseHTTPRequestHandler):
    """A forward proxy (HTTP_PROXY) that changes one claim of every ID token it carries,
    keeping the signature: a provider never sends that, so it is made here."""

    def do_GET(self) -> None:
        self._forward()

    def do_POST(self) -> None:
        self._forward()

    def _forward(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else None
        headers = {
            k: v
            for k, v in self.headers.items()
            if k.lower() not in ("host", "proxy-connection", "connection")
        }
        with httpx.Client(trust_env=False) as client:
            answer = client.request(self.command, self.path, headers=headers, content=body)
        content = answer.content
        if self.path.rstrip("/").endswith("/oauth/token"):
            data = answer.json()
            head, payload, signature = data["id_token"].split(".")
            claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
            claims["sub"] = "someone-else"
            forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
            data["id_token"] = f"{head}.{forged}.{signature}"
            content = json.dumps(data).encode()
        self.send_response(answer.status_code)
        self.send_header("Content-Type", answer.headers.get("content-type", "application/json"))
        self.send_header("Content-Length", str(len(content)))
        self.end_headers()
        self.wfile.write(content)

    def log_message(self, *args: object) -> None:
        pass


def test_a_tampered_id_token_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    proxy = ThreadingHTTPServer(("127.0.0.1", 0), TamperingProxy)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    try:
        with oidc_portal(tmp_path) as (p, _), p.browser() as visitor:
            location = start(visitor)  # discovery fetched directly
            monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy.server_address[1]}")
            monkeypatch.setenv("NO_PROXY", "")
            refused = visitor.get(provider_sign_in(location, ALICE))
            assert refused.status_code == 400 and "not genuine" in refused.text
            assert visitor.get("/profile").status_code == 303
    finally:
        proxy.shutdown()


def test_an_unverified_email_never_takes_over_an_existing_contact(tmp_path: Path) -> None:
    with oidc_portal(tmp_path) as (p, _):
        with p.browser() as ada:
            fields = {"email": "ada@example.com", "password": "a long enough password"}
            assert submit(ada, "/signup", fields).status_code == 303
        with p.browser() as mallory:
            refused = mallory.get(provider_sign_in(start(mallory), MALLORY))
            assert refused.status_code == 409 and "has not verified" in refused.text
            assert mallory.get("/profile").status_code == 303


def test_a_verified_email_links_to_the_existing_contact(tmp_path: Path) -> None:
    with oidc_portal(tmp_path, "Disabled") as (p, _):
        p.reconfigure(authentication={**p.config["authentication"], "registration": "Open"})
        with p.browser() as alice:
            fields = {"email": "alice@contoso.com", "password": "a long enough password"}
            assert submit(alice, "/signup", fields).status_code == 303
        p.reconfigure(authentication={**p.config["authentication"], "registration": "Disabled"})
        with p.browser() as alice:
            # Registration is off, but Alice has a contact: her verified e-mail links it.
            assert alice.get(provider_sign_in(start(alice), ALICE)).status_code == 303
            assert "alice@contoso.com" in alice.get("/profile").text
        with p.browser() as carol:  # no contact, registration off: refused with the reason
            refused = carol.get(provider_sign_in(start(carol), CAROL))
            assert (
                refused.status_code == 403 and "does not accept new registrations" in refused.text
            )


def test_invitation_only_sign_up_with_the_provider_needs_the_code(tmp_path: Path) -> None:
    with oidc_portal(tmp_path, "InvitationOnly") as (p, _):
        p.invitations.codes["abc"] = ("Valid", ["Partner"])
        with p.browser() as carol:
            refused = carol.get(provider_sign_in(start(carol), CAROL))
            assert refused.status_code == 403 and "need an invitation" in refused.text
        with p.browser() as carol:
            assert open_invitation(carol, "abc").status_code == 200
            assert carol.get(provider_sign_in(start(carol), CAROL)).status_code == 303
            assert "<li>Partner</li>" in carol.get("/profile").text


def test_web_roles_from_verified_domains(tmp_path: Path) -> None:
    roles = [{"name": "Staff", "members": {"emailDomains": ["contoso.com"]}}]
    with oidc_portal(tmp_path, webRoles=roles) as (p, _), p.browser() as alice:
        alice.get(provider_sign_in(start(alice), ALICE))
        assert "<li>Staff</li>" in alice.get("/profile").text


def test_private_site_admits_a_verified_allowed_domain_and_refuses_another(
    tmp_path: Path,
) -> None:
    private = {"mode": "Private", "allow": {"emailDomains": ["contoso.com"]}}
    with oidc_portal(tmp_path, visibility=private) as (p, _):
        with p.browser() as stranger:
            assert stranger.get("/").status_code == 303
        with p.browser() as alice:  # alice@contoso.com, verified by the provider
            assert alice.get(provider_sign_in(start(alice), ALICE)).status_code == 303
            assert alice.get("/").status_code == 200
        with p.browser() as carol:  # carol@fabrikam.com
            assert carol.get(provider_sign_in(start(carol), CAROL)).status_code == 303
            refused = carol.get("/")
            assert refused.status_code == 403 and "carol@fabrikam.com" in refused.text
