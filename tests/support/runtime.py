"""Shared pieces of the runtime tests: a portal.json as the operator renders it, a live instance."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import uvicorn
import yaml

from portico.api import model, validation
from portico.core import render
from portico.settings import Settings
from portico_dev.procs import free_port
from portico_standin.app import create_app
from portico_standin.state import InstanceState

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "instance-token"


def portal_json(example: str, instance_url: str, credentials_dir: Path) -> dict[str, Any]:
    """The operator's own runtime_config() for an example, pointed at a test instance."""
    raw = yaml.safe_load((ROOT / "examples" / example).read_text())
    defaulted, problems = validation.admit("Portal", raw)
    assert problems == []
    inst_raw = yaml.safe_load((ROOT / "examples" / "contoso-instance.yaml").read_text())
    inst = model.parse_instance(validation.admit("PortalInstance", inst_raw)[0])
    config = render.runtime_config(model.parse_portal(defaulted), inst, Settings())
    config["instance"]["url"] = instance_url
    config["instance"]["credentialsDir"] = str(credentials_dir)
    # The test instance serves plain http on loopback (the PortalInstance's spec.insecure).
    config["instance"]["insecure"] = instance_url.startswith("http://")
    return config


def write_config(tmp: Path, config: dict[str, Any]) -> Path:
    path = tmp / "portal.json"
    path.write_text(json.dumps(config, sort_keys=True, indent=2))
    return path


def credentials(tmp: Path, token: str = TOKEN) -> Path:
    directory = tmp / "instance"
    directory.mkdir(exist_ok=True)
    (directory / "token").write_text(token + "\n")
    return directory


@contextmanager
def running_instance(
    solutions: tuple[str, ...] = ("FieldService",),
    reject: tuple[str, ...] = (),
    tls: tuple[Path, Path] | None = None,
) -> Iterator[tuple[str, InstanceState]]:
    """The `instance` app served by uvicorn on a loopback port, in a thread; over https
    with TLS (certificate and key files, the certificate for `localhost`)."""
    state = InstanceState(
        authorization=f"Bearer {TOKEN}",
        languages=("en-US", "de-DE", "fr-FR"),
        solutions=solutions,
        reject=reject,
    )
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(state),
            host="127.0.0.1",
            port=port,
            log_level="warning",
            ssl_certfile=tls and tls[0],
            ssl_keyfile=tls and tls[1],
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "the instance did not start"
        time.sleep(0.02)
    try:
        yield (f"https://localhost:{port}" if tls else f"http://127.0.0.1:{port}"), state
    finally:
        server.should_exit = True
        thread.join(10)


def run(tmp: Path, config: dict[str, Any], *args: str) -> tuple[int, str, str]:
    """The command as a separate process; returns (exit code, stdout, termination message)."""
    log = tmp / "termination-log"
    log.write_text("")
    env = {
        **os.environ,
        "PORTICO_CONFIG": str(write_config(tmp, config)),
        "PORTICO_TERMINATION_LOG": str(log),
    }
    proc = subprocess.run(
        [sys.executable, "-m", "portico_runtime", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return proc.returncode, proc.stdout, log.read_text().strip()
