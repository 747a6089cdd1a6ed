"""The CRDs in `crds/` are the one source of truth; this module only finds and reads them."""

from __future__ import annotations

import functools
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

GROUP = "portico.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"


def crds_dir() -> Path:
    """`crds/` of a source checkout, or the copy a wheel carries as `portico/_crds`."""
    packaged = Path(str(resources.files("portico"))) / "_crds"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[3] / "crds"


@functools.cache
def documents() -> tuple[dict[str, Any], ...]:
    """Every CRD document, sorted by file name."""
    docs: list[dict[str, Any]] = []
    for path in sorted(crds_dir().glob("*.yaml")):
        docs.extend(d for d in yaml.safe_load_all(path.read_text()) if d)
    return tuple(docs)


def crd_for(kind: str) -> dict[str, Any]:
    for doc in documents():
        if doc["spec"]["names"]["kind"] == kind:
            return doc
    raise KeyError(f"no CRD for kind {kind} in {crds_dir()}")


def schema_for(kind: str) -> dict[str, Any]:
    """The served version's openAPIV3Schema for KIND."""
    for version in crd_for(kind)["spec"]["versions"]:
        if version["name"] == VERSION:
            schema: dict[str, Any] = version["schema"]["openAPIV3Schema"]
            return schema
    raise KeyError(f"CRD for {kind} does not serve {VERSION}")
