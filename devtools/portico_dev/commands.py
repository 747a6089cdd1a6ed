"""`portico dev`: build, start, inspect and stop the local control plane."""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import time
from pathlib import Path

import click

from portico_dev import (
    binaries,
    constraints,
    imagebuild,
    node,
    pages,
    procs,
    pulumi_engine,
    traefik,
)
from portico_dev.controlplane import ControlPlane
from portico_dev.state import State, default_state_file


def _err(message: str) -> None:
    click.echo(message, err=True)


def _running(state_file: Path) -> ControlPlane | None:
    """The control plane recorded in state_file, or None; a dead one is cleaned up."""
    plane = ControlPlane.attach(state_file)
    if plane is None:
        return None
    if not any(plane.status().values()):
        plane.stop()  # stale state from a crash or reboot: nothing left to stop
        return None
    return plane


@click.group()
def dev() -> None:
    """A real local Kubernetes control plane (etcd, kube-apiserver, controllers, kwok)."""


@dev.command()
@click.option("--force", is_flag=True, help="Rebuild even when cached binaries exist.")
@click.option(
    "--with-pulumi", is_flag=True, help="Also the Pulumi CLI and Kubernetes provider (stacks/)."
)
def build(force: bool, with_pulumi: bool) -> None:
    """Build (or reuse) the control-plane binaries and print their directory."""
    try:
        bin_dir = binaries.build(_err, force=force)
        if with_pulumi:
            click.echo(pulumi_engine.build(_err, force=force))
    except binaries.BuildFailed as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(bin_dir)


@dev.command("images")
@click.option("--force", is_flag=True, help="Rebuild even when a cached archive exists.")
@click.option("--only", multiple=True, type=click.Choice(imagebuild.NAMES), help="Just this image.")
@click.option(
    "--lock",
    is_flag=True,
    help="First rewrite the constraints files from this venv, and their hashed locks.",
)
@click.option(
    "--import",
    "import_",
    is_flag=True,
    help="Then import them into the running dev cluster's real node.",
)
@click.option("-o", "output", type=click.Choice(["text", "json"]), default="text")
def images_(force: bool, only: tuple[str, ...], lock: bool, import_: bool, output: str) -> None:
    """Build (or reuse) the OCI image archives a real node imports."""
    if lock:
        written = constraints.lock(imagebuild.REPO)
        for path in [*written, *constraints.lock_hashes(imagebuild.REPO)]:
            _err(f"wrote {path}")
    plane = _running(default_state_file()) if import_ else None
    if import_ and (plane is None or plane.state is None):
        raise click.ClickException("--import: the dev cluster is not running (`portico dev up`)")
    try:
        built = imagebuild.build(_err, force=force, only=only)
        if plane is not None:
            for image in built:
                if image.name != "base":
                    node.import_image(_state(plane), image.archive)
                    _err(f"{image.name}: imported into the real node")
    except (imagebuild.ImageBuildFailed, node.NodeUnavailable) as exc:
        raise click.ClickException(str(exc)) from exc
    if output == "json":
        click.echo(json.dumps([image.as_json() for image in built], indent=2))
    else:
        for image in built:
            click.echo(f"{image.name:<9} {image.ref:<40} {image.archive}")


