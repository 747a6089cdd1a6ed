"""charts/portico installed with Helm on the real control plane, and what the API server
recorded of the operator's requests (its audit log)."""

from __future__ import annotations

import datetime
import json
import re
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from portico_dev import ControlPlane
from tests.support.controlplane import BASE_DOMAIN, Cluster, Operator, wait_for
from tests.support.dnsserver import AuthoritativeDNS

ROOT = Path(__file__).resolve().parents[2]


CHART = ROOT / "charts" / "portico"


CHILD_KINDS = (
    "configmaps",
    "secrets",
    "networkpolicies",
    "deployments",
    "services",
    "ingresses",
    "jobs",
    "pods",
)


RESTRICTED = "pod-security.kubernetes.io/enforce=restricted"


# What the API server says when RBAC refuses a request, and what Kopf logs then.
DENIED = re.compile(r"cannot \w+ resource|Not enough permissions|403 Forbidden")


# Environment the chart sets that the test process must choose itself (free ports).
HARNESS_ENV = {"PORTICO_METRICS_PORT", "PORTICO_HEALTH_PORT", "PORTICO_LISTEN_ADDRESS"}


@dataclass
class Release:
    """One `helm install` of charts/portico."""

    plane: ControlPlane
    name: str
    namespace: str
    workdir: Path

    def helm(self, *args: str, timeout: float = 180.0) -> subprocess.CompletedProcess[str]:
        home = self.workdir / "helm"
        env = {
            "PATH": "/usr/bin:/bin",
            "HOME": str(home),
            "HELM_CACHE_HOME": str(home / "cache"),
            "HELM_CONFIG_HOME": str(home / "config"),
            "HELM_DATA_HOME": str(home / "data"),
        }
        cmd = [str(self.plane.bins["helm"]), f"--kubeconfig={self.plane.kubeconfig}", *args]
        result = subprocess.run(
            cmd, capture_output=True, text=True, timeout=timeout, env=env, check=False
        )
        if result.returncode != 0:
            raise AssertionError(f"helm {' '.join(args)} failed:\n{result.stderr}{result.stdout}")
        return result

    def install(self, values: dict[str, Any]) -> None:
        path = self.workdir / f"{self.name}-values.yaml"
        path.write_text(yaml.safe_dump(values))
        # The control plane installed crds/ already (server-side apply); the chart's
        # crds/ are links to the same files, so Helm leaves them alone.
        self.helm(
            "install", self.name, str(CHART), "--namespace", self.namespace,
            "--skip-crds", "--values", str(path), "--wait", "--timeout", "150s",
        )  # fmt: skip

    def uninstall(self) -> None:
        self.helm("uninstall", self.name, "--namespace", self.namespace, "--wait")

    @property
    def account(self) -> str:
        # fullname: the release name when it contains the chart's name.
        return self.name

    @property
    def user(self) -> str:
        return f"system:serviceaccount:{self.namespace}:{self.account}"

    def deployment(self) -> dict[str, Any]:
        out = self.plane.kubectl("get", "deployment", self.name, "-n", self.namespace, "-o", "json")
        obj: dict[str, Any] = json.loads(out.stdout)
        return obj

    def operator_env(self) -> dict[str, str]:
        """The PORTICO_* settings the chart gave the operator container."""
        (container,) = self.deployment()["spec"]["template"]["spec"]["containers"]
        return {
            e["name"]: e.get("value", "")  # the API server drops empty values
            for e in container["env"]
            if e["name"].startswith("PORTICO_") and e["name"] not in HARNESS_ENV
        }

    def kubeconfig(self) -> Path:
        """A bound token for the chart's ServiceAccount: what the operator pod would mount."""
        return self.plane.serviceaccount_kubeconfig(
            self.namespace,
            self.account,
            create=False,
            path=self.workdir / f"{self.account}.kubeconfig",
        )


def chart_values(dns: AuthoritativeDNS, **extra: Any) -> dict[str, Any]:
    """Values that make the chart's operator usable on this control plane."""
    return {
        "baseDomain": BASE_DOMAIN,
        "logFormat": "text",
        "resyncSeconds": 20,
        "dns": {"nameservers": [f"{dns.address}:{dns.port}"], "timeout": 1, "recheckSeconds": 1},
        **extra,
    }


@contextmanager
def installed(
    plane: ControlPlane, values: dict[str, Any], workdir: Path, prefix: str
) -> Iterator[Release]:
    """The chart in a fresh namespace that enforces Pod Security restricted."""
    suffix = uuid.uuid4().hex[:6]
    namespace, name = f"{prefix}-system-{suffix}", f"{prefix}-{suffix}"
    plane.kubectl("create", "namespace", namespace)
    plane.kubectl("label", "namespace", namespace, RESTRICTED)
    release = Release(plane, name, namespace, workdir)
    try:
        release.install(values)
        yield release
    finally:
        try:
            release.uninstall()
        finally:
            plane.kubectl("delete", "namespace", namespace, "--wait=false", check=False)


@contextmanager
def exclusive(shared: Operator) -> Iterator[None]:
    """Stop the session's cluster-admin operator while another one runs."""
    shared.stop()
    try:
        yield
    finally:
        shared.start()


@contextmanager
def running(op: Operator) -> Iterator[Operator]:
    op.start()
    try:
        yield op
    finally:
        op.stop()


def audit(plane: ControlPlane, user: str, since: str = "") -> list[dict[str, Any]]:
    """Every write the operator made as USER (the audit policy logs writes at Metadata
    level); the test's own kubectl requests with the same token are left out."""
    out = []
    for line in plane.audit_log.read_text().splitlines():
        entry = json.loads(line)
        if (
            entry.get("stage") == "ResponseComplete"
            and entry["user"]["username"] == user
            and entry["requestReceivedTimestamp"] >= since
            and not entry.get("userAgent", "").startswith("kubectl")
        ):
            out.append(entry)
    return out


def describe(entry: dict[str, Any]) -> str:
    ref = entry.get("objectRef") or {}
    resource = ref.get("resource", "")
    if ref.get("subresource"):
        resource += "/" + ref["subresource"]
    group = ref.get("apiGroup") or "core"
    return f"{entry['verb']} {group}/{resource}"


def now() -> str:
    """In the audit log's format (microseconds, UTC), so strings compare as times."""
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def children(cluster: Cluster, namespace: str, name: str) -> list[str]:
    out = []
    for kind in CHILD_KINDS:
        for item in cluster.items(kind, namespace, f"portico.dev/portal={name}"):
            out.append(f"{kind}/{item['metadata']['name']}")
    return sorted(out)


def stable_resource_version(cluster: Cluster, namespace: str, name: str) -> str:
    """Wait until nothing writes the portal for a few seconds."""
    seen: list[str] = []

    def quiet() -> str | None:
        seen.append(cluster.portal(namespace, name)["metadata"]["resourceVersion"])
        recent = seen[-6:]
        return recent[0] if len(recent) == 6 and len(set(recent)) == 1 else None

    return wait_for("the portal to stop changing", quiet, timeout=60, every=0.5)
