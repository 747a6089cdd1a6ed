"""The operator as a real process against the real control plane, plus polling helpers."""

from __future__ import annotations

import ctypes
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import yaml

from portico.core.names import SECRET_LABEL
from portico_dev import ControlPlane
from portico_dev.procs import free_port

T = TypeVar("T")
# Invitation codes the tests saw (in e-mails and link Secrets): test_zz_no_secrets looks for
# each in the operator's log, every Event and every invitation's status.
SEEN_CODES: list[str] = []
PORTICO = str(Path(sys.executable).with_name("portico"))
BASE_DOMAIN = "portals.test"
CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def wait_for(
    what: str, probe: Callable[[], T | None], timeout: float = 90.0, every: float = 0.5
) -> T:
    """Poll PROBE until it returns something truthy; fail with WHAT and the last value."""
    deadline, last = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}; last: {last!r}")


def new_namespace(plane: ControlPlane, prefix: str) -> str:
    """A fresh namespace PREFIX-xxxxxx whose default ServiceAccount exists (pods and Jobs
    in it are admitted from the start)."""
    name = f"{prefix}-{uuid.uuid4().hex[:6]}"
    plane.kubectl("create", "namespace", name)
    plane.wait_for_service_account(name, "default")
    return name


@contextmanager
def fresh_namespace(plane: ControlPlane, prefix: str) -> Iterator[str]:
    """new_namespace for the block, deleted (without waiting) after it."""
    name = new_namespace(plane, prefix)
    try:
        yield name
    finally:
        plane.kubectl("delete", "namespace", name, "--wait=false", check=False)


class Operator:
    """`portico run` in a subprocess, with its log in a file the tests can read."""

    def __init__(
        self,
        plane: ControlPlane,
        kubeconfig: Path,
        workdir: Path,
        *,
        netns: str | None = None,
        **env: str,
    ) -> None:
        """NETNS (a /proc/PID/ns/net path): run where the pods are, as an in-cluster operator
        would, so that Service addresses (an instance's ClusterIP) answer it; its ports then
        listen in that namespace."""
        self.plane, self.kubeconfig, self.workdir = plane, kubeconfig, workdir
        self.env, self.netns = env, netns
        self.log = workdir / "operator.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.metrics_port = self.health_port = 0

    def start(self, attempts: int = 3) -> None:
        """Start and wait for /healthz; a port taken between picking and binding is retried."""
        for attempt in range(1, attempts + 1):
            try:
                return self._start_once()
            except AssertionError as err:
                if attempt == attempts or "address already in use" not in str(err):
                    raise

    def _start_once(self) -> None:
        self.spawn()
        wait_for("the operator's liveness endpoint", self._alive, timeout=60)

    def spawn(self) -> None:
        """Start the process without waiting for it to come up (one that must refuse)."""
        self.metrics_port, self.health_port = free_port(), free_port()
        env = {
            **os.environ,
            "KUBECONFIG": str(self.kubeconfig),
            "PORTICO_BASE_DOMAIN": BASE_DOMAIN,
            "PORTICO_LISTEN_ADDRESS": "127.0.0.1",
            "PORTICO_METRICS_PORT": str(self.metrics_port),
            "PORTICO_HEALTH_PORT": str(self.health_port),
            "PORTICO_RESYNC_SECONDS": "10",
            # Run outside a pod, the operator has no namespace of its own: say where the
            # tests keep instance credentials.
            "PORTICO_INSTANCE_CREDENTIALS_NAMESPACES": "portico-system",
            **self.env,
        }
        with self.log.open("ab") as out:
            inside = ["nsenter", f"--net={self.netns}", "--"] if self.netns else []
            self.proc = subprocess.Popen(
                [*inside, PORTICO, "run"],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def _alive(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(
                f"operator exited {self.proc.returncode}:\n{self.log_text()[-3000:]}"
            )
        return in_netns(
            self.netns, lambda: _answers(f"http://127.0.0.1:{self.health_port}/healthz")
        )

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def kill(self) -> None:
        """SIGKILL, as a crashed pod or a lost node: no cleanup, no Lease handed back."""
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        self.proc = None

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def metrics(self) -> str:
        def read() -> str:
            url = f"http://127.0.0.1:{self.metrics_port}/metrics"
            with urllib.request.urlopen(url, timeout=5) as r:
                text: str = r.read().decode()
                return text

        return in_netns(self.netns, read)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1):
            return True
    except OSError:
        return False


def in_netns(netns: str | None, call: Callable[[], T]) -> T:
    """CALL's result, its sockets made in the network namespace NETNS (None: this one).

    setns(2) moves only the calling thread, so a short-lived thread does the call.
    """
    if netns is None:
        return call()
    result: list[T] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            fd = os.open(netns, os.O_RDONLY)
            try:
                if _libc.setns(fd, CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), f"setns({netns}) failed")
            finally:
                os.close(fd)
            result.append(call())
        except BaseException as err:  # handed to the caller's thread
            errors.append(err)

    thread = threading.Thread(target=run, name="in-netns")
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
    return result[0]


