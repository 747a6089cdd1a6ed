"""The instance API as the serving runtime calls it: async, on one httpx.AsyncClient.

The Jobs keep the small synchronous client in client.py. Here every page may call
the instance, so one connection pool serves them all; timeouts are short (a visitor
waits), redirects are never followed (a redirect could carry the portal's token to
another origin), and the token is re-read when its file changes (a rotated token is
used without a restart). Errors carry no secret and no response body.
"""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from portico_runtime import trust
from portico_runtime.client import InstanceError, authorization
from portico_runtime.config import Portal

TIMEOUT = httpx.Timeout(10.0, connect=3.0)


class NotFound(InstanceError):
    """The instance has no such thing (HTTP 404)."""


class _Credentials:
    """The Authorization header from the credentials dir, re-read when a file changes."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._stamp: tuple[tuple[str, int, int], ...] | None = None
        self._value = ""

    def _files(self) -> tuple[tuple[str, int, int], ...]:
        stamps = []
        for name in ("token", "username", "password"):
            try:
                st = (self.directory / name).stat()
            except OSError:
                continue
            stamps.append((name, st.st_mtime_ns, st.st_size))
        return tuple(stamps)

    def header(self) -> str:
        stamp = self._files()
        if stamp != self._stamp:
            self._value = authorization(self.directory)
            self._stamp = stamp
        return self._value


def portal_path(portal: Portal) -> str:
    """Where everything of this portal lives on the instance (a portal-scoped token's reach)."""
    ns, name = quote(portal.namespace, safe=""), quote(portal.name, safe="")
    return f"/portico/v1/portals/{ns}/{name}"


class InstanceAPI:
    """One per runtime process; `close()` in the app's lifespan."""

    def __init__(self) -> None:
        # (instance URL, credentials dir) → the verify context and the client made with it
        self._clients: dict[tuple[str, str], tuple[ssl.SSLContext, httpx.AsyncClient]] = {}
        self._stale: dict[httpx.AsyncClient, asyncio.Task[None]] = {}
        self._credentials: dict[str, _Credentials] = {}

    def _client(self, portal: Portal) -> httpx.AsyncClient:
        """One client per instance and credentials; a new one once the credentials' ca.crt
        changed on disk (a rotated private CA), the old one closed when its calls are done."""
        key = (portal.instance_url, portal.credentials_dir)
        verify = trust.context(portal.credentials_dir)
        kept = self._clients.get(key)
        if kept is not None and kept[0] is verify:
            return kept[1]
        if kept is not None:
            stale = kept[1]
            self._stale[stale] = trust.retire(stale)
            self._stale[stale].add_done_callback(lambda _: self._stale.pop(stale, None))
        client = httpx.AsyncClient(
            base_url=portal.instance_url.rstrip("/"),
            timeout=TIMEOUT,
            follow_redirects=False,
            verify=verify,
            limits=httpx.Limits(max_connections=50, max_keepalive_connections=10),
        )
        self._clients[key] = (verify, client)
        return client

    def _authorization(self, portal: Portal) -> str:
        creds = self._credentials.get(portal.credentials_dir)
        if creds is None:
            creds = self._credentials[portal.credentials_dir] = _Credentials(
                Path(portal.credentials_dir)
            )
        return creds.header()

    async def call(
        self,
        portal: Portal,
        method: str,
        path: str,
        params: dict[str, str] | None = None,
        body: Any = None,
    ) -> Any:
        """JSON from the instance; NotFound for 404, InstanceError for anything else."""
        client = self._client(portal)
        headers = {"Authorization": self._authorization(portal), "Accept": "application/json"}
        where = f"{method} {portal.instance_url.rstrip('/')}{path}"
        try:
            response = await client.request(method, path, params=params, json=body, headers=headers)
        except httpx.TimeoutException:
            raise InstanceError(f"{where}: the instance did not answer in time") from None
        except httpx.HTTPError as exc:
            why = trust.untrusted(exc) or f"the instance is unreachable ({type(exc).__name__})"
            raise InstanceError(f"{where}: {why}") from None
        if response.status_code == 404:
            raise NotFound(f"{where} answered 404")
        if response.status_code in (401, 403):
            raise InstanceError(
                f"the instance rejected the portal's credentials (HTTP {response.status_code})"
            )
        if not response.is_success:
            raise InstanceError(f"{where} answered HTTP {response.status_code}")
        try:
            return response.json()
        except ValueError:
            raise InstanceError(f"{where} did not answer JSON") from None

    async def get(self, portal: Portal, path: str, params: dict[str, str] | None = None) -> Any:
        return await self.call(portal, "GET", path, params=params)

    async def close(self) -> None:
        clients, self._clients = self._clients, {}
        stale, self._stale = self._stale, {}
        for task in stale.values():
            task.cancel()
        for client in [*stale, *(client for _, client in clients.values())]:
            await client.aclose()
