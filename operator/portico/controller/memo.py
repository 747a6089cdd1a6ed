"""Unchanged inputs, no new decision: what keeps a fleet at rest from costing CPU.

A reconcile reads the Portal, its instance, its namespace's labels, the Secrets it
references, its children, its Service's endpoints and the claims on its names —
all from the watch-fed store, where each has a version. The fingerprint is those
versions. A portal whose fingerprint is the one its last reconcile saw, whose last
reconcile wrote nothing and succeeded, and whose timers (trial expiry, a held status
write, a DNS re-check, the certificate's re-judgement) are not due would be decided
exactly as before: the periodic resync skips it without parsing or deciding.

Anything that changes one of those versions — an edit, a child changed or deleted
by hand (drift), a Secret rotated, a new claim — gives a new fingerprint, so the
next reconcile decides again.
"""

from __future__ import annotations

import time
from collections.abc import Hashable
from dataclasses import dataclass, field

from portico.controller.index import Index
from portico.controller.store import Store

# An unchanged portal is still decided again at least this often: what depends on the
# clock alone (a certificate nearing expiry is judged again hourly, as observe does).
MAX_AGE = 3600.0

Fingerprint = tuple[Hashable, ...]


def fingerprint(
    store: Store, index: Index, foreign: frozenset[Hashable], namespace: str, name: str
) -> Fingerprint | None:
    """The versions of everything a reconcile of this portal reads (None: not known)."""
    # Under the store's one lock: every version from the same moment, never half an event.
    with store.lock:
        key = (namespace, name)
        packed = store.portals.packed.get(key)
        entry = index.entries.get(key)
        if packed is None or packed.version is None or entry is None:
            return None
        instance = store.instances.packed.get(("", entry.instance))
        credentials = index.credentials.get(entry.instance)
        secrets = [(namespace, s) for s in sorted(entry.secrets)]
        if credentials:
            secrets.append(credentials)
        if index.mail_secret:  # the portals' mail login: every portal holds a copy
            secrets.append(index.mail_secret)
        children = []
        for kind, child in sorted(tuple(store.by_portal.get(key, ()))):
            kept = store.children[kind].packed.get((namespace, child))
            children.append(
                (kind, child, kept.version if kept else None, kept.controller if kept else "")
            )
        labels = store.namespace_labels.get(namespace)
        claimant = entry.claimant
        return (
            packed.version,
            entry,
            instance.version if instance else None,
            tuple((s, _secret_version(store, *s)) for s in secrets),
            tuple(children),
            store.endpoints(namespace, name),
            tuple(sorted(labels.items())) if labels is not None else None,
            namespace in store.terminating,
            index.subdomain_owner(claimant.subdomain),
            index.host_owner(claimant.hostname) if claimant.hostname else None,
            foreign,
        )


def _secret_version(store: Store, namespace: str, name: str) -> str | None:
    view = store.secret(namespace, name)
    return view.resource_version if view else None


@dataclass
class Memo:
    """(namespace, name) → the fingerprint of its last quiet reconcile, the outcome's
    phase, and until when (monotonic) nothing of it is due."""

    entries: dict[tuple[str, str], tuple[Fingerprint, str, float]] = field(default_factory=dict)

    def unchanged(self, key: tuple[str, str], now: Fingerprint | None) -> tuple[str, float] | None:
        """The phase of the last decision and the seconds until its next timer, when that
        decision still holds; None: decide again."""
        entry = self.entries.get(key)
        left = entry[2] - time.monotonic() if entry else 0.0
        if entry is None or now is None or entry[0] != now or left <= 0:
            return None
        return entry[1], left

    def remember(
        self, key: tuple[str, str], now: Fingerprint | None, phase: str, due_in: float | None
    ) -> None:
        if now is None:
            self.entries.pop(key, None)
            return
        wait = MAX_AGE if due_in is None else min(due_in, MAX_AGE)
        self.entries[key] = (now, phase, time.monotonic() + wait)

    def forget(self, key: tuple[str, str]) -> None:
        self.entries.pop(key, None)
