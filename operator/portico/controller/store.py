"""The operator's memory of the cluster, fed by the watches: reconciles read here, not the API.

Only what decisions need is kept. Children are Portico's own (the watches
select `app.kubernetes.io/managed-by=portico` on the server). Secrets are kept
as name, resourceVersion and key names; their values only for the Secrets a
portal or an instance references (a .pfx, a TLS pair, credentials) and for
Portico's own children. Portals and children are kept packed (compressed JSON,
`Packed`): a fleet's objects would otherwise be most of the operator's memory,
and a reconcile unpacks only the few it reads.

Concurrency (docs/architecture.md, "State and threads"): the watch handlers on the
event loop and the reconcile threads share one `threading.RLock` (`LOCK` of a Store,
shared with the index and the observer's caches). Every mutation happens under it, and
so does every read that iterates; what a reader gets back is its own copy or an
immutable value (`Packed` objects are frozen bytes; instances and labels are replaced
whole, never changed in place).

resourceVersions are opaque: they are compared for equality only. What keeps a late
watch event from replacing a write's answer is the order of the watch itself: after a
write, the store holds the answer and waits for its echo; the events before the echo
are older (the watch delivers in order) and are dropped. A version the store has held
before is never taken again.
"""

from __future__ import annotations

import json
import threading
import zlib
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from portico.controller.kube import RESOURCES
from portico.core import names
from portico.core.observed import Endpoint, SecretView

NsName = tuple[str, str]
# Where an object comes from: a watch event, a list (priming, or Kopf starting a watch over),
# or the API server's answer to our own write.
Source = Literal["event", "listed", "answer"]
# Versions remembered per object besides the current one: an answer that reaches the store
# after the watch has moved past it is recognised as old.
HISTORY = 3


def version_of(obj: Mapping[str, Any]) -> str | None:
    """The resourceVersion, opaque: only ever compared for equality."""
    version = (obj.get("metadata") or {}).get("resourceVersion")
    return str(version) if version else None


def _unmanaged(obj: Mapping[str, Any]) -> dict[str, Any]:
    meta = dict(obj.get("metadata", {}))
    if "managedFields" in meta:
        meta["managedFields"] = [
            {k: v for k, v in entry.items() if k != "fieldsV1"} for entry in meta["managedFields"]
        ]
    return {**obj, "metadata": meta}


def controller_uid(obj: Mapping[str, Any]) -> str:
    for ref in obj.get("metadata", {}).get("ownerReferences") or ():
        if ref.get("controller"):
            return str(ref.get("uid", ""))
    return ""


@dataclass(frozen=True, slots=True)
class Packed:
    """One object as kept: what look-ups filter on, and the object as compressed JSON —
    about a quarter of the memory of its parsed dicts, unpacked only when a reconcile reads it."""

    version: str | None
    controller: str
    portal: str
    blob: bytes
    # Versions held before this one (newest first, at most HISTORY).
    previous: tuple[str, ...] = ()
    # This version is our write's answer and its watch event has not come yet.
    awaiting_echo: bool = False

    @classmethod
    def of(
        cls, obj: Mapping[str, Any], previous: tuple[str, ...] = (), awaiting_echo: bool = False
    ) -> Packed:
        meta = obj["metadata"]
        text = json.dumps(_unmanaged(obj), separators=(",", ":")).encode()
        portal = str((meta.get("labels") or {}).get(names.PORTAL_LABEL, ""))
        blob = zlib.compress(text, 1)
        version = version_of(obj)
        awaiting_echo = awaiting_echo and version is not None
        return cls(version, controller_uid(obj), portal, blob, previous, awaiting_echo)

    def after(self, obj: Mapping[str, Any], source: Source) -> Packed | None:
        """What to keep when OBJ arrives from SOURCE while this is kept: None to keep this."""
        version = version_of(obj)
        if version is None:  # nothing to tell versions apart by: the newest to arrive is kept
            return Packed.of(obj)
        if version == self.version:
            # Our answer's echo (or a list of what we hold): nothing to unpack again.
            return replace(self, awaiting_echo=False) if self.awaiting_echo else self
        if version in self.previous:
            return None  # held before and moved past: an answer that came late
        if source == "event" and self.awaiting_echo:
            return None  # the watch has not reached our write yet: this event is older
        history = (self.version, *self.previous)[:HISTORY] if self.version else self.previous
        return Packed.of(obj, history, awaiting_echo=source == "answer")

    def unpack(self) -> dict[str, Any]:
        out: dict[str, Any] = json.loads(zlib.decompress(self.blob))
        return out