@dev.command()
@click.option("--with-operator", is_flag=True, help="Also run `portico run` against it.")
@click.option("--nodes", default=3, show_default=True, help="Number of kwok fake nodes.")
@click.option("--port", type=int, default=None, help="API server port (default: a free one).")
@click.option(
    "--real-node",
    is_flag=True,
    help="Add a real node (containerd, kubelet, kube-proxy) and Traefik; pods run for real.",
)
@click.option(
    "--base-domain",
    envvar="PORTICO_BASE_DOMAIN",
    default=traefik.DEFAULT_BASE_DOMAIN,
    show_default=True,
    help="With --real-node: Traefik's default certificate is a wildcard for *.BASE_DOMAIN "
    "(signed by the cluster's CA), serving the portals' default hosts (the operator's "
    "base domain; default: $PORTICO_BASE_DOMAIN, else the operator's default).",
)
def up(
    with_operator: bool, nodes: int, port: int | None, real_node: bool, base_domain: str
) -> None:
    """Start the control plane (building binaries on first use) and leave it running."""
    state_file = default_state_file()
    if with_operator:
        _require_operator()
    existing = _running(state_file)
    if existing is not None:
        _err("the control plane is already running (`portico dev down` stops it)")
        _print_usage(existing)
        return
    try:
        bins = binaries.ensure(_err)
        if real_node:
            node.check_host()
            bins = {**bins, **binaries.ensure_node(_err)}
    except (binaries.BuildFailed, node.NodeUnavailable) as exc:
        raise click.ClickException(str(exc)) from exc
    plane = ControlPlane(bins=bins, nodes=nodes, api_port=port, state_file=state_file, log=_err)
    started = time.monotonic()
    real: node.RealNode | None = None
    try:
        plane.start()
        if real_node:
            real = node.RealNode(plane, bins, log=_err, base_domain=base_domain)
            real.start()
    except (procs.PortInUse, procs.ProcessDied, TimeoutError, RuntimeError) as exc:
        plane.stop()
        raise click.ClickException(str(exc)) from exc
    env = _real_node_runtime(plane, bins, base_domain) if real is not None else {}
    if with_operator:
        if real is None:
            _start_operator(plane, env)
        else:
            _start_operator(plane, {**env, **_node_dns(real)}, real.netns)
    plane.detach()
    _err(f"up in {time.monotonic() - started:.1f}s")
    _print_usage(plane)


def _require_operator() -> None:
    # Located, not imported: portico_dev depends on nothing of the operator's code, and
    # starts `portico run` as a process of its own.
    if importlib.util.find_spec("portico") is None:
        raise click.ClickException(
            "--with-operator: the operator is not installed (pip install -e . in the repository)"
        )


def _real_node_runtime(
    plane: ControlPlane, bins: dict[str, Path], base_domain: str
) -> dict[str, str]:
    """Portico's runtime image, built here and imported into the real node (no registry),
    and the shared page server running it (the chart's templates/pages.yaml); the default
    hosts under BASE_DOMAIN get Traefik's default certificate."""
    try:
        built = imagebuild.build(_err, only=("runtime",))
        runtime = next(image for image in built if image.name == "runtime")
        node.import_image(_state(plane), runtime.archive)
        pages.install(plane, bins["helm"], runtime.ref, base_domain)
    except (imagebuild.ImageBuildFailed, node.NodeUnavailable, RuntimeError) as exc:
        plane.stop()
        raise click.ClickException(str(exc)) from exc
    _err(f"page server running: deployment/{pages.NAME} in {pages.NAMESPACE}")
    return {
        "PORTICO_RUNTIME_IMAGE": runtime.ref,
        "PORTICO_IMAGE_PULL_POLICY": "Never",
        "PORTICO_BASE_DOMAIN": base_domain,
        "PORTICO_DEFAULT_HOST_TLS": "true",
        **pages.operator_env(),
    }


def _state(plane: ControlPlane) -> State:
    assert plane.state is not None  # a started plane has its state
    return plane.state


def _node_dns(real: node.RealNode) -> dict[str, str]:
    """PORTICO_DNS_NAMESERVERS on the host's loopback, as the node's network reaches them."""
    servers = os.environ.get("PORTICO_DNS_NAMESERVERS", "")
    if not servers:
        return {}
    reached = []
    for server in (s.strip() for s in servers.split(",")):
        address, _, port = server.rpartition(":")
        local = address in ("127.0.0.1", "localhost") and port.isdigit()
        reached.append(real.expose_host_port(int(port), udp=True) if local else server)
    return {"PORTICO_DNS_NAMESERVERS": ",".join(reached)}


