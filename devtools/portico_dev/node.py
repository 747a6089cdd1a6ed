"""A real node beside the kwok nodes: containerd + runc, a CNI bridge, the kubelet,
kube-proxy and Traefik, all inside one network namespace of their own.

Everything lives under `<workdir>/node/` (configs, sockets, state, pod logs) and in
the cgroup `/portico-<id>`; nothing is written to /etc and the host's network is
untouched: the only doors are the relays of forward.py (API server in, ingress out).
`nodeteardown.teardown` undoes all of it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from portico_dev import images, kubeconfig, nodeconfig, procs, traefik
from portico_dev.flags import SERVICE_CIDR
from portico_dev.forward import Endpoint, rule
from portico_dev.nodeconfig import CNI_BIN, POD_SUBNET
from portico_dev.nodeteardown import cgroup_dirs
from portico_dev.pki import PKI
from portico_dev.state import State

if TYPE_CHECKING:
    from portico_dev.controlplane import ControlPlane

NODE_NAME = "real-node-0"
NODE_IP = "10.249.0.1"  # on a dummy link inside the node's namespace only
KWOK_TAINT = "kwok.x-k8s.io/node=fake:NoSchedule"
REQUIRED_COMMANDS = ("containerd", "containerd-shim-runc-v2", "runc", "ctr", "nsenter", "ip")


class NodeUnavailable(RuntimeError):
    """A Debian package or binary the real node needs is missing."""


def check_host() -> None:
    if os.geteuid() != 0:
        raise NodeUnavailable("the real node needs root (network namespaces, cgroups, mounts)")
    missing = [c for c in REQUIRED_COMMANDS if shutil.which(c) is None]
    if not (CNI_BIN / "bridge").is_file():
        missing.append(f"{CNI_BIN}/bridge")
    if missing:
        raise NodeUnavailable(
            f"the real node needs {', '.join(missing)}: run `bash .ci/install-system-packages`"
            " (Debian containerd, runc, containernetworking-plugins, iproute2)"
        )


def import_image(state: State, archive: Path) -> None:
    """Import an OCI archive into the real node of a running dev cluster (any process)."""
    if not state.real_node:
        raise NodeUnavailable("the dev cluster has no real node (`portico dev up --real-node`)")
    images.import_archive(["ctr", "--address", state.real_node["containerd_socket"]], archive)


class RealNode:
    """Start with `RealNode(plane).start()`; the control plane's stop() tears it down."""

    def __init__(
        self,
        plane: ControlPlane,
        bins: dict[str, Path],
        log: Callable[[str], None] | None = None,
        base_domain: str = traefik.DEFAULT_BASE_DOMAIN,
    ):
        self.plane = plane
        # Traefik's default certificate covers *.<base_domain>: the portals' default hosts.
        self.base_domain = base_domain
        self.bins = bins
        self._log = log or (lambda _m: None)
        self.dir = plane.workdir / "node"
        self.id = hashlib.sha256(str(plane.workdir).encode()).hexdigest()[:10]
        self.socket = self.dir / "containerd.sock"
        self.netns_pid = 0

    # -- small helpers --------------------------------------------------------

    @property
    def netns(self) -> str:
        return f"/proc/{self.netns_pid}/ns/net"

    def inside(self, argv: list[str]) -> list[str]:
        """argv run inside the node's network namespace."""
        return ["nsenter", f"--net={self.netns}", "--", *argv]

    @property
    def ctr(self) -> list[str]:
        """The `ctr` command prefix that talks to this node's containerd."""
        return ["ctr", "--address", str(self.socket)]

    def import_image(self, archive: Path) -> None:
        images.import_archive(self.ctr, archive)

    def expose_host_port(self, port: int, *, udp: bool = False) -> str:
        """Let pods reach the host's 127.0.0.1:port at the returned NODE_IP:port (TCP, and UDP).

        For test servers on the host's loopback (an instance URL, a DNS server) that
        pods must call; one relay process per port (TCP and UDP if the first asked for
        both), stopped with the node.
        """
        source, target = Endpoint("node", NODE_IP, port), Endpoint("host", "127.0.0.1", port)
        name = f"relay-{port}"
        assert self.plane.state is not None
        if name in self.plane.state.processes:  # one relay per port, whoever asks again
            return f"{NODE_IP}:{port}"
        argv = [sys.executable, "-m", "portico_dev.forward", f"--join={self.netns}"]
        rules = [rule(source, target)] + ([rule(source, target, udp=True)] if udp else [])
        self._spawn(name, [*argv, *rules])
        log = self.dir / "logs" / f"{name}.log"
        self._wait(
            f"the relay to port {port}", lambda: _log_has(log, "forwarding"), time.monotonic() + 30
        )
        return f"{NODE_IP}:{port}"

    def _spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> None:
        plane = self.plane
        component = procs.spawn(
            name,
            argv,
            self.dir / "logs" / f"{name}.log",
            env,
            die_with_parent=plane.die_with_parent,
        )
        plane.components.append(component)
        assert plane.state is not None
        # argv[0] after nsenter's exec is the binary itself (pid_matches checks it).
        exe = argv[3] if argv[0] == "nsenter" else argv[0]
        plane.state.processes[name] = (component.pid, exe)
        plane._save_state()

    def _wait(self, what: str, check: Callable[[], bool], deadline: float) -> None:
        while time.monotonic() < deadline:
            for component in self.plane.components:
                component.check()
            if check():
                return
            time.sleep(0.3)
        raise TimeoutError(f"real node: timed out waiting for {what} (logs in {self.dir / 'logs'})")

    # -- start -------------------------------------------------------------------

    def start(self, timeout: float = 180.0) -> None:
        check_host()
        started = time.monotonic()
        deadline = started + timeout
        plane = self.plane
        assert plane.state is not None
        for sub in ("logs", "cni/net.d", "cni/ipam", "kubelet", "pod-logs", "containerd"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        api_port = plane.state.ports["apiserver"]
        http, https = procs.free_port(), procs.free_port()
        plane.state.real_node = {
            "name": NODE_NAME,
            "dir": str(self.dir),
            "cgroup_root": f"/portico-{self.id}",
            "containerd_socket": str(self.socket),
            "network": f"portico-{self.id}",
            "ingress": {"http": f"127.0.0.1:{http}", "https": f"127.0.0.1:{https}"},
        }
        plane._save_state()
        rules = [
            # The node's components use the same kubeconfig URL as the host.
            rule(Endpoint("node", "127.0.0.1", api_port), Endpoint("host", "127.0.0.1", api_port)),
            # Pods reach the API server through the `kubernetes` Service (see _rbac_and_endpoints).
            rule(Endpoint("node", NODE_IP, api_port), Endpoint("host", "127.0.0.1", api_port)),
            rule(Endpoint("host", "127.0.0.1", http), Endpoint("node", "127.0.0.1", traefik.HTTP)),
            rule(
                Endpoint("host", "127.0.0.1", https), Endpoint("node", "127.0.0.1", traefik.HTTPS)
            ),
        ]
        network = f"{NODE_IP},{SERVICE_CIDR}"
        argv = [sys.executable, "-m", "portico_dev.forward", network, *rules]
        self._spawn("node-net", argv)
        self.netns_pid = plane.state.processes["node-net"][0]
        self._wait(
            "the node network",
            lambda: _log_has(self.dir / "logs" / "node-net.log", "forwarding"),
            deadline,
        )
        pause = images.pause_image()
        self._start_containerd(pause.ref)
        self._wait("containerd", self.socket.exists, deadline)
        self.import_image(pause.archive)
        self._log(f"containerd up, pause image imported ({time.monotonic() - started:.1f}s)")
        pki = PKI.load(plane.workdir / "pki")
        self._start_kubelet(pki)
        self._start_kube_proxy(pki)
        self._rbac_and_endpoints(api_port)
        self._start_traefik(pki)
        plane.kubectl("taint", "nodes", "-l", "type=kwok", KWOK_TAINT, "--overwrite")
        plane._wait_kubectl(
            ["wait", "--for=condition=Ready", f"node/{NODE_NAME}"], "the real node Ready", deadline
        )
        self._wait("Traefik", lambda: _http_answers(f"http://127.0.0.1:{http}/"), deadline)
        self._log(
            f"real node {NODE_NAME} Ready, ingress http {http} https {https} "
            f"({time.monotonic() - started:.1f}s)"
        )

    def _start_containerd(self, sandbox_image: str) -> None:
        network = self.plane.state.real_node["network"] if self.plane.state else ""
        path = nodeconfig.write_containerd(self.dir, self.socket, sandbox_image, network)
        self._spawn("containerd", self.inside(["/usr/bin/containerd", f"--config={path}"]))

    def _client(self, pki: PKI, name: str, user: str, groups: tuple[str, ...]) -> Path:
        assert self.plane.state is not None
        pair = pki.issue(name, user, organizations=groups, client=True)
        return kubeconfig.write(
            self.dir / f"{name}.kubeconfig",
            server=self.plane.server,
            ca=pki.ca.cert,
            user=user,
            cert=pair.cert,
            key=pair.key,
        )

    def _start_kubelet(self, pki: PKI) -> None:
        # RBAC is the only authorizer here (no Node authorizer), so the kubelet is an admin.
        kcfg = self._client(
            pki, "kubelet", f"system:node:{NODE_NAME}", ("system:nodes", "system:masters")
        )
        cgroup_root = self.plane.state.real_node["cgroup_root"] if self.plane.state else ""
        _make_cgroup_root(cgroup_root)
        (self.dir / "resolv.conf").write_text("nameserver 127.0.0.1\n")
        config = nodeconfig.kubelet(self.dir, self.socket, cgroup_root, pki.ca.cert)
        path = self.dir / "kubelet-config.yaml"
        path.write_text(yaml.safe_dump(config))
        argv = [
            str(self.bins["kubelet"]),
            f"--config={path}",
            f"--kubeconfig={kcfg}",
            f"--root-dir={self.dir / 'kubelet'}",
            f"--cert-dir={self.dir / 'kubelet' / 'pki'}",
            f"--hostname-override={NODE_NAME}",
            f"--node-ip={NODE_IP}",
            "--node-labels=type=real",
            "--v=1",
        ]
        self._spawn("kubelet", self.inside(argv))

    def _start_kube_proxy(self, pki: PKI) -> None:
        kcfg = self._client(pki, "kube-proxy", "system:kube-proxy", ())
        config = nodeconfig.kube_proxy(kcfg, NODE_NAME, POD_SUBNET)
        path = self.dir / "kube-proxy-config.yaml"
        path.write_text(yaml.safe_dump(config))
        argv = [str(self.bins["kube-proxy"]), f"--config={path}", "--v=1"]
        self._spawn("kube-proxy", self.inside(argv))

    def _rbac_and_endpoints(self, api_port: int) -> None:
        """The `kubernetes` Service points at the relay on the node address (pods → API)."""
        endpoints = {
            "apiVersion": "v1",
            "kind": "Endpoints",
            "metadata": {"name": "kubernetes", "namespace": "default"},
            "subsets": [
                {
                    "addresses": [{"ip": NODE_IP}],
                    "ports": [{"name": "https", "port": api_port, "protocol": "TCP"}],
                }
            ],
        }
        docs = [endpoints, *traefik.crd_documents(), *traefik.rbac_documents()]
        self.plane.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(docs))
        names = [f"crd/{d['metadata']['name']}" for d in traefik.crd_documents()]
        self.plane.kubectl("wait", "--for=condition=Established", "--timeout=60s", *names)

    def _start_traefik(self, pki: PKI) -> None:
        kcfg = self._client(pki, "traefik", traefik.USER, ())
        wildcard = pki.issue(
            "default-host", f"*.{self.base_domain}", server=True, hosts=(f"*.{self.base_domain}",)
        )
        dynamic = traefik.default_store(
            self.dir / "traefik-dynamic.yaml", wildcard.cert, wildcard.key
        )
        argv = [str(self.bins["traefik"]), *traefik.arguments(dynamic)]
        self._spawn(
            "traefik", self.inside(argv), env={"KUBECONFIG": str(kcfg), "PATH": "/usr/bin:/bin"}
        )


def _log_has(path: Path, text: str) -> bool:
    try:
        return text in path.read_text(errors="replace")
    except OSError:
        return False


def _http_answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except urllib.error.HTTPError:
        return True  # Traefik's 404 for an unknown host: it is serving
    except OSError:
        return False


def _make_cgroup_root(cgroup_root: str) -> None:
    """The kubelet insists that its cgroup root exists; cpuset children start empty in v1."""
    from portico_dev.nodeteardown import CGROUP_FS

    name = cgroup_root.strip("/")
    for hierarchy in sorted(CGROUP_FS.iterdir()):
        if not (hierarchy / "cgroup.procs").exists():
            continue
        target = hierarchy / name
        target.mkdir(exist_ok=True)
        for knob in ("cpuset.cpus", "cpuset.mems"):
            if (hierarchy / knob).exists():
                (target / knob).write_text((hierarchy / knob).read_text())
    if not cgroup_dirs(cgroup_root):
        raise RuntimeError(f"could not create the cgroup {cgroup_root}")
