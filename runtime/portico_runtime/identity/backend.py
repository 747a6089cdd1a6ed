"""The instance's contacts, identities, credentials and invitations, as sign-in uses them
(docs/runtime-contract.md). One httpx.AsyncClient; the portal's credentials from their
mounted files; every path under the portal's own path (a portal-scoped token)."""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from portico_runtime import trust
from portico_runtime.client import authorization
from portico_runtime.config import Portal

TIMEOUT = httpx.Timeout(10.0, connect=5.0)


class Unavailable(Exception):
    """The instance could not be asked (down, credentials rejected, an unexpected answer)."""


@dataclass(frozen=True)
class Answer:
    status: int
    data: dict[str, Any]

    @property
    def reason(self) -> str:
        return str(self.data.get("reason") or "")


class Backend:
    def __init__(self) -> None:
        self._client: httpx.AsyncClient | None = None
        self._verify: ssl.SSLContext | None = None
        self._retiring: set[asyncio.Task[None]] = set()

    def _http(self, portal: Portal) -> httpx.AsyncClient:
        verify = trust.context(portal.credentials_dir)
        if self._client is None or verify is not self._verify:
            if self._client is not None:  # a rotated ca.crt: the old client finishes first
                self._retiring.add(retiring := trust.retire(self._client))
                retiring.add_done_callback(self._retiring.discard)
            # No redirects: an answer from elsewhere is never followed with the credentials.
            self._client = httpx.AsyncClient(timeout=TIMEOUT, verify=verify, trust_env=False)
            self._verify = verify
        return self._client

    async def call(
        self,
        portal: Portal,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        params: dict[str, str] | None = None,
    ) -> Answer:
        base = (
            f"{portal.instance_url.rstrip('/')}/portico/v1/portals/"
            f"{quote(portal.namespace, safe='')}/{quote(portal.name, safe='')}"
        )
        try:
            auth = authorization(Path(portal.credentials_dir))
            response = await self._http(portal).request(
                method, base + path, json=body, params=params, headers={"Authorization": auth}
            )
        except (httpx.HTTPError, OSError, ValueError) as exc:
            raise Unavailable(type(exc).__name__) from None
        except Exception as exc:  # the credentials files missing: InstanceError
            raise Unavailable(str(exc)) from None
        if response.status_code in (401, 403) or response.status_code >= 500:
            raise Unavailable(f"HTTP {response.status_code}")
        try:
            data = response.json() if response.content else {}
        except ValueError:
            data = {}
        return Answer(response.status_code, data if isinstance(data, dict) else {})

    # Contacts (docs/runtime-contract.md "Contacts, identities, credentials").
    async def contact_by_email(self, portal: Portal, email: str) -> dict[str, Any] | None:
        found = await self.call(portal, "GET", "/contacts", params={"email": email})
        return found.data if found.status == 200 else None

    async def contact(self, portal: Portal, contact_id: str) -> dict[str, Any] | None:
        found = await self.call(portal, "GET", f"/contacts/{quote(contact_id, safe='')}")
        return found.data if found.status == 200 else None

    async def contact_by_identity(
        self, portal: Portal, issuer: str, subject: str
    ) -> dict[str, Any] | None:
        params = {"issuer": issuer, "subject": subject}
        found = await self.call(portal, "GET", "/identities", params=params)
        return found.data if found.status == 200 else None

    async def create_contact(self, portal: Portal, fields: dict[str, Any]) -> Answer:
        return await self.call(portal, "POST", "/contacts", fields)

    async def update_contact(
        self, portal: Portal, contact_id: str, fields: dict[str, Any]
    ) -> Answer:
        return await self.call(portal, "PATCH", f"/contacts/{quote(contact_id, safe='')}", fields)

    async def delete_contact(self, portal: Portal, contact_id: str) -> Answer:
        return await self.call(portal, "DELETE", f"/contacts/{quote(contact_id, safe='')}")

    async def link_identity(
        self, portal: Portal, contact_id: str, issuer: str, subject: str
    ) -> Answer:
        body = {"issuer": issuer, "subject": subject}
        return await self.call(
            portal, "POST", f"/contacts/{quote(contact_id, safe='')}/identities", body
        )

    async def set_password(self, portal: Portal, contact_id: str, password: str) -> Answer:
        body = {"password": password}
        return await self.call(
            portal, "PUT", f"/contacts/{quote(contact_id, safe='')}/password", body
        )

    async def check_password(self, portal: Portal, email: str, password: str) -> Answer:
        return await self.call(
            portal, "POST", "/credentials/check", {"email": email, "password": password}
        )

    async def start_reset(self, portal: Portal, email: str) -> Answer:
        return await self.call(portal, "POST", "/password-resets", {"email": email})

    async def finish_reset(self, portal: Portal, token: str, password: str) -> Answer:
        body = {"token": token, "password": password}
        return await self.call(portal, "POST", "/password-resets/redeem", body)

    # Invitations (the instance's invitations capability).
    async def check_invitation(self, portal: Portal, code: str) -> Answer:
        return await self.call(portal, "POST", "/invitations/check", {"code": code})

    async def redeem_invitation(self, portal: Portal, code: str, contact_id: str) -> Answer:
        return await self.call(
            portal, "POST", "/invitations/redeem", {"code": code, "contactId": contact_id}
        )

    async def invitation_roles(self, portal: Portal, contact_id: str) -> list[str]:
        found = await self.call(portal, "GET", "/invitations/roles", params={"contact": contact_id})
        roles = found.data.get("webRoles") if found.status == 200 else None
        return [str(r) for r in roles] if isinstance(roles, list) else []


def invitation_state(answer: Answer) -> str:
    """Valid, or the problem the instance named (Unknown when it named none)."""
    if answer.status == 200 and answer.data.get("state") == "Valid":
        return "Valid"
    return (
        answer.reason if answer.reason in ("Unknown", "Used", "Expired", "Revoked") else "Unknown"
    )
