"""The operator's client of the instance API (docs/runtime-contract.md): invitations only.

The instance's own credentials (its credentials Secret) authorize; a CA in `ca.crt`
is the one its certificate is checked against. Blocking (urllib3): called from the
reconcile threads. Nothing sent is retried here: the queue decides when to try again.
"""

from __future__ import annotations

import base64
import functools
import json
import ssl
from collections.abc import Mapping
from typing import Any

import urllib3

from portico.core.invitation import Redemption, Remote
from portico.core.observed import SecretView

TIMEOUT = urllib3.Timeout(connect=5.0, read=10.0)
# What the instance echoes that is not part of what the operator registers.
_ECHOED = ("id", "redemptions")


class InstanceError(Exception):
    """The instance could not be asked or refused: one line, without credentials."""


def _value(view: SecretView, key: str) -> str:
    return base64.b64decode(view.data.get(key, "")).decode(errors="replace").strip()


@functools.lru_cache(maxsize=8)
def _context(ca: str) -> ssl.SSLContext:
    return ssl.create_default_context(cadata=ca or None)


def tls_context(credentials: SecretView) -> ssl.SSLContext:
    """The context the instance's certificate is checked with: the system's CAs, and
    `ca.crt` when the credentials hold one. Shared (SSLContext is thread-safe): building
    one parses the system bundle, which cost the operator a third of its CPU when every
    new portal's token exchange built its own."""
    return _context(_value(credentials, "ca.crt"))


def authorization(credentials: SecretView) -> str:
    if "token" in credentials.data:
        return "Bearer " + _value(credentials, "token")
    pair = f"{_value(credentials, 'username')}:{_value(credentials, 'password')}"
    return "Basic " + base64.b64encode(pair.encode()).decode()


class InstanceClient:
    def __init__(self, url: str, credentials: SecretView, insecure: bool = False) -> None:
        if not url.lower().startswith("https://") and not insecure:
            raise InstanceError(
                f"the instance at {url} has a plain http URL; Portico sends the instance's "
                "credentials only over TLS: use https://, or set spec.insecure: true on a "
                "test instance"
            )
        self.url = url.rstrip("/")
        self._headers = {
            "Authorization": authorization(credentials),
            "Content-Type": "application/json",
            "Accept": "application/json",
        }
        self._pool = urllib3.PoolManager(
            ssl_context=tls_context(credentials), retries=False, timeout=TIMEOUT
        )

    def _call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        try:
            answer = self._pool.request(
                method, self.url + path, body=data, headers=self._headers, redirect=False
            )
        except urllib3.exceptions.HTTPError as err:
            raise InstanceError(
                f"the instance at {self.url} is unreachable ({_why(err)})"
            ) from None
        try:
            parsed = json.loads(answer.data) if answer.data else None
        except ValueError:
            parsed = None
        if answer.status in (401, 403):
            raise InstanceError(
                f"the instance at {self.url} rejected the credentials ({answer.status}); "
                "check the PortalInstance's credentials Secret"
            )
        return answer.status, parsed

    def _fail(self, status: int, answer: Any, what: str) -> InstanceError:
        said = answer.get("message", "") if isinstance(answer, Mapping) else ""
        return InstanceError(
            f"the instance answered {status} to {what}" + (f": {said}" if said else "")
        )

    def get_invitation(self, portal: str, id_: str) -> Remote | None:
        status, answer = self._call("GET", f"{portal}/invitations/{id_}")
        if status == 404:
            return None
        if status != 200 or not isinstance(answer, dict):
            raise self._fail(status, answer, "reading the invitation")
        redemptions = tuple(
            Redemption(str(r.get("contact", "")), str(r.get("at", "")))
            for r in answer.get("redemptions") or ()
            if isinstance(r, dict)
        )
        body = {k: v for k, v in answer.items() if k not in _ECHOED}
        return Remote(body, redemptions)

    def put_invitation(self, portal: str, id_: str, body: Mapping[str, Any]) -> None:
        status, answer = self._call("PUT", f"{portal}/invitations/{id_}", dict(body))
        if status not in (200, 201, 204):
            raise self._fail(status, answer, "registering the invitation")

    def undo_redemption(self, portal: str, id_: str, contact: str) -> None:
        status, answer = self._call("DELETE", f"{portal}/invitations/{id_}/redemptions/{contact}")
        if status not in (200, 204, 404):  # 404: undone already
            raise self._fail(status, answer, f"undoing the redemption of {contact}")


def portal_path(namespace: str, name: str) -> str:
    return f"/portico/v1/portals/{namespace}/{name}"


def _why(err: Exception) -> str:
    reason = getattr(err, "reason", None)
    return str(reason or err.__class__.__name__)[:300]