# The stand-in instance the session runs on loopback (conftest `standin`): the operator
# asks it for each portal's token. Empty: no instance answers (the token exchange fails).
STANDIN_URL = ""


def instance_docs(
    name: str, credentials_namespace: str, url: str | None = None
) -> list[dict[str, Any]]:
    """A PortalInstance NAME (served by the session's stand-in) and its credentials Secret."""
    url = url or STANDIN_URL or "https://crm.example.net"
    return [
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": f"{name}-credentials",
                "namespace": credentials_namespace,
                "labels": {SECRET_LABEL: "portico"},
            },
            "stringData": {"token": "instance-token"},
        },
        {
            "apiVersion": "portico.dev/v1alpha1",
            "kind": "PortalInstance",
            "metadata": {"name": name},
            "spec": {
                "url": url,
                # The stand-in serves plain http on loopback.
                "insecure": url.startswith("http://"),
                "credentialsSecretRef": {
                    "namespace": credentials_namespace,
                    "name": f"{name}-credentials",
                },
                "languages": ["en-US", "de-DE", "fr-FR"],
                "solutions": ["FieldService"],
                "administrators": ["jay@contoso.com", "ana@contoso.com"],
                "allowedNamespaces": {"from": "All"},
            },
        },
    ]


class Cluster:
    """kubectl conveniences for tests."""

    def __init__(self, plane: ControlPlane) -> None:
        self.plane = plane

    def apply(self, *docs: dict[str, Any], namespace: str | None = None) -> None:
        body = yaml.safe_dump_all(docs)
        args = ["apply", "--server-side", "--field-manager=test", "-f", "-"]
        if namespace:
            args += ["-n", namespace]
        self.plane.kubectl(*args, input=body)

    def get(self, kind: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        args = ["get", kind, name, "-o", "json"] + (["-n", namespace] if namespace else [])
        result = self.plane.kubectl(*args, check=False)
        if result.returncode != 0:
            return None
        obj: dict[str, Any] = json.loads(result.stdout)
        return obj

    def items(self, kind: str, namespace: str, selector: str = "") -> list[dict[str, Any]]:
        args = ["get", kind, "-n", namespace, "-o", "json"] + (["-l", selector] if selector else [])
        items: list[dict[str, Any]] = json.loads(self.plane.kubectl(*args).stdout)["items"]
        return items

    def portal(self, namespace: str, name: str) -> dict[str, Any]:
        obj = self.get("portal", name, namespace)
        assert obj is not None, f"portal {namespace}/{name} is gone"
        return obj

    def condition(self, obj: dict[str, Any], type_: str) -> dict[str, Any]:
        for c in (obj.get("status") or {}).get("conditions") or ():
            if c["type"] == type_:
                return dict(c)
        return {}

    def wait_phase(
        self, namespace: str, name: str, phase: str, reason: str = "", timeout: float = 90.0
    ) -> dict[str, Any]:
        def probe() -> dict[str, Any] | None:
            obj = self.portal(namespace, name)
            status = obj.get("status") or {}
            ready = self.condition(obj, "Ready")
            matches = status.get("phase") == phase and (not reason or ready.get("reason") == reason)
            current = status.get("observedGeneration") == obj["metadata"]["generation"]
            return obj if matches and current else None

        def last() -> str:
            obj = self.portal(namespace, name)
            return json.dumps(obj.get("status"), indent=1)

        try:
            return wait_for(f"portal {namespace}/{name} to be {phase} {reason}", probe, timeout)
        except AssertionError as err:
            raise AssertionError(f"{err}\nstatus: {last()}") from None

    def events(self, namespace: str, name: str) -> list[dict[str, Any]]:
        return [
            e
            for e in self.items("events", namespace)
            if (e.get("involvedObject") or {}).get("name") == name
        ]


# The session operator's own namespace and ServiceAccount (the controlplane tier's fixture).
OPERATOR_NAMESPACE, OPERATOR_ACCOUNT = "portico-system", "portico-test-operator"