def _start_operator(
    plane: ControlPlane, settings: dict[str, str], netns: str | None = None
) -> None:
    """`portico run` on this host; with NETNS, in the real node's network, where an in-cluster
    operator would be: Service addresses (an instance's ClusterIP) answer it there."""
    log = plane.workdir / "logs" / "operator.log"
    inside = ["nsenter", f"--net={netns}", "--"] if netns else []
    argv = [*inside, sys.executable, "-c", "from portico.cli import main; main()", "run"]
    argv += ["--kubeconfig", str(plane.kubeconfig)]
    # A local operator keeps its metrics and health endpoints on loopback; in the node's
    # network, on ports of their own (the node's components hold the defaults there).
    ports = (
        {
            "PORTICO_HEALTH_PORT": str(procs.free_port()),
            "PORTICO_METRICS_PORT": str(procs.free_port()),
        }
        if netns
        else {}
    )
    # The dev cluster keeps instance credentials in the namespace a chart release would
    # be in (the page server's): the operator reads them only from its own by default.
    own = {"PORTICO_INSTANCE_CREDENTIALS_NAMESPACES": pages.NAMESPACE}
    env = {"PORTICO_LISTEN_ADDRESS": "127.0.0.1", **ports, **own, **os.environ, **settings}
    env["KUBECONFIG"] = str(plane.kubeconfig)
    component = procs.spawn("operator", argv, log, env)
    plane.components.append(component)
    if plane.state is not None:
        plane.state.processes["operator"] = (component.pid, sys.executable)
    time.sleep(2)
    try:
        component.check()
    except (procs.ProcessDied, procs.PortInUse) as exc:
        plane.stop()
        raise click.ClickException(f"the operator did not start: {exc}") from exc
    _err(f"operator running (pid {component.pid}), log: {log}")


def _print_usage(plane: ControlPlane) -> None:
    kubectl = plane.bins.get("kubectl")
    click.echo(f"API server: {plane.server}")
    click.echo("Use it with:")
    click.echo(f"  export KUBECONFIG={plane.kubeconfig}")
    if kubectl is not None:
        click.echo(f"  export PATH={kubectl.parent}:$PATH   # the matching kubectl and helm")
    click.echo("  kubectl get nodes")
    ingress = plane.state.real_node.get("ingress") if plane.state else None
    if ingress:
        click.echo(f"Ingress (Traefik): http://{ingress['http']}  https://{ingress['https']}")
        host = ingress["https"].rsplit(":", 1)
        click.echo(f"  curl --resolve HOST:{host[1]}:{host[0]} https://HOST:{host[1]}/ ...")
    click.echo("Stop it with: portico dev down")


@dev.command()
def down() -> None:
    """Stop every process `portico dev up` started and delete its temp state."""
    plane = ControlPlane.attach(default_state_file())
    if plane is None:
        _err("the control plane is not running")
        return
    workdir = plane.workdir
    plane.stop()
    click.echo(f"stopped; removed {workdir}")


def _nodes(state: State) -> list[dict[str, str]]:
    nodes = [{"name": name, "kind": "kwok"} for name in state.nodes]
    if state.real_node:
        nodes.insert(0, {"name": state.real_node["name"], "kind": "real"})
    return nodes


@dev.command()
@click.option("-o", "--output", type=click.Choice(["text", "json"]), default="text")
def status(output: str) -> None:
    """Say what is running and on which ports (exit 1 when nothing is)."""
    plane = ControlPlane.attach(default_state_file())
    if plane is None or plane.state is None:
        if output == "json":
            click.echo(json.dumps({"running": False}))
        else:
            click.echo("not running")
        sys.exit(1)
    state = plane.state
    running = plane.status()
    ingress: dict[str, str] | None = state.real_node.get("ingress")
    if output == "json":
        summary = {
            "kubeconfig": state.kubeconfig,
            "server": state.server,
            "nodes": _nodes(state),
            "ingress": ingress,
            "components": running,
        }
        click.echo(json.dumps(summary, indent=2))
        sys.exit(0 if all(running.values()) else 1)
    for name, alive in running.items():
        pid = state.processes[name][0]
        click.echo(f"{name:<24} {'running' if alive else 'STOPPED':<8} pid {pid}")
    ports = ", ".join(f"{name} {port}" for name, port in state.ports.items())
    click.echo(f"ports (127.0.0.1): {ports}")
    click.echo(f"kubeconfig: {state.kubeconfig}")
    click.echo(f"state: {state.workdir}")
    for entry in _nodes(state):
        click.echo(f"node: {entry['name']} ({entry['kind']})")
    if ingress:
        click.echo(f"ingress: http {ingress['http']}, https {ingress['https']}")
    if not all(running.values()):
        click.echo("some components stopped: `portico dev down && portico dev up` resets it")
        sys.exit(1)


@dev.command()
def kubeconfig() -> None:
    """Print the path of the admin kubeconfig of the running control plane."""
    plane = _running(default_state_file())
    if plane is None:
        raise click.ClickException("the control plane is not running (`portico dev up`)")
    click.echo(plane.kubeconfig)
