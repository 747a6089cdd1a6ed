"""The backing instance's API as the runtime uses it (docs/runtime-contract.md, "The instance API").

Plain urllib: the Jobs make a handful of calls. Errors become one line a person can
act on; nothing secret (the credentials, a response body) goes into them.

The credentials go only where they were meant to: never over plain HTTP unless the
PortalInstance says `insecure: true`, never along a redirect to another origin (and
never a redirect from https to http), and every request has a timeout.
"""

from __future__ import annotations

import base64
import errno
import json
import os
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import IO, Any

from portico_runtime import trust

TIMEOUT = 15.0
# A connection that could not be made is tried again for this long: a Service just
# created may not be routed yet on the node (kube-proxy's lag), or the instance may be
# starting. Nothing was sent, so this is safe for every method.
CONNECT_PATIENCE = float(os.environ.get("PORTICO_INSTANCE_CONNECT_PATIENCE", "60"))
UNREACHED = {errno.ECONNREFUSED, errno.ENETUNREACH, errno.EHOSTUNREACH, errno.ECONNRESET}


def _not_connected(reason: object) -> bool:
    """Whether the request never reached the instance (a refused or unroutable connection)."""
    return isinstance(reason, socket.gaierror) or (
        isinstance(reason, OSError) and reason.errno in UNREACHED
    )


class InstanceError(Exception):
    """The instance did not do what was asked; the message is safe to show."""


def authorization(credentials_dir: Path) -> str:
    """An Authorization header from the mounted credentials: `token`, or `username`+`password`."""
    token = credentials_dir / "token"
    if token.is_file():
        return "Bearer " + token.read_text(encoding="utf-8").strip()
    user, password = credentials_dir / "username", credentials_dir / "password"
    if user.is_file() and password.is_file():
        pair = f"{user.read_text().strip()}:{password.read_text().strip()}".encode()
        return "Basic " + base64.b64encode(pair).decode()
    raise InstanceError(
        f"no instance credentials in {credentials_dir}: expected a 'token' key, "
        "or 'username' and 'password', in the instance's credentials Secret"
    )


def origin(url: str) -> tuple[str, str, int | None]:
    """(scheme, host, port) with the scheme's default port filled in."""
    parts = urllib.parse.urlsplit(url)
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    return parts.scheme.lower(), (parts.hostname or "").lower(), port


class _Redirects(urllib.request.HTTPRedirectHandler):
    """Follows a redirect with the credentials only within the instance's own origin.

    The Authorization header is an *unredirected* header (urllib never copies those to a
    redirected request); it is put back only when the new URL has the same origin.
    """

    def __init__(self, home: tuple[str, str, int | None], auth: str, insecure: bool) -> None:
        self.home, self.auth, self.insecure = home, auth, insecure

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: Any,
        newurl: str,
    ) -> urllib.request.Request | None:
        scheme = urllib.parse.urlsplit(newurl).scheme.lower()
        if scheme != "https" and not (scheme == "http" and self.insecure):
            raise InstanceError(
                f"the instance redirected to a {scheme or 'relative'}:// address; "
                "Portico follows only https redirects (plain http needs the "
                "PortalInstance's spec.insecure: true)"
            )
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is not None and origin(newurl) == self.home:
            new.add_unredirected_header("Authorization", self.auth)
        return new


class Instance:
    def __init__(self, url: str, credentials_dir: Path, insecure: bool = False) -> None:
        self.url = url.rstrip("/")
        scheme = urllib.parse.urlsplit(self.url).scheme.lower()
        if scheme != "https" and not (scheme == "http" and insecure):
            raise InstanceError(
                f"the instance URL {self.url} is not https: the portal's credentials are "
                "sent only over TLS; use an https:// URL, or (for a test instance only) set "
                "spec.insecure: true on the PortalInstance"
            )
        self.auth = authorization(credentials_dir)
        self.context = trust.context(credentials_dir)
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPSHandler(context=self.context),
            _Redirects(origin(self.url), self.auth, insecure),
        )

    def call(self, method: str, path: str, body: Any = None) -> Any:
        deadline, pause = time.monotonic() + CONNECT_PATIENCE, 0.5
        while True:
            try:
                return self._call(method, path, body)
            except urllib.error.URLError as exc:
                if not _not_connected(exc.reason) or time.monotonic() + pause > deadline:
                    raise InstanceError(
                        f"the instance at {self.url} is unreachable: {exc.reason}"
                    ) from None
                time.sleep(pause)
                pause = min(pause * 2, 8.0)

    def _call(self, method: str, path: str, body: Any) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"{self.url}{path}", data=data, method=method)
        # Unredirected: never copied to a redirect (see _Redirects).
        request.add_unredirected_header("Authorization", self.auth)
        request.add_header("Accept", "application/json")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        what = f"{method} {self.url}{path}"
        try:
            with self.opener.open(request, timeout=TIMEOUT) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as exc:
            if exc.code in (401, 403):
                raise InstanceError(
                    f"the instance at {self.url} rejected the portal's credentials "
                    f"(HTTP {exc.code}); check the instance's credentials Secret"
                ) from None
            raise InstanceError(f"{what} answered HTTP {exc.code}{_detail(exc)}") from None
        except TimeoutError:
            late = f"the instance at {self.url} did not answer in {TIMEOUT:.0f}s"
            raise InstanceError(late) from None
        try:
            return json.loads(raw) if raw else {}
        except ValueError:
            raise InstanceError(f"{what} did not answer JSON") from None


def _detail(exc: urllib.error.HTTPError) -> str:
    """The instance's own `message` field, if it gave one (short; never the raw body)."""
    try:
        message = json.loads(exc.read() or b"{}").get("message", "")
    except (ValueError, AttributeError, OSError):
        return ""
    return f": {str(message)[:200]}" if message else ""
