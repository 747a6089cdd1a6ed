"""A runtime with sign-in, served by uvicorn over HTTPS on loopback, against the stand-in
instance (also on loopback) with its real invitations capability, codes seeded into it."""

from __future__ import annotations

import datetime
import ipaddress
import re
import secrets
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from starlette.applications import Starlette

from portico_dev.procs import free_port
from portico_runtime import web
from portico_runtime.config import Reader
from portico_standin import app as standin_app
from portico_standin.invitations import Invitation, Invitations, code_hash
from portico_standin.state import InstanceState, store
from tests.support.runtime import TOKEN, credentials, portal_json, write_config


class SeededCodes:
    """Invitation codes put straight into the stand-in's own invitations capability (what
    the operator does over its API), read back through the same rules the runtime meets:
    `codes[code] = (state, webRoles)` with state Valid, Used, Expired or Revoked."""

    def __init__(self, state: InstanceState, portal: str) -> None:
        self.store = store(state, Invitations)
        self.portal = portal

    def __setitem__(self, code: str, value: tuple[str, list[str]]) -> None:
        kind, roles = value
        now = datetime.datetime.now(datetime.UTC)
        seeded = Invitation(id=code_hash(code)[7:23], code_hash=code_hash(code))
        seeded.web_roles = tuple(roles)
        if kind == "Expired":
            seeded.expires_at = now - datetime.timedelta(minutes=1)
        seeded.revoked = kind == "Revoked"
        if kind == "Used":
            seeded.redemptions["someone-else"] = now.isoformat()
        with self.store.lock:
            self.store.by_portal.setdefault(self.portal, {})[seeded.id] = seeded

    def __getitem__(self, code: str) -> tuple[str, list[str]]:
        with self.store.lock:
            found = self.store.find(self.portal, code)
            if found is None:
                raise KeyError(code)
            reason = found.refusal("", datetime.datetime.now(datetime.UTC))
            return reason or "Valid", list(found.web_roles)

    def update(self, codes: dict[str, tuple[str, list[str]]]) -> None:
        for code, value in codes.items():
            self[code] = value


class _Raced(Invitation):
    """A code someone else redeems between this visitor's check and their redemption:
    valid to look at, used by the time it is redeemed."""

    def refusal(self, contact: str, now: datetime.datetime) -> str:
        return "Used" if contact else super().refusal(contact, now)


class LostRaces:
    """`lost_race.add(code)`: the next redemption of CODE loses the race (see _Raced)."""

    def __init__(self, codes: SeededCodes) -> None:
        self.codes = codes

    def add(self, code: str) -> None:
        with self.codes.store.lock:
            found = self.codes.store.find(self.codes.portal, code)
            assert found is not None, "seed the code first"
            found.__class__ = _Raced


class SeededInvitations:
    """The portal's invitations at the stand-in: `codes` to seed, `undo_all()` to take
    every redemption back (as `spec.undoRedemptions` does through the operator)."""

    def __init__(self, state: InstanceState, portal: str) -> None:
        self.codes = SeededCodes(state, portal)
        self.lost_race = LostRaces(self.codes)

    def undo_all(self) -> None:
        with self.codes.store.lock:
            for invitation in self.codes.store.by_portal.get(self.codes.portal, {}).values():
                invitation.redemptions.clear()


def certificate(tmp: Path, *addresses: str) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, localhost and ADDRESSES (more IPs): the
    runtime's or a stand-in server's HTTPS, and the CA a client trusts for it."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "portal.test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("localhost"),
                    *(x509.IPAddress(ipaddress.ip_address(a)) for a in ("127.0.0.1", *addresses)),
                ]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp / "tls.crt", tmp / "tls.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@contextmanager
def serving(app: Any, port: int | None = None, **ssl_files: str) -> Iterator[int]:
    port = port or free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", **ssl_files)  # type: ignore[arg-type]
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.02)
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(10)


@dataclass
class Portal:
    url: str
    config_path: Path
    config: dict[str, Any]
    state: InstanceState
    invitations: SeededInvitations
    verify: ssl.SSLContext
    tmp: Path

    def browser(self) -> httpx.Client:
        """A visitor: its own cookie jar, no redirects followed (tests look at each step)."""
        return httpx.Client(
            base_url=self.url, verify=self.verify, follow_redirects=False, timeout=30
        )

    def reconfigure(self, **changes: Any) -> None:
        import json
        import os

        self.config.update(changes)
        self.config_path.write_text(json.dumps(self.config))
        os.utime(self.config_path, ns=(time.time_ns(), time.time_ns()))


@contextmanager
def portal(tmp: Path, port: int | None = None, **config_changes: Any) -> Iterator[Portal]:
    state = InstanceState(
        authorization=f"Bearer {TOKEN}", languages=("en-US", "de-DE", "fr-FR"), solutions=()
    )
    instance_app = Starlette(
        routes=[route for capability in standin_app.CAPABILITIES for route in capability(state)]
    )
    keys = tmp / "session-keys"
    keys.write_text(secrets.token_urlsafe(32) + "\n")
    cert, key = certificate(tmp)
    verify = ssl.create_default_context(cafile=str(cert))
    with serving(instance_app) as instance_port:
        config = portal_json(
            "customer-customerselfservice.yaml",
            f"http://127.0.0.1:{instance_port}",
            credentials(tmp),
        )
        config["sessions"] = {"keysFile": str(keys)}
        config["authentication"]["identityProviders"] = []
        config.update(config_changes)
        path = write_config(tmp, config)
        app = web.create_app(Reader(path))
        with serving(app, port, ssl_certfile=str(cert), ssl_keyfile=str(key)) as port:
            url = f"https://127.0.0.1:{port}"
            config["portal"]["url"] = url
            path.write_text(__import__("json").dumps(config))
            portal_key = f"{config['portal']['namespace']}/{config['portal']['name']}"
            seeded = SeededInvitations(state, portal_key)
            yield Portal(url, path, config, state, seeded, verify, tmp)


def csrf(page: httpx.Response) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found, f"no CSRF token on {page.url}: {page.status_code}"
    return found.group(1)


def submit(
    client: httpx.Client, path: str, fields: dict[str, str], page: str | None = None
) -> httpx.Response:
    """Open PAGE (default PATH) for its CSRF token and post FIELDS to PATH, like a browser."""
    form = client.get(page or path)
    return client.post(path, data={**fields, "csrf": csrf(form)})


def open_invitation(client: httpx.Client, code: str) -> httpx.Response:
    """Open an invitation link as a browser does: the runtime moves the code into the
    session and sends the browser on to /register."""
    first = client.get("/register", params={"invitation": code})
    if first.status_code == 303:
        assert first.headers["location"] == "/register"
        return client.get("/register")
    return first
