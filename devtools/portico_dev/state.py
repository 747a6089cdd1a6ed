"""What a running control plane looks like on disk, so another process can find and stop it.

The `portico dev` commands keep one state file (see `default_state_file`); the
test fixture keeps its own inside its temp directory.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from portico_dev.binaries import cache_root


def default_state_file() -> Path:
    """PORTICO_DEV_STATE picks another file, so two dev clusters can run side by side."""
    if override := os.environ.get("PORTICO_DEV_STATE"):
        return Path(override)
    return cache_root() / "dev" / "state.json"


@dataclass
class State:
    workdir: str
    kubeconfig: str
    server: str
    ports: dict[str, int] = field(default_factory=dict)
    # name -> [pid, executable]; the executable guards against recycled pids.
    processes: dict[str, tuple[int, str]] = field(default_factory=dict)
    nodes: list[str] = field(default_factory=list)  # kwok nodes
    owner_pid: int = 0
    # The real node (`--real-node`), as node.RealNode wrote it: name, dir, cgroup_root,
    # containerd_socket, network, ingress {"http": "127.0.0.1:P", "https": ...}; {} without.
    real_node: dict[str, Any] = field(default_factory=dict)

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2) + "\n")
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path) -> State | None:
        try:
            raw = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        raw["processes"] = {k: (int(v[0]), str(v[1])) for k, v in raw["processes"].items()}
        return cls(**raw)
