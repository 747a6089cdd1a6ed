"""The portal's session keys (pure): keep them, make the first, or rotate.

Sign-in signs its cookie with the newest key of the Secret `<portal>-session`
(key `keys`: one key a line, oldest first) and accepts any key listed, so a
rotation appends a new key and keeps the one before it: a session signed before
the rotation stays valid, and the runtime re-signs it with the new key at its
next refresh. Only one previous key is kept, so a second rotation ends what the
first one spared.

A rotation is asked for with the Portal annotation `portico.dev/rotate-session-keys`
(any new value). The value handled is stamped on the Secret itself, written in
the same request as the new key, so a status write that fails afterwards never
makes the next reconcile rotate again (and drop the key it kept).

The random key comes in from outside (observe draws it from the OS's CSPRNG for
every reconcile); this module only decides whether it is used.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from portico.core import names

KEYS = "keys"
# On the Secret: the rotation token the keys it holds answer.
HANDLED = "portico.dev/session-keys-rotation"
# Shorter lines are not keys (the runtime ignores them too: identity/sessions.py).
MIN_KEY_LENGTH = 32


@dataclass(frozen=True)
class SessionKeys:
    # The Secret's data (base64 values), as it is to be written.
    data: Mapping[str, str] = field(default_factory=dict, repr=False)
    annotations: Mapping[str, str] = field(default_factory=dict)
    # The rotation token now handled ("" while none was asked for).
    handled: str = ""
    # What this plan does to the keys: "", "created" or "rotated".
    change: str = ""


def held_keys(secret: Mapping[str, Any] | None) -> list[str]:
    """The keys SECRET holds, oldest first; none when it is missing or unreadable."""
    raw = ((secret or {}).get("data") or {}).get(KEYS)
    if not isinstance(raw, str):
        return []
    try:
        text = base64.b64decode(raw, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return []
    return [k.strip() for k in text.splitlines() if len(k.strip()) >= MIN_KEY_LENGTH]


def _encoded(keys: list[str]) -> dict[str, str]:
    if not keys:
        return {}  # `portico plan`: no key is drawn offline
    return {KEYS: base64.b64encode(("\n".join(keys) + "\n").encode()).decode()}


def plan(secret: Mapping[str, Any] | None, requested: str, fresh: str) -> SessionKeys:
    """The Secret to hold, from the one held (SECRET), the rotation token on the Portal
    (REQUESTED) and a newly drawn key (FRESH), used only when a key is made."""
    held = held_keys(secret)
    annotations = (secret or {}).get("metadata", {}).get("annotations") or {}
    handled = str(annotations.get(HANDLED, ""))
    new = [fresh] if len(fresh) >= MIN_KEY_LENGTH else []
    if not held:
        # The first key (or one in place of keys that were lost or unreadable). A
        # rotation asked for before there were keys is answered by this new key.
        return SessionKeys(_encoded(new), _stamp(requested), requested, "created")
    if requested and requested != handled:
        return SessionKeys(_encoded([held[-1], *new]), _stamp(requested), requested, "rotated")
    assert secret is not None
    # Unchanged: the very bytes held, so the manifest (and its hash) is the same.
    return SessionKeys({KEYS: secret["data"][KEYS]}, _stamp(handled), handled)


def _stamp(handled: str) -> dict[str, str]:
    return {HANDLED: handled} if handled else {}


def requested(annotations: Mapping[str, str]) -> str:
    return str(annotations.get(names.ROTATE_SESSION_KEYS, ""))
