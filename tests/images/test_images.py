"""The images as built: who they run as, and that they do their jobs (buildah run, loopback)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from portico_dev import imagebuild, oci
from portico_dev.procs import free_port
from tests.support.buildah import Buildah
from tests.support.runtime import TOKEN, credentials, portal_json, running_instance

ROOT = Path(__file__).resolve().parents[2]


def test_images_are_named_and_run_as_numeric_non_root(built: dict[str, imagebuild.Image]) -> None:
    for name in ("operator", "runtime"):
        image = built[name]
        index = oci.read_index(image.archive)
        names = [m["annotations"][oci.CONTAINERD_NAME] for m in index["manifests"]]
        assert names == image.refs
        config = oci.image_config(image.archive)
        uid = config["User"].split(":")[0]
        assert uid.isdigit() and int(uid) != 0, config["User"]
    assert oci.image_config(built["operator"].archive)["Entrypoint"] == ["portico"]
    assert oci.image_config(built["runtime"].archive)["Entrypoint"] == ["portico-runtime"]


def _mounted(tmp: Path, config: dict[str, Any]) -> dict[str, str]:
    """Mounts that put the config, the credentials and a termination log where a pod has them."""
    config["instance"]["credentialsDir"] = "/etc/portico/secrets/instance"
    (tmp / "portal.json").write_text(json.dumps(config))
    # buildah sets up /dev itself, so the termination log lives in a mounted directory.
    (tmp / "termination").mkdir()
    os.chmod(tmp / "termination", 0o777)
    return {
        str(tmp / "portal.json"): "/etc/portico/portal.json:ro",
        str(tmp / "instance"): "/etc/portico/secrets/instance:ro",
        str(tmp / "termination"): "/termination",
    }


TERMINATION = {"PORTICO_TERMINATION_LOG": "/termination/log"}


@pytest.fixture(scope="module")
def runtime(built: dict[str, imagebuild.Image], buildah: Buildah) -> str:
    """One container of the runtime image for this module (a vfs copy costs seconds)."""
    return buildah.container(built["runtime"])


def test_runtime_image_provisions_against_a_live_instance(
    runtime: str, buildah: Buildah, tmp_path: Path
) -> None:
    container = runtime
    with running_instance() as (url, state):
        config = portal_json("partner-partnerfieldservice.yaml", url, credentials(tmp_path))
        mounts = _mounted(tmp_path, config)
        ok = subprocess.run(
            buildah.run_argv(
                container, "portico-runtime", "provision", mounts=mounts, env=TERMINATION
            ),
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert ok.returncode == 0, ok.stderr
        assert state.installed["partners/partner-field"] == config["solutions"]
        # Wrong credentials: a real failure, with its termination message.
        (tmp_path / "instance" / "token").write_text("not-" + TOKEN)
        failed = subprocess.run(
            buildah.run_argv(
                container, "portico-runtime", "provision", mounts=mounts, env=TERMINATION
            ),
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    assert failed.returncode == 1
    message = (tmp_path / "termination" / "log").read_text()
    assert "rejected the portal's credentials (HTTP 401)" in message
    assert message.strip() in failed.stderr, "stderr says it too (FallbackToLogsOnError)"
    assert TOKEN not in message


def test_runtime_image_serves_the_start_page(
    runtime: str, buildah: Buildah, tmp_path: Path
) -> None:
    container = runtime
    config = portal_json("customer-custom.yaml", "http://127.0.0.1:1", credentials(tmp_path))
    mounts = _mounted(tmp_path, config)
    port = free_port()
    argv = buildah.run_argv(
        container, "portico-runtime", "serve", "--host", "127.0.0.1", "--port", str(port),
        mounts=mounts,
    )  # fmt: skip
    proc = subprocess.Popen(argv, start_new_session=True, stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                    assert r.status == 200
                    break
            except OSError:
                assert proc.poll() is None, "serve exited"
                assert time.monotonic() < deadline, "serve did not answer within 60s"
                time.sleep(0.5)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as response:
            page = response.read().decode()
        assert f"<h1>{config['portal']['displayName']}</h1>" in page
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)


def test_operator_image_plans_the_examples(
    built: dict[str, imagebuild.Image], buildah: Buildah
) -> None:
    container = buildah.container(built["operator"])
    mounts = {str(ROOT / "examples"): "/examples:ro"}
    result = subprocess.run(
        buildah.run_argv(
            container, "portico", "plan", "/examples/contoso-instance.yaml",
            "/examples/customer-custom.yaml", "-o", "json", mounts=mounts,
        ),
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    kinds = {child["kind"] for child in json.loads(result.stdout)}
    assert {"ConfigMap", "Deployment", "Service", "Ingress", "Job"} <= kinds
    # Every module imports with what the image installed (kopf, kubernetes, ...).
    every = (
        "import importlib, pkgutil, portico\n"
        "for m in pkgutil.walk_packages(portico.__path__, 'portico.'):\n"
        "    importlib.import_module(m.name)\n"
        "print('imported')"
    )
    result = subprocess.run(
        buildah.run_argv(container, "python", "-c", every),
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.stdout.strip() == "imported", result.stderr
