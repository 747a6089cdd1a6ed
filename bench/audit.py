"""The operator's API requests, counted by the API server's audit log (not by the operator).

The bench's control plane logs every request of the operator's identity (see
`ControlPlane(audit_read_users=...)`); this module follows that file and
keeps one small record per request.
"""

from __future__ import annotations

import datetime
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

WRITES = frozenset({"create", "update", "patch", "delete", "deletecollection"})


@dataclass(frozen=True)
class Request:
    at: float  # Unix time the API server received it
    verb: str
    resource: str  # "portals", "portals/status", ...
    namespace: str

    @property
    def kind(self) -> str:
        """ "write", "watch", or "read" (get and list)."""
        if self.verb in WRITES:
            return "write"
        return "watch" if self.verb == "watch" else "read"


def _unix(stamp: str) -> float:
    return datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


class AuditLog:
    """Follows the audit log (it only grows in a bench run) and keeps USER's requests."""

    def __init__(self, path: Path, user: str) -> None:
        self.path, self.user = path, user
        self.offset = self.inode = 0
        self.requests: list[Request] = []
        self._ids: set[str] = set()

    def poll(self) -> None:
        if not self.path.exists():
            return
        inode = self.path.stat().st_ino
        if self.inode and inode != self.inode:
            # The API server rotated the log (--audit-log-maxsize): finish the old file first.
            rotated = max(self.path.parent.glob("audit-*.log"), key=lambda p: p.stat().st_mtime)
            self._read(rotated)
            self.offset = 0
        self.inode = inode
        self._read(self.path)

    def _read(self, path: Path) -> None:
        with path.open("rb") as handle:
            handle.seek(self.offset)
            chunk = handle.read()
        end = chunk.rfind(b"\n") + 1  # a line still being written waits for the next poll
        self.offset += end
        needle = self.user.encode()
        for line in chunk[:end].splitlines():
            if needle not in line:
                continue  # most lines are other components' writes: skip the JSON parse
            entry = json.loads(line)
            # A watch logs ResponseStarted and ResponseComplete: count each request once.
            if entry["user"].get("username") != self.user or entry["auditID"] in self._ids:
                continue
            self._ids.add(entry["auditID"])
            ref = entry.get("objectRef") or {}
            resource = ref.get("resource", entry.get("requestURI", "?"))
            if ref.get("subresource"):
                resource += "/" + ref["subresource"]
            self.requests.append(
                Request(
                    _unix(entry["requestReceivedTimestamp"]),
                    entry["verb"],
                    resource,
                    ref.get("namespace", ""),
                )
            )

    def between(self, start: float, end: float) -> list[Request]:
        self.poll()
        return [r for r in self.requests if start <= r.at < end]


def breakdown(requests: list[Request], per: int = 1) -> dict[str, object]:
    """Reads, writes and watches in total and by "verb resource", divided by PER."""
    per = max(per, 1)
    by_verb = Counter(f"{r.verb} {r.resource}" for r in requests)
    totals = Counter(r.kind for r in requests)
    # Cluster-wide lists are what a watch starts from; a reconcile lists one namespace.
    initial = sum(1 for r in requests if r.verb == "list" and not r.namespace)
    return {
        "reads": totals["read"] / per,
        "reads_after_initial_lists": (totals["read"] - initial) / per,
        "writes": totals["write"] / per,
        "watches": totals["watch"] / per,
        "by_verb_resource": {k: v / per for k, v in sorted(by_verb.items())},
        "divided_by": per,
    }