class Packs(Mapping[NsName, dict[str, Any]]):
    """(namespace, name) → object, kept packed; reading one gives a fresh dict."""

    def __init__(self, lock: threading.RLock | None = None) -> None:
        self.packed: dict[NsName, Packed] = {}
        self.lock = lock or threading.RLock()

    def __getitem__(self, key: NsName) -> dict[str, Any]:
        return self.packed[key].unpack()

    def __iter__(self) -> Iterator[NsName]:
        with self.lock:
            return iter(list(self.packed))

    def __len__(self) -> int:
        return len(self.packed)

    def __contains__(self, key: object) -> bool:
        return key in self.packed

    def put(self, key: NsName, obj: Mapping[str, Any], source: Source = "event") -> bool:
        """Keep OBJ; False when it is older than what is kept (a late event after our write,
        or an answer the watch has moved past)."""
        with self.lock:
            old = self.packed.get(key)
            new = (
                Packed.of(obj, awaiting_echo=source == "answer")
                if old is None
                else old.after(obj, source)
            )
            if new is None:
                return False
            self.packed[key] = new
            return True

    def holds(self, key: NsName, obj: Mapping[str, Any]) -> bool:
        """Whether exactly this version of OBJ is kept already."""
        old, version = self.packed.get(key), version_of(obj)
        return old is not None and version is not None and old.version == version

    def pop(self, key: NsName) -> Packed | None:
        with self.lock:
            return self.packed.pop(key, None)


