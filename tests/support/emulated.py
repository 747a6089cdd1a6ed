"""`portico run` as a process against the kmock API server, and what the tests look at."""

from __future__ import annotations

import asyncio
import base64
import copy
import os
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import kmock
import yaml
from kmock import Request
from prometheus_client.parser import text_string_to_metric_families

from portico_dev.procs import free_port
from tests.support.apiserver import MERGE, ApiServer
from tests.support.runtime import TOKEN

T = TypeVar("T")
ROOT = Path(__file__).resolve().parents[2]
PORTICO = str(Path(sys.executable).with_name("portico"))
PORTALS = "portico.dev/v1alpha1/portals"
INSTANCES = "portico.dev/v1alpha1/portalinstances"
NAMESPACE, NAME = "support", "help"
OPERATOR_AGENT = "OpenAPI-Generator/"  # the official client's User-Agent; Kopf's is kopf/...


async def wait_for(
    what: str, probe: Callable[[], T | None], timeout: float = 15.0, every: float = 0.05
) -> T:
    """Poll PROBE without blocking the loop (kmock serves from it) until it is truthy."""
    deadline, last = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        await asyncio.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}; last: {last!r}")


def portal(name: str = NAME, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "portico.dev/v1alpha1",
        "kind": "Portal",
        "metadata": {
            "name": name,
            "namespace": NAMESPACE,
            "uid": str(uuid.uuid4()),
            "generation": 1,
            "creationTimestamp": "2025-01-01T00:00:00Z",
        },
        "spec": {
            "displayName": "Help Centre",
            "type": "Production",
            "subdomain": name,
            "instanceRef": {"name": "contoso-crm"},
            "language": "en-US",
            "administrator": "jay@contoso.com",
            "audience": "Customer",
            "template": "CustomerSelfService",
            **spec,
        },
    }


def seed(api: ApiServer, instance_url: str) -> None:
    """One PortalInstance (the example, served by the stand-in at INSTANCE_URL), its
    credentials Secret and one Portal."""
    instance = yaml.safe_load((ROOT / "examples" / "contoso-instance.yaml").read_text())
    instance["metadata"].update(uid=str(uuid.uuid4()), generation=1)
    instance["spec"].update(url=instance_url, insecure=instance_url.startswith("http://"))
    api.objects[INSTANCES, None, "contoso-crm"] = instance
    api.objects["v1/secrets", "portico-system", "contoso-crm-credentials"] = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": "contoso-crm-credentials",
            "namespace": "portico-system",
            "uid": str(uuid.uuid4()),
            "resourceVersion": "7",
        },
        "data": {"token": base64.b64encode(TOKEN.encode()).decode()},
    }
    api.objects[PORTALS, NAMESPACE, NAME] = portal()


def stored(
    api: ApiServer, resource: str | kmock.resource, namespace: str | None, name: str
) -> dict[str, Any]:
    """The object as the emulator holds it now ({} when absent or deleted)."""
    key = (kmock.resource(resource), namespace, name)  # `in` does not parse a string resource
    if key not in api.objects or api.objects[key].deleted:
        return {}
    return copy.deepcopy(api.objects[key].raw)


def status_of(api: ApiServer, name: str = NAME) -> dict[str, Any]:
    found: dict[str, Any] = stored(api, PORTALS, NAMESPACE, name).get("status") or {}
    return found


def by_operator(requests: kmock.View) -> list[Request]:
    """Requests the operator's own client sent (not Kopf's, not the test's)."""
    return [r for r in requests if r.headers.get("User-Agent", "").startswith(OPERATOR_AGENT)]


async def quiet(api: ApiServer, seconds: float = 1.0, timeout: float = 15.0) -> None:
    """Wait until no request has arrived for SECONDS (open watches do not count)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        last = max(api.arrivals.values(), default=0.0)
        if time.monotonic() - last >= seconds:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"the API did not go quiet for {seconds}s within {timeout}s")


async def edit_portal(api: ApiServer, name: str, patch: dict[str, Any]) -> None:
    """A user's edit, through the API (so watches see it), as a merge patch.

    kmock does not bump metadata.generation on a spec change; PATCH carries it.
    """
    path = f"/apis/{PORTALS.rsplit('/', 1)[0]}/namespaces/{NAMESPACE}/portals/{name}"
    async with api.patch(path, json=patch, headers={"Content-Type": MERGE}) as response:
        assert response.status == 200, await response.text()


async def create_portal(api: ApiServer, obj: dict[str, Any]) -> None:
    path = f"/apis/{PORTALS.rsplit('/', 1)[0]}/namespaces/{NAMESPACE}/portals"
    async with api.post(path, json=obj) as response:
        assert response.status == 200, await response.text()


class Operator:
    """`portico run` in a subprocess against the kmock server; its log goes to a file."""

    def __init__(
        self, api: ApiServer, workdir: Path, resync_seconds: float, env: dict[str, str]
    ) -> None:
        self.api = api
        self.log = workdir / f"operator-{uuid.uuid4().hex[:6]}.log"
        self.kubeconfig = workdir / "kubeconfig"
        self.metrics_port = free_port()
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("PORTICO_")},
            "KUBECONFIG": str(self.kubeconfig),
            "PORTICO_BASE_DOMAIN": "portals.test",
            "PORTICO_INSTANCE_CREDENTIALS_NAMESPACES": "portico-system",
            "PORTICO_WATCH_NAMESPACES": "",  # cluster-wide: kmock cannot serve namespace lists
            "PORTICO_LISTEN_ADDRESS": "127.0.0.1",
            "PORTICO_METRICS_PORT": str(self.metrics_port),
            "PORTICO_HEALTH_PORT": str(free_port()),
            "PORTICO_RESYNC_SECONDS": str(resync_seconds),
            **env,
        }
        self.proc: subprocess.Popen[bytes] | None = None

    async def start(self) -> None:
        cluster = {"server": str(self.api.url).rstrip("/")}
        context = {"cluster": "kmock", "user": "test"}
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "kmock", "cluster": cluster}],
            "users": [{"name": "test", "user": {"token": "test"}}],
            "contexts": [{"name": "kmock", "context": context}],
            "current-context": "kmock",
        }
        self.kubeconfig.write_text(yaml.safe_dump(config))
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                [PORTICO, "run"], env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        # Kopf watches Portals once the operator's startup (which lists them) is done.
        await wait_for(
            "the operator to watch portals",
            lambda: self.api.watchers(PORTALS) or self.returncode() is not None,
            timeout=20,
        )
        assert self.returncode() is None, f"the operator exited:\n{self.log_text()}"

    def returncode(self) -> int | None:
        return None if self.proc is None else self.proc.poll()

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def metric(self, name: str, **labels: str) -> float:
        """One sample from the operator's /metrics (0 when absent)."""
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            text = response.read().decode()
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == name and labels.items() <= sample.labels.items():
                    return float(sample.value)
        return 0.0

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)


StartOperator = Callable[..., Awaitable[Operator]]
