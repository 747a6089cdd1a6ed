"""The operator's memory of the cluster, fed by the watches: reconciles read here, not the API.

Only what decisions need is kept. Children are Portico's own (the watches
select `app.kubernetes.io/managed-by=portico` on the server). Secrets are kept
as name, resourceVersion and key names; their values only for the Secrets a
portal or an instance references (a .pfx, a TLS pair, credentials) and for
Portico's own children. Portals and children are kept packed (compressed JSON,
`Packed`): a fleet's objects would otherwise be most of the operator's memory,
and a reconcile unpacks only the few it reads.
"""

from __future__ import annotations

import copy
import json
import zlib
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from portico.controller.kube import RESOURCES
from portico.core import names
from portico.core.observed import Endpoint, SecretView

NsName = tuple[str, str]


def _version(obj: Mapping[str, Any]) -> int | None:
    try:
        return int(obj["metadata"]["resourceVersion"])
    except (KeyError, TypeError, ValueError):
        return None


def kept(obj: Mapping[str, Any]) -> dict[str, Any]:
    """A copy to keep: without the field sets of managedFields, often the larger half of
    an object; who wrote what part when (manager, subresource, time) is kept."""
    return copy.deepcopy(_unmanaged(obj))


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

    version: int | None
    controller: str
    portal: str
    blob: bytes

    @classmethod
    def of(cls, obj: Mapping[str, Any]) -> Packed:
        meta = obj["metadata"]
        text = json.dumps(_unmanaged(obj), separators=(",", ":")).encode()
        portal = str((meta.get("labels") or {}).get(names.PORTAL_LABEL, ""))
        return cls(_version(obj), controller_uid(obj), portal, zlib.compress(text, 1))

    def unpack(self) -> dict[str, Any]:
        out: dict[str, Any] = json.loads(zlib.decompress(self.blob))
        return out


class Packs(Mapping[NsName, dict[str, Any]]):
    """(namespace, name) → object, kept packed; reading one gives a fresh dict."""

    def __init__(self) -> None:
        self.packed: dict[NsName, Packed] = {}

    def __getitem__(self, key: NsName) -> dict[str, Any]:
        return self.packed[key].unpack()

    def __iter__(self) -> Iterator[NsName]:
        return iter(list(self.packed))

    def __len__(self) -> int:
        return len(self.packed)

    def __contains__(self, key: object) -> bool:
        return key in self.packed

    def put(self, key: NsName, obj: Mapping[str, Any]) -> bool:
        """Keep OBJ; False when it is older than what is kept (a late event after our write)."""
        if self.holds(key, obj):  # the watch's echo of what a write answered: kept
            return True
        old, version = self.packed.get(key), _version(obj)
        kept = old.version if old else None
        if kept is not None and version is not None and version < kept:
            return False
        self.packed[key] = Packed.of(obj)
        return True

    def holds(self, key: NsName, obj: Mapping[str, Any]) -> bool:
        """Whether exactly this version of OBJ is kept already."""
        old, version = self.packed.get(key), _version(obj)
        return old is not None and version is not None and old.version == version

    def pop(self, key: NsName) -> Packed | None:
        return self.packed.pop(key, None)


@dataclass
class Store:
    portals: Packs = field(default_factory=Packs)
    invitations: Packs = field(default_factory=Packs)
    instances: dict[str, dict[str, Any]] = field(default_factory=dict)
    namespace_labels: dict[str, dict[str, str]] = field(default_factory=dict)
    # Namespaces being deleted: nothing can be created there, and their portals go too.
    terminating: set[str] = field(default_factory=set)
    # kind → (namespace, name) → object, for Portico's children
    children: dict[str, Packs] = field(default_factory=lambda: defaultdict(Packs))
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

    def put_portal(self, obj: Mapping[str, Any]) -> bool:
        """Keep the Portal; False when the event is older than what is kept."""
        meta = obj["metadata"]
        return self.portals.put((meta["namespace"], meta["name"]), obj)

    def put_invitation(self, obj: Mapping[str, Any]) -> bool:
        """Keep the PortalInvitation (with its kind: list items carry none)."""
        meta = obj["metadata"]
        full = {**obj, "apiVersion": RESOURCES["PortalInvitation"].api_version}
        full["kind"] = "PortalInvitation"
        return self.invitations.put((meta["namespace"], meta["name"]), full)

    def holds(self, kind: str, obj: Mapping[str, Any]) -> bool:
        """Whether this version of a Portal ("Portal"), child or Secret is what is kept."""
        meta = obj["metadata"]
        key = (meta["namespace"], meta["name"])
        if kind == "Portal":
            return self.portals.holds(key, obj)
        if kind == "PortalInvitation":
            return self.invitations.holds(key, obj)
        if kind == "Secret" and key in self.secrets:
            return self.secrets[key].resource_version == str(meta.get("resourceVersion", ""))
        return self.children[kind].holds(key, obj)

    def put_child(self, kind: str, obj: Mapping[str, Any]) -> None:
        meta = obj["metadata"]
        # Items of a list carry no kind of their own; what was applied is compared in full.
        child = {**obj, "apiVersion": RESOURCES[kind].api_version, "kind": kind}
        if not self.children[kind].put((meta["namespace"], meta["name"]), child):
            return
        portal = (meta.get("labels") or {}).get(names.PORTAL_LABEL)
        if portal:
            self.by_portal[(meta["namespace"], portal)].add((kind, meta["name"]))
        if kind == "Secret":
            self.put_secret(obj)

    def drop_child(self, kind: str, namespace: str, name: str) -> None:
        child = self.children[kind].pop((namespace, name))
        portal = child.portal if child else ""
        if portal:
            self.by_portal[(namespace, portal)].discard((kind, name))
            if not self.by_portal[(namespace, portal)]:
                del self.by_portal[(namespace, portal)]

    def owned(self, namespace: str, portal: str, uid: str) -> dict[tuple[str, str], dict[str, Any]]:
        """The children this Portal controls (its UID as their controller owner)."""
        out = {}
        # A copy first (atomic under the GIL): the event loop may add to it meanwhile.
        for kind, name in tuple(self.by_portal.get((namespace, portal), ())):
            child = self.children[kind].packed.get((namespace, name))
            if child is not None and child.controller == uid:
                out[(kind, name)] = child.unpack()
        return out

    def put_secret(self, obj: Mapping[str, Any]) -> None:
        meta = obj["metadata"]
        namespace, name = meta["namespace"], meta["name"]
        data = obj.get("data") or {}
        ours = bool((meta.get("labels") or {}).get(names.PORTAL_LABEL))
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
        if deleted:
            self.slices[key].pop(meta["name"], None)
            if not self.slices[key]:
                del self.slices[key]
            return key
        self.slices[key][meta["name"]] = tuple(
            Endpoint(
                pod=str((e.get("targetRef") or {}).get("name", "")),
                ready=(e.get("conditions") or {}).get("ready") is not False,
                terminating=bool((e.get("conditions") or {}).get("terminating")),
            )
            for e in obj.get("endpoints") or ()
        )
        return key

    def endpoints(self, namespace: str, portal: str) -> tuple[Endpoint, ...] | None:
        slices = self.slices.get((namespace, portal))
        if not slices:
            return None
        return tuple(e for endpoints in list(slices.values()) for e in endpoints)

    def secret(self, namespace: str, name: str) -> SecretView | None:
        return self.secrets.get((namespace, name))

    def forget_portal(self, namespace: str, name: str) -> None:
        self.portals.pop((namespace, name))

    def portals_in(self, namespace: str) -> Iterable[NsName]:
        return [k for k in list(self.portals) if k[0] == namespace]
