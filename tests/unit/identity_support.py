"""A runtime with sign-in, served by uvicorn over HTTPS on loopback, against the stand-in
instance (also on loopback) with an in-test stand-in of the invitations capability
(its real endpoints belong to the invitations work; these keep to the same contract)."""

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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from portico.devcluster.procs import free_port
from portico_runtime import web
from portico_runtime.config import Reader
from portico_standin import app as standin_app
from portico_standin.auth import portal_caller
from portico_standin.http import PORTAL, body
from portico_standin.state import InstanceState
from tests.unit.runtime_support import TOKEN, credentials, portal_json, write_config


@dataclass
class FakeInvitations:
    """code -> (state, webRoles); redemptions per contact. Same answers as the contract."""

    codes: dict[str, tuple[str, list[str]]] = field(default_factory=dict)
    redeemed: dict[str, list[str]] = field(default_factory=dict)
    # Codes another person redeems between a check and this redemption (a race's loser).
    lost_race: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)


STATUS = {"Unknown": 404, "Used": 409, "Expired": 410, "Revoked": 410}


def invitation_routes(fake: FakeInvitations) -> Any:
    def routes(state: InstanceState) -> list[Route]:
        def answer(code: str) -> Response:
            found = fake.codes.get(code)
            if found is None:
                return JSONResponse({"reason": "Unknown"}, 404)
            if found[0] != "Valid":
                return JSONResponse({"reason": found[0]}, STATUS[found[0]])
            return JSONResponse({"state": "Valid", "webRoles": found[1]})

        async def check(request: Request) -> Response:
            if portal_caller(request, state) is None:
                return JSONResponse({"message": "unauthorized"}, 401)
            return answer(str((await body(request)).get("code", "")))

        async def redeem(request: Request) -> Response:
            if portal_caller(request, state) is None:
                return JSONResponse({"message": "unauthorized"}, 401)
            data = await body(request)
            code, contact = str(data.get("code", "")), str(data.get("contactId", ""))
            with fake.lock:
                if code in fake.lost_race:
                    return JSONResponse({"reason": "Used"}, 409)
                result = answer(code)
                if result.status_code == 200:
                    roles = fake.codes[code][1]
                    fake.codes[code] = ("Used", roles)  # Single
                    fake.redeemed.setdefault(contact, []).extend(roles)
                return result

        async def roles(request: Request) -> Response:
            if portal_caller(request, state) is None:
                return JSONResponse({"message": "unauthorized"}, 401)
            contact = request.query_params.get("contact", "")
            return JSONResponse({"webRoles": fake.redeemed.get(contact, [])})

        return [
            Route(f"{PORTAL}/invitations/check", check, methods=["POST"]),
            Route(f"{PORTAL}/invitations/redeem", redeem, methods=["POST"]),
            Route(f"{PORTAL}/invitations/roles", roles),
        ]

    return routes


def certificate(tmp: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost (the runtime's HTTPS)."""
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
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
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
    invitations: FakeInvitations
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
    fake = FakeInvitations()
    state = InstanceState(
        authorization=f"Bearer {TOKEN}", languages=("en-US", "de-DE", "fr-FR"), solutions=()
    )
    instance_app = Starlette(
        routes=[
            route
            for capability in [*standin_app.CAPABILITIES, invitation_routes(fake)]
            for route in capability(state)
        ]
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
            yield Portal(url, path, config, state, fake, verify, tmp)


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
