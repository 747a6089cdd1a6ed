"""Where the repository keeps what the stacks install: crds/ and charts/portico."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
CRDS_DIR = REPO_ROOT / "crds"
CHART_DIR = REPO_ROOT / "charts" / "portico"


def crd_files(crds_dir: Path = CRDS_DIR) -> list[Path]:
    return sorted(crds_dir.glob("*.yaml"))


def crd_documents(path: Path) -> list[dict[str, Any]]:
    """The CustomResourceDefinitions in one YAML file."""
    docs = yaml.safe_load_all(path.read_text())
    return [d for d in docs if d and d.get("kind") == "CustomResourceDefinition"]


def crd_names(crds_dir: Path = CRDS_DIR) -> list[str]:
    """metadata.name of every CRD in crds/, e.g. portals.portico.dev."""
    return [doc["metadata"]["name"] for path in crd_files(crds_dir) for doc in crd_documents(path)]
