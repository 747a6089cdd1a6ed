"""A real OpenID provider for the sign-in tests: the example server of the zitadel OIDC
library (`github.com/zitadel/oidc/v3/example/server`), the library ZITADEL's production
identity service is built on. It is served by the Go module proxy (Keycloak's server
distribution is not on this machine's registries, Dex's recent versions are not served,
Ory Hydra needs a separate login app): one small binary with discovery, JWKS, the code
flow with PKCE S256, userinfo and RP-initiated logout, and a login page of its own.

Pinned in tests/support/gomod/zitadel-oidc/go.mod; built once into ~/.cache/portico like the
other Go tools, under a file lock so parallel test runs build it once.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
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
    """The provider binary, built from the pinned module on first use."""
    cache = Path(os.environ.get("PORTICO_CACHE", Path.home() / ".cache" / "portico"))
    out = cache / f"zitadel-oidc-{version()}" / "bin" / "oidc-example-server"
    if out.is_file():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out.parent / ".build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not out.is_file():
            tmp = out.with_suffix(".tmp")
            subprocess.run(
                ["go", "build", "-o", str(tmp), f"{MODULE}/example/server"],
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
def provider(tmp: Path, users: list[User], redirect_uris: list[str]) -> Iterator[Provider]:
    """The provider on loopback (issuer http://localhost:PORT/) with USERS and a web client
    whose redirect URIs are REDIRECT_URIS."""
    users_file = tmp / "oidc-users.json"
    users_file.write_text(json.dumps({u.id: u.record() for u in users}))
    port = free_port()
    log = open(tmp / "oidc-provider.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [str(binary())],
        env={
            **os.environ,
            "PORT": str(port),
            "USERS_FILE": str(users_file),
            "REDIRECT_URI": ",".join(redirect_uris),
        },
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    issuer = f"http://localhost:{port}/"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(
                    issuer + ".well-known/openid-configuration", timeout=2
                ) as r:
                    if r.status == 200:
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
