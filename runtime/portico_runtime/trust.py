"""Whom the runtime's TLS clients trust: the public roots (certifi's, as httpx ships
them) plus the instance's `ca.crt` when the portal's instance credentials carry one
(`credentialsDir/ca.crt`, copied from the PortalInstance's credentials Secret).

One decision for every server the runtime calls: the instance, the interaction sinks
and the identity providers (discovery, token, JWKS, UserInfo). A company with a
private CA puts it in the instance credentials once, and its instance, hub and
provider are trusted alike; public servers stay trusted beside it.
"""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

import certifi
import httpx

CA_FILE = "ca.crt"
# The instance API and sign-in clients give up on a call within this (connect + read).
CALL_SECONDS = 15.0
# One context per CA file (the newest): a rotated ca.crt replaces its old context.
_contexts: dict[str, tuple[tuple[int, int], ssl.SSLContext]] = {}


def ca_file(credentials_dir: str | Path) -> str:
    """The instance credentials' CA file, "" when there is none."""
    if not credentials_dir:
        return ""
    ca = Path(credentials_dir) / CA_FILE
    return str(ca) if ca.is_file() else ""


def context(credentials_dir: str | Path) -> ssl.SSLContext:
    """The verify context for CREDENTIALS_DIR: the same object while its ca.crt is
    unchanged (clients keyed by it are reused), a new one once it changed on disk."""
    ca = ca_file(credentials_dir)
    stat = Path(ca).stat() if ca else None
    seen = (stat.st_mtime_ns, stat.st_size) if stat else (0, 0)
    kept = _contexts.get(ca)
    if kept is not None and kept[0] == seen:
        return kept[1]
    found = ssl.create_default_context(cafile=certifi.where())
    if ca:
        found.load_verify_locations(cafile=ca)
    _contexts[ca] = (seen, found)
    return found


def retire(client: httpx.AsyncClient) -> asyncio.Task[None]:
    """Close a client that a changed ca.crt replaced, once the calls it still carries
    have had their time; keep the task until it is done."""

    async def close_later() -> None:
        await asyncio.sleep(CALL_SECONDS + 1)
        await client.aclose()

    return asyncio.create_task(close_later())


def untrusted(exc: BaseException) -> str:
    """Why a TLS server was not trusted, when EXC (or what caused it) says so; "" else.
    Names the certificate problem and the fix, never a secret."""
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, ssl.SSLCertVerificationError):
            problem = cause.verify_message or cause.reason
            return (
                f"the server's certificate is not trusted ({problem}); "
                f"if a private CA signed it, put that CA in the instance credentials' {CA_FILE}"
            )
        reason = getattr(cause, "reason", None)  # urllib's URLError wraps it here
        cause = (
            reason if isinstance(reason, BaseException) else (cause.__cause__ or cause.__context__)
        )
    return ""
