"""Converted certificates, one per portal, forgotten as soon as they are stale.

A verdict is reused while the same bytes (the .pfx and its password, or
tls.crt and tls.key) are judged for the same host: conversion is costly and a
reconcile of an unchanged portal should not repeat it. A verdict holds the
private key (a `<portal>-tls` Secret is rendered from it on every reconcile),
so the cache keeps no more than it must:

- one entry per portal: a rotated Secret replaces the entry, the old key goes;
- evicted when the portal is deleted, when its Secret is deleted, and when a
  reconcile finds no certificate to judge (custom domain removed, host lost);
- at most `size` entries, least recently used first out;
- judged again after `ttl` seconds (validity moves with time), and a timed-out
  check after `retry_timed_out` seconds (the operator may only have been busy).

The .pfx and its password stay in the store while a portal references them, so
a cached key is no more exposure than its source; the bound keeps the cache
from growing past the fleet it serves.

Reconcile threads and the event loop both use it: every access holds one lock.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from portico.certificates import CertificateVerdict, CertReason

Key = tuple[str, str]  # (namespace, portal)

DEFAULT_SIZE = 1024
# A converted certificate is judged again at least this often.
DEFAULT_TTL = 3600.0
RETRY_TIMED_OUT = 300.0


@dataclass(frozen=True)
class _Entry:
    content: tuple[str, str, str]  # (form, digest of the bytes, host)
    at: float
    verdict: CertificateVerdict


class CertificateCache:
    def __init__(
        self,
        size: int = DEFAULT_SIZE,
        ttl: float = DEFAULT_TTL,
        retry_timed_out: float = RETRY_TIMED_OUT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.size, self.ttl, self.retry_timed_out = max(size, 1), ttl, retry_timed_out
        self._clock = clock
        self._entries: OrderedDict[Key, _Entry] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def content(form: str, blob: bytes, secret: bytes | None, host: str) -> tuple[str, str, str]:
        digest = hashlib.sha256(blob + b"\0" + (secret or b"")).hexdigest()
        return (form, digest, host)

    def get(self, key: Key, content: tuple[str, str, str]) -> CertificateVerdict | None:
        """The verdict on exactly this content, if still fresh."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            timed_out = (
                not entry.verdict.ok
                and entry.verdict.reason == CertReason.CERTIFICATE_CHECK_TIMED_OUT
            )
            fresh_for = self.retry_timed_out if timed_out else self.ttl
            if entry.content != content or self._clock() - entry.at >= fresh_for:
                del self._entries[key]  # rotated or stale: its key goes now, not later
                return None
            self._entries.move_to_end(key)
            return entry.verdict

    def put(self, key: Key, content: tuple[str, str, str], verdict: CertificateVerdict) -> None:
        with self._lock:
            self._entries[key] = _Entry(content, self._clock(), verdict)
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def evict(self, key: Key) -> None:
        with self._lock:
            self._entries.pop(key, None)

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def __contains__(self, key: object) -> bool:
        with self._lock:
            return key in self._entries
