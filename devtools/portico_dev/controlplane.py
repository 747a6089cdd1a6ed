"""A real Kubernetes control plane on loopback: etcd, kube-apiserver, controller manager,
scheduler and kwok (fake nodes), driven from Python for `portico dev` and the tests.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.util
import os
import shutil
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

import yaml

from portico_dev import binaries, flags, kubeconfig, nodeteardown, procs
from portico_dev.kubectl import Kubectl, KubectlError
from portico_dev.pki import PKI, CertPair
from portico_dev.state import State

Log = Callable[[str], None]


def default_crds_dir() -> Path | None:
    """The repository's crds/ when running from a checkout, else the copy in the operator's wheel.

    The operator's package is only located (find_spec), never imported: this package
    depends on nothing of the operator's code.
    """
    candidates = [Path(__file__).resolve().parents[2] / "crds"]
    spec = importlib.util.find_spec("portico")
    if spec is not None and spec.submodule_search_locations:
        candidates += [Path(location) / "_crds" for location in spec.submodule_search_locations]
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    return None


def _https_get(url: str, ca: Path, client: CertPair, timeout: float = 2.0) -> tuple[int, str]:
    context = ssl.create_default_context(cafile=str(ca))
    context.load_cert_chain(str(client.cert), str(client.key))
    try:
        with urllib.request.urlopen(url, context=context, timeout=timeout) as response:
            return int(response.status), response.read().decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")


class ControlPlane(Kubectl):
    """One control plane. Use as a context manager, or call start() and stop().

    `detach()` hands the processes over to the state file (for `portico dev up`),
    after which `ControlPlane.attach(state_file)` can stop them from any process.
    """

    def __init__(
        self,
        *,
        bins: dict[str, Path] | None = None,
        workdir: Path | None = None,
        nodes: int = 3,
        crds_dir: Path | None = None,
        install_crds: bool = True,
        api_port: int | None = None,
        state_file: Path | None = None,
        log: Log | None = None,
        die_with_parent: bool = False,
        audit_read_users: tuple[str, ...] = (),
    ) -> None:
        self._bins = bins
        self._workdir_arg = workdir
        self.node_count = nodes
        self.crds_dir = crds_dir if crds_dir is not None else default_crds_dir()
        self.install_crds_on_start = install_crds
        self.api_port_arg = api_port
        self.state_file_arg = state_file
        self._log = log or (lambda _msg: None)
        # For in-process users (tests): the kernel kills the components if we die.
        self.die_with_parent = die_with_parent
        self.audit_read_users = audit_read_users
        self.components: list[procs.Component] = []
        # How each component was started (argv, env, log), so restart() can do it again.
        self._launches: dict[str, tuple[list[str], dict[str, str], Path]] = {}
        self.state: State | None = None
        self._owns_workdir = False
        self._atexit_registered = False

    # -- paths and accessors -------------------------------------------------

    @property
    def bins(self) -> dict[str, Path]:
        if self._bins is None:
            self._bins = binaries.locate()
        return self._bins

    @property
    def workdir(self) -> Path:
        if self.state is None:
            raise RuntimeError("control plane is not started")
        return Path(self.state.workdir)

    @property
    def kubeconfig(self) -> Path:
        """Admin kubeconfig (client certificate in group system:masters)."""
        if self.state is None:
            raise RuntimeError("control plane is not started")
        return Path(self.state.kubeconfig)

    @property
    def server(self) -> str:
        if self.state is None:
            raise RuntimeError("control plane is not started")
        return self.state.server

    @property
    def state_file(self) -> Path:
        return self.state_file_arg or self.workdir / "state.json"

    # -- lifecycle -------------------------------------------------------------

    def __enter__(self) -> ControlPlane:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self, timeout: float = 120.0) -> None:
        """Start everything and return once nodes are Ready and the CRDs are Established.

        Random ports can be raced by another process between picking and binding;
        that is retried with fresh ports. Any other failure stops what was started.
        """
        bins = self.bins  # fail before creating anything when binaries are missing
        if self.api_port_arg is not None:
            procs.check_port_free(self.api_port_arg)
        attempts = 1 if self.api_port_arg is not None else 3
        for attempt in range(1, attempts + 1):
            try:
                self._start_once(bins, timeout)
                return
            except procs.PortInUse as exc:
                if attempt == attempts:
                    raise procs.PortInUse(self._keep_logs(exc)) from exc
                self.stop()
                self._log("a port was taken while starting; retrying with new ports")
            except (procs.ProcessDied, TimeoutError, KubectlError) as exc:
                raise type(exc)(self._keep_logs(exc)) from exc
            except BaseException:
                self.stop()
                raise

    def _keep_logs(self, exc: BaseException) -> str:
        """Stop, but move the component logs somewhere that survives the cleanup."""
        message = str(exc)
        if self.state is not None and (Path(self.state.workdir) / "logs").is_dir():
            kept = Path(tempfile.mkdtemp(prefix="portico-dev-failed-logs-"))
            shutil.copytree(Path(self.state.workdir) / "logs", kept, dirs_exist_ok=True)
            message = message.replace(str(Path(self.state.workdir) / "logs"), str(kept))
            message += f"\n(all component logs kept in {kept})"
        self.stop()
        return message

    def _start_once(self, bins: dict[str, Path], timeout: float) -> None:
        started = time.monotonic()
        deadline = started + timeout
        atexit.register(self.stop)
        self._atexit_registered = True
        if self._workdir_arg is not None:
            workdir = self._workdir_arg
            workdir.mkdir(parents=True, exist_ok=True)
        else:
            workdir = Path(tempfile.mkdtemp(prefix="portico-dev-"))
            self._owns_workdir = True
        logs = workdir / "logs"
        logs.mkdir(exist_ok=True)
        pki = PKI(workdir / "pki")
        ports = {
            "apiserver": self.api_port_arg or procs.free_port(),
            "etcd": procs.free_port(),
            "etcd-peer": procs.free_port(),
        }
        server = f"https://127.0.0.1:{ports['apiserver']}"
        self.state = State(
            workdir=str(workdir),
            kubeconfig=str(workdir / "kubeconfig"),
            server=server,
            ports=ports,
            owner_pid=os.getpid(),
        )

        etcd_cert = pki.issue("etcd", "etcd", server=True, client=True)
        self._spawn(bins, "etcd", flags.etcd_args(workdir, ports, pki.ca, etcd_cert), logs)
        self._wait_http(
            "etcd", f"https://127.0.0.1:{ports['etcd']}/health", pki.ca.cert, etcd_cert, deadline
        )
        self._log(f"etcd healthy ({time.monotonic() - started:.1f}s)")

        sa = pki.service_account_keys()
        serving = pki.issue("apiserver", "kube-apiserver", server=True)
        etcd_client = pki.issue("apiserver-etcd-client", "kube-apiserver", client=True)
        args = flags.apiserver_args(ports, pki.ca, serving, etcd_client, sa)
        args += flags.audit_args(workdir, self.audit_read_users)
        self._spawn(bins, "kube-apiserver", args, logs)
        admin = pki.issue("admin", "portico-admin", organizations=("system:masters",), client=True)
        self._wait_http("kube-apiserver", f"{server}/readyz", pki.ca.cert, admin, deadline)
        self._log(f"kube-apiserver ready on {server} ({time.monotonic() - started:.1f}s)")

        kubeconfig.write(
            Path(self.state.kubeconfig),
            server=server,
            ca=pki.ca.cert,
            user="portico-admin",
            cert=admin.cert,
            key=admin.key,
        )
        users = {
            "kube-controller-manager": ("system:kube-controller-manager", ()),
            "kube-scheduler": ("system:kube-scheduler", ()),
            # kwok writes node and pod status and node leases for every fake node.
            "kwok": ("portico-kwok", ("system:masters",)),
        }
        configs = {}
        for name, (user, groups) in users.items():
            pair = pki.issue(name, user, organizations=groups, client=True)
            configs[name] = kubeconfig.write(
                workdir / f"{name}.kubeconfig",
                server=server,
                ca=pki.ca.cert,
                user=user,
                cert=pair.cert,
                key=pair.key,
            )
        self._spawn(bins, "kube-controller-manager", flags.kcm_args(configs, pki, sa), logs)
        self._spawn(bins, "kube-scheduler", flags.scheduler_args(configs), logs)
        self._spawn(bins, "kwok", flags.kwok_args(configs), logs)
        self._save_state()

        self._create_nodes(deadline)
        self._log(f"{self.node_count} kwok nodes Ready ({time.monotonic() - started:.1f}s)")
        if self.install_crds_on_start and self.crds_dir is not None:
            names = self.install_crds(self.crds_dir, timeout=max(deadline - time.monotonic(), 5))
            if names:
                self._log(f"CRDs established: {', '.join(names)}")
        self.wait_for_service_account("default", "default", deadline - time.monotonic())
        self._log(f"control plane ready in {time.monotonic() - started:.1f}s")

    @property
    def audit_log(self) -> Path:
        return self.workdir / "logs" / "audit.log"

    # -- helpers ---------------------------------------------------------------

    def _spawn(self, bins: dict[str, Path], name: str, args: list[str], logs: Path) -> None:
        env = {**os.environ, "HOME": str(logs.parent)}  # kwok reads ~/.kwok; keep it private
        self._launches[name] = ([str(bins[name]), *args], env, logs / f"{name}.log")
        self._launch(name)

    def _launch(self, name: str) -> None:
        argv, env, log = self._launches[name]
        component = procs.spawn(name, argv, log, env, die_with_parent=self.die_with_parent)
        self.components.append(component)
        if self.state is not None:
            self.state.processes[name] = (component.pid, argv[0])

    def restart(self, name: str, down: float = 0.0, timeout: float = 60.0) -> None:
        """Stop one component (etcd, kube-apiserver, ...) and start it again, same flags and
        data, after DOWN seconds; returns once the API server answers /readyz again."""
        for component in [c for c in self.components if c.name == name]:
            procs.terminate([component.pid])
            self.components.remove(component)
        time.sleep(down)
        self._launch(name)
        self._save_state()
        deadline, last = time.monotonic() + timeout, ""
        while time.monotonic() < deadline:
            self._check_components()
            ready = self.kubectl("get", "--raw=/readyz", "--request-timeout=5s", check=False)
            if ready.returncode == 0:
                return
            last = ready.stderr.strip()
            time.sleep(0.3)
        raise TimeoutError(f"the API server was not ready after restarting {name}: {last}")

    def _save_state(self) -> None:
        if self.state is not None:
            self.state.save(self.state_file)

    def _check_components(self) -> None:
        for component in self.components:
            component.check()

    def _wait_http(self, name: str, url: str, ca: Path, client: CertPair, deadline: float) -> None:
        last = ""
        while time.monotonic() < deadline:
            self._check_components()
            try:
                status, body = _https_get(url, ca, client)
                if status == 200:
                    return
                last = f"HTTP {status}: {body[:300]}"
            except (OSError, ssl.SSLError) as exc:
                last = str(exc)
            time.sleep(0.2)
        log = next((c.log for c in self.components if c.name == name), None)
        tail = procs.log_tail(log) if log else ""
        raise TimeoutError(f"{name} did not become ready at {url} ({last}); log tail:\n{tail}")

    def _create_nodes(self, deadline: float) -> None:
        docs = flags.kwok_nodes(self.node_count)
        names = [doc["metadata"]["name"] for doc in docs]
        self.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(docs))
        if self.state is not None:
            self.state.nodes = names
            self._save_state()
        self._wait_kubectl(
            ["wait", "--for=condition=Ready", "node", "-l", "type=kwok"], "nodes Ready", deadline
        )

    def status(self) -> dict[str, bool]:
        """Component name -> whether its process is still running."""
        if self.state is None:
            return {}
        return {
            name: procs.pid_alive(pid) and procs.pid_matches(pid, exe)
            for name, (pid, exe) in self.state.processes.items()
        }

    def detach(self) -> State:
        """Leave the processes running after this Python process exits (`portico dev up`)."""
        if self.state is None:
            raise RuntimeError("control plane is not started")
        if self._atexit_registered:
            atexit.unregister(self.stop)
            self._atexit_registered = False
        self.state.owner_pid = 0
        self._save_state()
        return self.state

    @classmethod
    def attach(cls, state_file: Path, log: Log | None = None) -> ControlPlane | None:
        """A handle on a control plane started by another process, or None if there is none."""
        state = State.load(state_file)
        if state is None:
            return None
        plane = cls(state_file=state_file, log=log, install_crds=False)
        plane.state = state
        plane._owns_workdir = True
        # Prefer the binaries it was started with; fall back to the usual lookup.
        apiserver = state.processes.get("kube-apiserver")
        bin_dir = Path(apiserver[1]).parent if apiserver else None
        if bin_dir is not None and (bin_dir / "kubectl").is_file():
            plane._bins = {p.name: p for p in bin_dir.iterdir()}
        return plane

    def stop(self) -> None:
        """Stop every process this control plane started and delete its temp state."""
        if self._atexit_registered:
            atexit.unregister(self.stop)
            self._atexit_registered = False
        if self.state is not None and self.state.real_node:
            # The real node first, in its own order (containers, mounts, cgroups).
            nodeteardown.teardown(self.state)
        pids = [c.pid for c in reversed(self.components) if c.alive()]
        if self.state is not None:
            # Processes from the state file (another process started them): only
            # signal pids that still run the binary we started.
            pids += [
                pid
                for pid, exe in reversed(list(self.state.processes.values()))
                if pid not in pids and procs.pid_matches(pid, exe)
            ]
        procs.terminate(pids)
        for component in self.components:
            if component.popen is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    component.popen.wait(timeout=5)
        self.components = []
        if self.state is not None:
            if self._owns_workdir:
                shutil.rmtree(self.state.workdir, ignore_errors=True)
            if self.state_file_arg is not None:
                with contextlib.suppress(FileNotFoundError):
                    self.state_file_arg.unlink()
            self.state = None
