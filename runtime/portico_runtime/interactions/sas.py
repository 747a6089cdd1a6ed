"""The hub's SharedAccessSignature: pure signing, and a token source that renews early.

sig = base64(HMAC-SHA256(key text, url-encoded resource + "\n" + expiry)); the header is
`SharedAccessSignature sr=<url-encoded resource>&sig=<url-encoded sig>&se=<expiry>&skn=<policy>`.
Expiry is seconds since the Unix epoch (UTC by definition: the hosted runtime's local-time
expiry was a bug). Nothing here logs, and no exception carries the key or a signature.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote_plus, urlencode


def signature(resource: str, key: str, expiry: int) -> str:
    to_sign = f"{quote_plus(resource)}\n{expiry}".encode()
    digest = hmac.new(key.encode("utf-8"), to_sign, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def sign(resource: str, policy: str, key: str, expiry: int) -> str:
    """The Authorization header value for RESOURCE, valid until EXPIRY (epoch seconds)."""
    fields = {"sr": resource, "sig": signature(resource, key, expiry), "se": str(expiry)}
    fields["skn"] = policy
    return "SharedAccessSignature " + urlencode(fields)


def parse(header: str) -> dict[str, str]:
    """The fields of a SharedAccessSignature header (for the hub's side and tests)."""
    from urllib.parse import parse_qs

    scheme, _, rest = header.partition(" ")
    if scheme != "SharedAccessSignature":
        return {}
    return {k: v[0] for k, v in parse_qs(rest, keep_blank_values=True).items()}


def verify(header: str, resource: str, policy: str, key: str, now: float) -> str:
    """'' if HEADER is a valid, unexpired signature of RESOURCE by POLICY's KEY, else why not."""
    fields = parse(header)
    if set(fields) != {"sr", "sig", "se", "skn"}:
        return "not a SharedAccessSignature with sr, sig, se and skn"
    if fields["sr"] != resource or fields["skn"] != policy:
        return "wrong resource or policy"
    if not fields["se"].isdigit() or int(fields["se"]) < now:
        return "expired"
    wanted = signature(resource, key, int(fields["se"]))
    return "" if hmac.compare_digest(wanted, fields["sig"]) else "bad signature"


class KeyFile:
    """The shared key, read from its mounted file; a rotated Secret is seen on the next read."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: tuple[int, int, int] | None = None
        self._key = ""

    def read(self) -> str:
        try:
            st = self.path.stat()
            stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
        except OSError:
            stamp = None
        if stamp is None or stamp != self._stamp:
            try:
                self._key = self.path.read_text(encoding="utf-8").strip()
            except OSError:
                self._key = ""
            self._stamp = stamp
        return self._key


class TokenSource:
    """A short-lived token, renewed before it expires or when the key changes."""

    def __init__(
        self,
        resource: str,
        policy: str,
        key: KeyFile,
        ttl: float = 300.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.resource, self.policy, self.key = resource, policy, key
        self.ttl = max(ttl, 30.0)
        self.clock = clock
        self._token = ""
        self._expiry = 0
        self._signed_with = ""

    def header(self) -> str:
        """A token with at least a fifth of its life left, signed with the current key."""
        key = self.key.read()
        now = self.clock()
        if key != self._signed_with or now >= self._expiry - self.ttl / 5:
            self._expiry = int(now + self.ttl)
            self._token = sign(self.resource, self.policy, key, self._expiry) if key else ""
            self._signed_with = key
        return self._token

    def key_changed(self) -> bool:
        """Whether the key file now holds another key than the current token's (a rotation)."""
        return self.key.read() != self._signed_with
