"""Unchanged inputs, no new decision: what keeps a fleet at rest from costing CPU.

A reconcile reads the Portal, its instance, its namespace's labels, the Secrets it
references, its children, its Service's endpoints and the claims on its names —
all from the watch-fed store, where each has a version. The fingerprint is those
versions. A portal whose fingerprint is the one its last reconcile left, whose last
reconcile succeeded, and whose timers (trial expiry, a held status write, a DNS
re-check, the certificate's re-judgement) are not due would be decided exactly as
before: the periodic resync skips it without parsing or deciding.

A reconcile that wrote is remembered too, with the versions its writes were answered
with (`Answers`): deciding again on its own result would only restate it. That holds
only when nothing else moved while it ran — every input still at the version it had
before, or at the version our own write was answered with — so a change that landed
meanwhile (even to a child we had just written) is never remembered away.

Anything that changes one of those versions — an edit, a child changed or deleted
by hand (drift), a Secret rotated, a new claim — gives a new fingerprint, so the
next reconcile decides again.
"""

from __future__ import annotations

import time
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any

from portico.controller.index import Index
from portico.controller.store import Packed, Packs, Store, version_of

# An unchanged portal is still decided again at least this often: what depends on the
# clock alone (a certificate nearing expiry is judged again hourly, as observe does).
MAX_AGE = 3600.0

Fingerprint = tuple[Hashable, ...]
Object = tuple[str, str, str]  # kind ("Portal" or a child's), namespace, name
Kept = tuple[str | None, str] | None  # (resourceVersion, controller UID); None: not kept
# What an input reads as when it moved after our write: equal to nothing.
MOVED = object()


@dataclass
class Answers:
    """What one reconcile wrote, as the store took it: each object as kept before its first
    write and as its last write's answer left it."""

    store: Store
    before: dict[Object, Kept] = field(default_factory=dict)
    after: dict[Object, Kept | object] = field(default_factory=dict)

    def written(self, kind: str, obj: dict[str, Any]) -> None:
        """What the API server answered is the newest state: the next reconcile starts there."""
        if not isinstance(obj, dict) or "metadata" not in obj:
            return
        meta = obj["metadata"]
        key = (kind, meta["namespace"], meta["name"])
        with self.store.lock:
            held = packed(self.store, *key)
            if key not in self.before:
                self.before[key] = _before_write(held, version_of(obj))
            taken = (
                self.store.put_portal(obj, "answer")
                if kind == "Portal"
                else self.store.put_child(kind, obj, "answer")
            )
            # Not taken: the watch had moved past it, so something else wrote after us.
            self.after[key] = kept(self.store, *key) if taken else MOVED

    def deleted(self, kind: str, namespace: str, name: str) -> None:
        key = (kind, namespace, name)
        with self.store.lock:
            self.before.setdefault(key, kept(self.store, *key))
            self.store.drop_child(kind, namespace, name)
            self.after[key] = None

    def as_before(self, key: Object, now: Kept) -> Kept | object:
        """The version an input had before this reconcile wrote it, if it is still as our
        write left it; MOVED if it changed since."""
        if key not in self.after:
            return now
        return self.before[key] if self.after[key] == now else MOVED


def _before_write(held: Packed | None, answered: str | None) -> Kept:
    """What was kept before our write: HELD — unless HELD is our write already (its watch
    event came before the answer): then the version kept before it (none: we created it)."""
    if held is None or answered is None or held.version != answered:
        return (held.version, held.controller) if held is not None else None
    # Our write never changes a child's controller: the one before it was the same.
    return (held.previous[0], held.controller) if held.previous else None


def packed(store: Store, kind: str, namespace: str, name: str) -> Packed | None:
    packs: Packs | None = store.portals if kind == "Portal" else store.children.get(kind)
    return packs.packed.get((namespace, name)) if packs is not None else None


def kept(store: Store, kind: str, namespace: str, name: str) -> Kept:
    found = packed(store, kind, namespace, name)
    return (found.version, found.controller) if found is not None else None


def fingerprint(
    store: Store,
    index: Index,
    foreign: frozenset[Hashable],
    namespace: str,
    name: str,
    answers: Answers | None = None,
) -> Fingerprint | None:
    """The versions of everything a reconcile of this portal reads (None: not known).
    With ANSWERS: as they were before that reconcile's writes (see Answers.as_before)."""

    def read(kind: str, child: str) -> Kept | object:
        now = kept(store, kind, namespace, child)
        return answers.as_before((kind, namespace, child), now) if answers else now

    # Under the store's one lock: every version from the same moment, never half an event.
    with store.lock:
        key = (namespace, name)
        portal = read("Portal", name)
        entry = index.entries.get(key)
        if not isinstance(portal, tuple) or portal[0] is None or entry is None:
            return None
        instance = store.instances.packed.get(("", entry.instance))
        credentials = index.credentials.get(entry.instance)
        secrets = [(namespace, s) for s in sorted(entry.secrets)]
        if credentials:
            secrets.append(credentials)
        if index.mail_secret:  # the portals' mail login: every portal holds a copy
            secrets.append(index.mail_secret)
        listed = set(store.by_portal.get(key, ()))
        if answers:  # a child this reconcile deleted (or created) counts as it was before
            listed |= {(k, n) for k, ns, n in answers.after if k != "Portal" and ns == namespace}
        children = [(kind, child, read(kind, child)) for kind, child in sorted(listed)]
        labels = store.namespace_labels.get(namespace)
        claimant = entry.claimant
        return (
            portal,
            entry,
            instance.version if instance else None,
            tuple((s, _secret_version(store, *s, answers)) for s in secrets),
            tuple(c for c in children if c[2] is not None),
            store.endpoints(namespace, name),
            tuple(sorted(labels.items())) if labels is not None else None,
            namespace in store.terminating,
            index.subdomain_owner(claimant.subdomain),
            index.host_owner(claimant.hostname) if claimant.hostname else None,
            foreign,
        )


def _secret_version(store: Store, namespace: str, name: str, answers: Answers | None) -> object:
    if answers and ("Secret", namespace, name) in answers.after:
        return MOVED  # a Secret it reads and wrote: decided again, never remembered
    view = store.secret(namespace, name)
    return view.resource_version if view else None


@dataclass
class Memo:
    """(namespace, name) → the fingerprint its last reconcile left, the outcome's
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