@dataclass
class Store:
    # The one lock of the operator's memory: the index and the observer's caches share it.
    lock: threading.RLock = field(default_factory=threading.RLock)
    portals: Packs = field(init=False)
    invitations: Packs = field(init=False)
    # PortalInstances, keyed ("", name)
    instances: Packs = field(init=False)
    namespace_labels: dict[str, dict[str, str]] = field(default_factory=dict)
    # Namespaces being deleted: nothing can be created there, and their portals go too.
    terminating: set[str] = field(default_factory=set)
    # kind → (namespace, name) → object, for Portico's children
    children: dict[str, Packs] = field(init=False)
    # (namespace, portal) → keys of its children, so a reconcile never scans a kind
    by_portal: dict[NsName, set[tuple[str, str]]] = field(default_factory=lambda: defaultdict(set))
    secrets: dict[NsName, SecretView] = field(default_factory=dict)
    # (namespace, portal) → EndpointSlice name → its endpoints. The slices carry the
    # Service's labels (the EndpointSlice controller copies them), so they are selected
    # on the server like the children; they are the Service's, never written.
    slices: dict[NsName, dict[str, tuple[Endpoint, ...]]] = field(
        default_factory=lambda: defaultdict(dict)
    )
    # Whether a Secret's values are wanted: decided by who references it.
    wants_data: Callable[[str, str], bool] = lambda namespace, name: False

    def __post_init__(self) -> None:
        self.portals = Packs(self.lock)
        self.invitations = Packs(self.lock)
        self.instances = Packs(self.lock)
        self.children = defaultdict(lambda: Packs(self.lock))

    def put_portal(self, obj: Mapping[str, Any], source: Source = "event") -> bool:
        """Keep the Portal; False when the event is older than what is kept."""
        meta = obj["metadata"]
        return self.portals.put((meta["namespace"], meta["name"]), obj, source)

    def instance(self, name: str) -> dict[str, Any] | None:
        return self.instances.get(("", name))

    def put_instance(self, obj: Mapping[str, Any], source: Source = "event") -> bool:
        return self.instances.put(("", obj["metadata"]["name"]), obj, source)

    def put_invitation(self, obj: Mapping[str, Any], source: Source = "event") -> bool:
        """Keep the PortalInvitation (with its kind: list items carry none)."""
        meta = obj["metadata"]
        full = {**obj, "apiVersion": RESOURCES["PortalInvitation"].api_version}
        full["kind"] = "PortalInvitation"
        return self.invitations.put((meta["namespace"], meta["name"]), full, source)

    def known(self, kind: str, obj: Mapping[str, Any]) -> bool:
        """Whether this listed version of a Portal ("Portal"), an invitation, a child or a
        Secret is what is kept already; when it is our write's answer, the listing counts
        as its echo."""
        meta = obj["metadata"]
        key = (meta["namespace"], meta["name"])
        with self.lock:
            if kind == "Secret" and key in self.secrets:
                return self.secrets[key].resource_version == str(meta.get("resourceVersion", ""))
            packs = {"Portal": self.portals, "PortalInvitation": self.invitations}.get(kind)
            packs = packs if packs is not None else self.children[kind]
            return packs.holds(key, obj) and packs.put(key, obj, "listed")

    def put_child(self, kind: str, obj: Mapping[str, Any], source: Source = "event") -> bool:
        """Keep the child; False when it is older than what is kept."""
        meta = obj["metadata"]
        # Items of a list carry no kind of their own; what was applied is compared in full.
        child = {**obj, "apiVersion": RESOURCES[kind].api_version, "kind": kind}
        with self.lock:
            if not self.children[kind].put((meta["namespace"], meta["name"]), child, source):
                return False
            portal = (meta.get("labels") or {}).get(names.PORTAL_LABEL)
            if portal:
                self.by_portal[(meta["namespace"], portal)].add((kind, meta["name"]))
            if kind == "Secret":
                self.put_secret(obj)
            return True

    def drop_child(self, kind: str, namespace: str, name: str) -> None:
        with self.lock:
            child = self.children[kind].pop((namespace, name))
            portal = child.portal if child else ""
            if portal:
                self.by_portal[(namespace, portal)].discard((kind, name))
                if not self.by_portal[(namespace, portal)]:
                    del self.by_portal[(namespace, portal)]

    def owned(self, namespace: str, portal: str, uid: str) -> dict[tuple[str, str], dict[str, Any]]:
        """The children this Portal controls (its UID as their controller owner)."""
        with self.lock:
            packed = [
                (kind, name, self.children[kind].packed.get((namespace, name)))
                for kind, name in self.by_portal.get((namespace, portal), ())
            ]
        # Unpacked outside the lock: a Packed is immutable.
        return {
            (kind, name): child.unpack()
            for kind, name, child in packed
            if child is not None and child.controller == uid
        }

    def put_secret(self, obj: Mapping[str, Any]) -> None:
        meta = obj["metadata"]
        namespace, name = meta["namespace"], meta["name"]
        data = obj.get("data") or {}
        ours = bool((meta.get("labels") or {}).get(names.PORTAL_LABEL))
        with self.lock:
            keep = ours or self.wants_data(namespace, name)
            self.secrets[(namespace, name)] = SecretView(
                name=name,
                resource_version=str(meta.get("resourceVersion", "")),
                keys=frozenset(data),
                data=dict(data) if keep else {},
            )

    def put_slice(self, obj: Mapping[str, Any], deleted: bool = False) -> NsName | None:
        """Keep (or drop) one EndpointSlice's endpoints; the portal whose Service it serves."""
        meta = obj["metadata"]
        portal = (meta.get("labels") or {}).get(names.PORTAL_LABEL)
        if not portal:
            return None
        key = (meta["namespace"], portal)
        endpoints = tuple(
            Endpoint(
                pod=str((e.get("targetRef") or {}).get("name", "")),
                ready=(e.get("conditions") or {}).get("ready") is not False,
                terminating=bool((e.get("conditions") or {}).get("terminating")),
            )
            for e in obj.get("endpoints") or ()
        )
        with self.lock:
            if deleted:
                self.slices[key].pop(meta["name"], None)
                if not self.slices[key]:
                    del self.slices[key]
                return key
            self.slices[key][meta["name"]] = endpoints
        return key

    def endpoints(self, namespace: str, portal: str) -> tuple[Endpoint, ...] | None:
        with self.lock:
            slices = self.slices.get((namespace, portal))
            if not slices:
                return None
            return tuple(e for endpoints in slices.values() for e in endpoints)

    def secret(self, namespace: str, name: str) -> SecretView | None:
        return self.secrets.get((namespace, name))  # a frozen view, replaced whole

    def forget_portal(self, namespace: str, name: str) -> None:
        self.portals.pop((namespace, name))

    def portals_in(self, namespace: str) -> Iterable[NsName]:
        with self.lock:
            return [k for k in self.portals.packed if k[0] == namespace]
