"""Desired children against observed ones (pure): what to write, what to delete, what is not ours.

Each manifest carries the hash of what was applied, so an unchanged child
costs no write; a child edited or deleted by hand no longer matches and is
applied again. A child that exists but is not this portal's is never written.
A Job is written once: its pod template is immutable and it runs as it was made
(a new run is a new Job), so a Job that exists is never applied again.

Rendering and hashing cost a few milliseconds of CPU, and most reconciles of a
portal render exactly what the last one did (a child's status moved, not its
inputs): `desired` hands out copies of the last render of each portal while its
inputs are equal.
"""

from __future__ import annotations

import copy
import json
import threading
import zlib
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from kubernetes.utils import parse_quantity

from portico.api.model import Portal, PortalInstance
from portico.core import render
from portico.core.names import APPLIED_HASH
from portico.core.observed import Key
from portico.core.render import Facts, checksum
from portico.settings import Settings

# Portals whose last render is kept (about 5 KiB each, inputs included): the portals
# a converge is busy with at once; the others render again when next reconciled.
RENDERS_KEPT = 512


@dataclass(frozen=True)
class Write:
    manifest: dict[str, Any]
    # Not there yet: created, so an object someone makes meanwhile is never taken over.
    create: bool

    @property
    def key(self) -> Key:
        return (self.manifest["kind"], self.manifest["metadata"]["name"])


@dataclass(frozen=True)
class Changes:
    writes: tuple[Write, ...] = ()
    deletes: tuple[Key, ...] = ()
    conflicts: tuple[Key, ...] = ()
    skipped: tuple[Key, ...] = ()  # up to date: no write


def covers(actual: Any, desired: Any) -> bool:
    """Whether ACTUAL still holds all of DESIRED (server defaults may add more)."""
    if isinstance(desired, dict):
        return isinstance(actual, dict) and all(
            k in actual and covers(actual[k], v) for k, v in desired.items()
        )
    if isinstance(desired, list):
        return (
            isinstance(actual, list)
            and len(actual) == len(desired)
            and all(covers(a, d) for a, d in zip(actual, desired, strict=True))
        )
    if isinstance(desired, bool) or isinstance(actual, bool):
        return actual is desired
    return actual == desired or str(actual) == str(desired) or _same_quantity(actual, desired)


def _same_quantity(actual: Any, desired: Any) -> bool:
    """The API server stores quantities canonically (cpu 0.5 comes back as 500m)."""
    try:
        same = parse_quantity(actual) == parse_quantity(desired)  # type: ignore[no-untyped-call]
        return bool(same)
    except (ValueError, TypeError):
        return False


def with_hash(manifest: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(manifest)
    out["metadata"].setdefault("annotations", {})[APPLIED_HASH] = checksum(manifest)
    return out


def up_to_date(manifest: dict[str, Any], current: Mapping[str, Any] | None) -> bool:
    if current is None:
        return False
    annotations = current["metadata"].get("annotations") or {}
    hashed = manifest["metadata"]["annotations"][APPLIED_HASH]
    return annotations.get(APPLIED_HASH) == hashed and covers(current, manifest)


class Renders:
    """The last render of each portal (hashed, as compressed JSON) with the inputs it was
    made from: bounded, least recently used first out, shared by the reconcile threads."""

    def __init__(self, size: int = RENDERS_KEPT) -> None:
        self.size = size
        self._kept: OrderedDict[tuple[str, str], tuple[tuple[Any, ...], bytes]] = OrderedDict()
        self._lock = threading.Lock()

    def desired(
        self, portal: Portal, instance: PortalInstance | None, settings: Settings, facts: Facts
    ) -> list[dict[str, Any]]:
        key, inputs = (portal.namespace, portal.name), (portal, instance, settings, facts)
        with self._lock:
            kept = self._kept.get(key)
            if kept is not None:
                self._kept.move_to_end(key)
        if kept is not None and kept[0] == inputs:
            made: list[dict[str, Any]] = json.loads(zlib.decompress(kept[1]))
            return made
        made = [with_hash(m) for m in render.children(portal, instance, settings, facts)]
        blob = zlib.compress(json.dumps(made, separators=(",", ":")).encode(), 1)
        with self._lock:
            self._kept[key] = (inputs, blob)
            self._kept.move_to_end(key)
            while len(self._kept) > self.size:
                self._kept.popitem(last=False)
        return made


RENDERS = Renders()


# `render.children`, each with its applied hash (`with_hash`): fresh copies, the caller's.
desired_children = RENDERS.desired


def changes(
    desired: Iterable[dict[str, Any]],
    owned: Mapping[Key, Mapping[str, Any]],
    foreign: frozenset[Key],
    keep: set[Key] | frozenset[Key] = frozenset(),
) -> Changes:
    """Write what changed, delete owned children no longer wanted (except KEEP). DESIRED
    carry their applied hash (`with_hash`)."""
    writes, conflicts, skipped, wanted = [], [], [], set()
    for manifest in desired:
        key = (manifest["kind"], manifest["metadata"]["name"])
        wanted.add(key)
        if key in foreign:
            conflicts.append(key)
        elif up_to_date(manifest, owned.get(key)) or (key[0] == "Job" and key in owned):
            skipped.append(key)
        else:
            writes.append(Write(manifest, create=key not in owned))
    deletes = tuple(sorted(k for k in owned if k not in wanted and k not in keep))
    return Changes(tuple(writes), deletes, tuple(conflicts), tuple(skipped))
