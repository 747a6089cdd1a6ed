"""The README's "Install on a cluster" commands, run as written on the real node.

The commands are read from README.md (tests/support/readme.py), never copied here. What a
reader is told to supply, the test supplies: the images (built here and imported into the
node, so no registry), the portals' domain, the instance's address in
examples/contoso-instance.yaml (the stand-in instance pod, plain http, hence `insecure`) and
its token in contoso-crm.token. `helm` and `kubectl` are the dev cluster's, first on PATH with
KUBECONFIG set. Then the portal must be served through Traefik.

It runs after test_portals_chart.py and uninstalls what it installed: two operators never
reconcile the same portals.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from portico_dev import pages
from tests.support.controlplane import BASE_DOMAIN, Cluster
from tests.support.readme import README, ROOT, install_block, substituted
from tests.support.realnode import (
    CREDENTIALS_NAMESPACE,
    INSTANCE_TOKEN,
    Images,
    Instance,
    RealCluster,
    fetch,
    on_real_node,
    serving,
    until,
)

# A cap per command, so a wrong README fails in minutes rather than at its own 10m wait.
COMMAND_TIMEOUT = 300.0


def _reader_checkout(workdir: Path, instance: Instance) -> Path:
    """What the reader has when the README's block starts: the repository's chart and
    examples, the instance's address in the example, its token in contoso-crm.token."""
    checkout = workdir / "checkout"
    checkout.mkdir()
    (checkout / "charts").symlink_to(ROOT / "charts", target_is_directory=True)
    shutil.copytree(ROOT / "examples", checkout / "examples")
    example = checkout / "examples" / "contoso-instance.yaml"
    doc = yaml.safe_load(example.read_text())
    doc["spec"]["url"] = instance.url
    doc["spec"]["insecure"] = True  # the stand-in serves plain http inside the node
    example.write_text(yaml.safe_dump(doc))
    (checkout / "contoso-crm.token").write_text(INSTANCE_TOKEN)
    return checkout


def _shell_env(real_cluster: RealCluster, workdir: Path) -> dict[str, str]:
    tools = workdir / "bin"
    tools.mkdir()
    for name in ("helm", "kubectl"):
        (tools / name).symlink_to(real_cluster.plane.bins[name])
    home = workdir / "home"
    return {
        "PATH": f"{tools}:/usr/bin:/bin",
        "HOME": str(home),
        "KUBECONFIG": str(real_cluster.plane.kubeconfig),
        "HELM_CACHE_HOME": str(home / "cache"),
        "HELM_CONFIG_HOME": str(home / "config"),
        "HELM_DATA_HOME": str(home / "data"),
    }


def _operator_logs(real_cluster: RealCluster) -> str:
    """The chart's operator pod logs (on the node's disk: kubectl logs cannot reach them)."""
    logs = sorted(
        (real_cluster.node.dir / "pod-logs").glob(f"{CREDENTIALS_NAMESPACE}_portico-*/*/*.log")
    )
    return "\n".join(f"{p}:\n{p.read_text(errors='replace')[-3000:]}" for p in logs)


@pytest.fixture
def shell(
    real_cluster: RealCluster, portico_images: Images, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Path, dict[str, str]]]:
    workdir = tmp_path_factory.mktemp("readme")
    env = _shell_env(real_cluster, workdir)
    # A reader's cluster has no page server yet: the session's (the chart's pages.yaml,
    # applied as `portico dev up` does) would hold the names the README's release makes.
    plane, helm_bin = real_cluster.plane, real_cluster.plane.bins["helm"]
    session_pages = pages.manifests(helm_bin, portico_images.runtime, BASE_DOMAIN)
    plane.kubectl("delete", "--ignore-not-found", "--wait", "-f", "-", input=session_pages)
    yield workdir, env
    try:
        _undo(real_cluster, env)
    finally:
        pages.install(plane, helm_bin, portico_images.runtime, BASE_DOMAIN)


def _undo(real_cluster: RealCluster, env: dict[str, str]) -> None:
    # Undo what the README's commands made, whichever of them ran.
    plane = real_cluster.plane
    plane.kubectl("delete", "namespace", "support", "--ignore-not-found", check=False)
    plane.kubectl("delete", "portalinstance", "contoso-crm", "--ignore-not-found", check=False)
    plane.kubectl(
        "delete", "secret", "contoso-crm-credentials", "-n", CREDENTIALS_NAMESPACE,
        "--ignore-not-found", check=False,
    )  # fmt: skip
    helm = [str(plane.bins["helm"]), "uninstall", "portico", "-n", CREDENTIALS_NAMESPACE]
    subprocess.run([*helm, "--wait"], env=env, capture_output=True, timeout=180, check=False)


def test_readme_install_commands_serve_a_portal(
    real_cluster: RealCluster,
    portico_images: Images,
    crm: Instance,
    shell: tuple[Path, dict[str, str]],
) -> None:
    workdir, env = shell
    checkout = _reader_checkout(workdir, crm)
    block = install_block(README.read_text())
    run = substituted(block, portico_images.operator, portico_images.runtime, BASE_DOMAIN)
    _run(real_cluster, run, checkout, env)

    # What the README says the reader then has: the portal served on its host.
    portal = yaml.safe_load((ROOT / "examples" / "customer-custom.yaml").read_text())
    host = f"{portal['spec']['subdomain']}.{BASE_DOMAIN}"
    until(
        "the README's portal through Traefik",
        lambda: serving(fetch(real_cluster.http, host), portal["spec"]["displayName"]),
        timeout=60,
    )
    # Served by the chart's operator, running as a pod of the image built here.
    pods = Cluster(real_cluster.plane).items("pods", CREDENTIALS_NAMESPACE)
    operators = [p for p in pods if p["spec"]["containers"][0]["image"] == portico_images.operator]
    assert operators and all(on_real_node(p) for p in operators), pods


def _run(real_cluster: RealCluster, run: list[str], checkout: Path, env: dict[str, str]) -> None:
    """Each command in bash, in order, in the reader's checkout; the first failure stops."""
    for command in run:
        try:
            result = subprocess.run(
                ["bash", "-euo", "pipefail", "-c", command],
                cwd=checkout, env=env, capture_output=True, text=True,
                timeout=COMMAND_TIMEOUT, check=False,
            )  # fmt: skip
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"the README's command ran over {COMMAND_TIMEOUT:.0f}s: {command}\n"
                f"operator logs:\n{_operator_logs(real_cluster)}"
            ) from None
        assert result.returncode == 0, (
            f"the README's command failed (exit {result.returncode}): {command}\n"
            f"{result.stderr}{result.stdout}\noperator logs:\n{_operator_logs(real_cluster)}"
        )
