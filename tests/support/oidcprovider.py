"""A real OpenID provider for the sign-in tests: the example server of the zitadel OIDC
library (`github.com/zitadel/oidc/v3/example/server`), the library ZITADEL's production
identity service is built on. It is served by the Go module proxy (Keycloak's server
distribution is not on this machine's registries, Dex's recent versions are not served,
Ory Hydra needs a separate login app): one small binary with discovery, JWKS, the code
flow with PKCE S256, userinfo and RP-initiated logout, and a login page of its own.

The example's own main names itself http://localhost:PORT/ and serves plain http, so the
binary is a small main of ours (tests/support/gomod/zitadel-oidc/provider) around the same
library code (`exampleop.SetupServer`, its storage and login page) that also takes the
issuer URL and a TLS certificate: the real node's pods need an https issuer they reach.

Pinned in tests/support/gomod/zitadel-oidc/go.mod; built once into ~/.cache/portico like the
other Go tools (named by the pinned version and our main's hash), under a file lock so
parallel test runs build it once.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import ssl
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from portico_dev.procs import free_port

GOMOD = Path(__file__).parent / "gomod" / "zitadel-oidc"
MODULE = "github.com/zitadel/oidc/v3"
CLIENT_ID, CLIENT_SECRET = "web", "secret"  # the example server's registered web client


def version() -> str:
    found = re.search(
        rf"^\s*require\s+{re.escape(MODULE)}\s+(v\S+)", (GOMOD / "go.mod").read_text(), re.M
    )
    if not found:
        raise RuntimeError(f"{MODULE} is not pinned in {GOMOD}/go.mod")
    return found.group(1)


def binary() -> Path:
    """The provider binary, built from the pinned module and our main on first use."""
    cache = Path(os.environ.get("PORTICO_CACHE", Path.home() / ".cache" / "portico"))
    main = hashlib.sha256((GOMOD / "provider" / "main.go").read_bytes()).hexdigest()[:12]
    out = cache / f"zitadel-oidc-{version()}" / "bin" / f"oidc-provider-{main}"
    if out.is_file():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out.parent / ".build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not out.is_file():
            tmp = out.with_suffix(".tmp")
            subprocess.run(
                ["go", "build", "-o", str(tmp), "./provider"],
                cwd=GOMOD,
                check=True,
                env={**os.environ, "CGO_ENABLED": "0"},
            )
            tmp.rename(out)
    return out


@dataclass(frozen=True)
class User:
    id: str
    username: str
    password: str
    email: str
    email_verified: bool = True
    first_name: str = "Test"
    last_name: str = "User"

    def record(self) -> dict[str, Any]:
        return {
            "ID": self.id,
            "Username": self.username,
            "Password": self.password,
            "FirstName": self.first_name,
            "LastName": self.last_name,
            "Email": self.email,
            "EmailVerified": self.email_verified,
            "PreferredLanguage": "en",
        }


@dataclass(frozen=True)
class Provider:
    issuer: str
    client_id: str = CLIENT_ID
    client_secret: str = CLIENT_SECRET


@contextmanager
def provider(
    tmp: Path,
    users: list[User],
    redirect_uris: list[str],
    *,
    port: int | None = None,
    issuer: str = "",
    tls: tuple[Path, Path] | None = None,
) -> Iterator[Provider]:
    """The provider on loopback with USERS and a web client whose redirect URIs are
    REDIRECT_URIS: on PORT (a free one by default), naming itself ISSUER (by default
    http://localhost:PORT/), over HTTPS with TLS = (certificate, key) files when given."""
    port = port or free_port()
    issuer = issuer or f"http://localhost:{port}/"
    users_file = tmp / "oidc-users.json"
    users_file.write_text(json.dumps({u.id: u.record() for u in users}))
    env = {
        **os.environ,
        "PORT": str(port),
        "ISSUER": issuer,
        "USERS_FILE": str(users_file),
        "REDIRECT_URI": ",".join(redirect_uris),
    }
    context = None
    if tls:
        env |= {"TLS_CERT": str(tls[0]), "TLS_KEY": str(tls[1])}
        # Probed on loopback, whatever name the issuer has: the certificate is checked
        # against its CA, its name by the clients that use the issuer.
        context = ssl.create_default_context(cafile=str(tls[0]))
        context.check_hostname = False
    log = open(tmp / "oidc-provider.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen([str(binary())], env=env, stdout=log, stderr=subprocess.STDOUT)
    discovery = f"{'https' if tls else 'http'}://127.0.0.1:{port}/.well-known/openid-configuration"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(discovery, timeout=2, context=context) as r:
                    if r.status == 200 and json.load(r)["issuer"] == issuer:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                tail = (tmp / "oidc-provider.log").read_text()[-2000:]
                raise RuntimeError(f"the OpenID provider did not start: {tail}")
            time.sleep(0.1)
        yield Provider(issuer)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
