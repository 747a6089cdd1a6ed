"""The Pulumi engine on this machine: offline, a file backend, passphrase secrets."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from portico_dev import pulumi_engine

REPO = Path(__file__).resolve().parents[2]
STACKS = REPO / "stacks"


@dataclass
class Engine:
    """The locally built CLI and provider, with a PULUMI_HOME and backend of this run."""

    bins: dict[str, Path]
    root: Path  # PULUMI_HOME, the file backend and the stacks' work dirs live here
    passphrase: str
    kubeconfig: Path

    @property
    def backend(self) -> Path:
        return self.root / "backend"

    def env(self) -> dict[str, str]:
        env = pulumi_engine.offline_env(self.root / "home", self.backend, self.passphrase)
        return {**env, "KUBECONFIG": str(self.kubeconfig), "PATH": os.environ.get("PATH", "")}

    def prepare(self) -> None:
        self.backend.mkdir(parents=True, exist_ok=True)
        pulumi_engine.install_provider(self.bins, self.env())

    def stack(self, program: str, name: str) -> Stack:
        work = self.root / f"{program}-{name}"
        work.mkdir(parents=True, exist_ok=True)
        shutil.copy(STACKS / program / "Pulumi.yaml", work / "Pulumi.yaml")
        return Stack(self, program, name, work)

    def files(self) -> list[Path]:
        """Everything the engine wrote: state, history, stack config, logs."""
        return [p for p in self.root.rglob("*") if p.is_file() and "plugins" not in p.parts]


class PulumiFailed(AssertionError):
    pass


@dataclass
class Stack:
    engine: Engine
    program: str
    name: str
    work_dir: Path
    config: dict[str, tuple[str, bool]] = field(default_factory=dict)
    path_config: dict[str, tuple[str, bool]] = field(default_factory=dict)
    # Everything the engine printed for this stack so far.
    transcript: list[str] = field(default_factory=list)

    def set(self, key: str, value: Any, *, secret: bool = False) -> None:
        text = value if isinstance(value, str) else json.dumps(value)
        self.config[key] = (text, secret)

    def set_path(self, path: str, value: str, *, secret: bool = False) -> None:
        self.path_config[path] = (value, secret)

    def _run(self, op: str, expect_no_changes: bool = False) -> dict[str, Any]:
        request = {
            "program": str(STACKS / self.program),
            "work_dir": str(self.work_dir),
            "stack": self.name,
            "pulumi_root": str(self.engine.bins["pulumi"].parent.parent),
            "env": self.engine.env(),
            "config": self.config,
            "path_config": self.path_config,
            "op": op,
            "expect_no_changes": expect_no_changes,
        }
        # Config is written to Pulumi.<stack>.yaml once; later runs only add to it.
        self.config, self.path_config = {}, {}
        proc = subprocess.run(
            [sys.executable, "-m", "tests.support.pulumi_driver"],
            input=json.dumps(request),
            capture_output=True,
            text=True,
            cwd=REPO,
            env={**os.environ, **self.engine.env()},
            timeout=900,
            check=False,
        )
        self.transcript.append(proc.stderr)  # (stdout is our JSON, with decrypted outputs)
        if proc.returncode != 0:
            raise PulumiFailed(f"driver {op} exited {proc.returncode}:\n{proc.stderr[-6000:]}")
        result: dict[str, Any] = json.loads(proc.stdout)
        if "error" in result:
            raise PulumiFailed(f"pulumi {op} of {self.program}/{self.name}:\n{result['error']}")
        self.transcript.append(result["output"])
        return result

    def up(self, *, expect_no_changes: bool = False) -> dict[str, Any]:
        return self._run("up", expect_no_changes)

    def preview(self, *, expect_no_changes: bool = False) -> dict[str, Any]:
        return self._run("preview", expect_no_changes)

    def destroy(self) -> dict[str, Any]:
        return self._run("destroy")
