"""A rollout under API faults and SIGKILLs: the scenario `make test` runs short and bench/ long.

The operator talks to the API server only through `FaultProxy`; the test itself
(kubectl) talks to it directly, so what it reads is the truth. The figures it
returns are the reliability table's row.
"""

from __future__ import annotations

import json
import os
import random
import signal
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from portico_dev import ControlPlane
from tests.support.controlplane import Cluster, Operator, wait_for
from tests.support.faultproxy import RETRY_AFTER, FaultProxy, repeat_of
from tests.support.portals import portal

CHILD_KINDS = "configmaps,deployments,services,ingresses,jobs,secrets"


@dataclass
class Figures:
    portals: int
    fault_seconds: float
    rate: float
    faults: Counter[str] = field(default_factory=Counter)
    requests: int = 0
    kills: int = 0
    recoveries: int = 0
    self_exits: int = 0
    converge_seconds: float = 0.0
    throttled: int = 0  # Portico writes answered 429
    throttled_checked: int = 0  # ... seen repeated (not across a kill)
    throttled_then_early: int = 0  # ... repeated sooner than Retry-After
    probes: int = 0  # the first of them (`FaultProxy.probes`): no kill until repeated
    probes_repeated: int = 0
    lost: list[str] = field(default_factory=list)  # not Ready, duplicated or orphaned

    def row(self) -> dict[str, Any]:
        return {k: (dict(v) if isinstance(v, Counter) else v) for k, v in self.__dict__.items()}


def proxied_kubeconfig(source: Path, proxy: FaultProxy, target: Path) -> Path:
    """The operator's kubeconfig (same identity, same CA) pointed at the proxy."""
    config = yaml.safe_load(source.read_text())
    config["clusters"][0]["cluster"]["server"] = proxy.url
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        yaml.safe_dump(config, handle)
    return target


def _get(plane: ControlPlane, kinds: str, namespace: str) -> list[dict[str, Any]]:
    out = plane.kubectl("get", kinds, "-n", namespace, "-o", "json", "--chunk-size=0").stdout
    items: list[dict[str, Any]] = json.loads(out)["items"]
    return items


def not_ready(plane: ControlPlane, namespace: str, names: set[str]) -> set[str]:
    ready = {
        p["metadata"]["name"]
        for p in _get(plane, "portals", namespace)
        if (p.get("status") or {}).get("phase") == "Ready"
        and p["status"].get("observedGeneration") == p["metadata"]["generation"]
    }
    return names - ready


def audit_children(plane: ControlPlane, namespace: str, names: set[str]) -> list[str]:
    """All that is lost: a portal not Ready, a second attempt, an extra or orphaned child."""
    lost: list[str] = []
    portals = {p["metadata"]["uid"]: p for p in _get(plane, "portals", namespace)}
    per_owner: Counter[tuple[str, str]] = Counter()
    for child in _get(plane, CHILD_KINDS, namespace):
        owners = [o for o in child["metadata"].get("ownerReferences") or () if o.get("controller")]
        managed = (child["metadata"].get("labels") or {}).get("app.kubernetes.io/managed-by")
        if managed != "portico":
            continue
        if not owners or owners[0]["uid"] not in portals:
            lost.append(f"orphaned {child['kind']} {child['metadata']['name']}")
            continue
        component = (child["metadata"].get("labels") or {}).get("app.kubernetes.io/component")
        if component == "pages":  # the "Getting set up" page's own Deployment and ConfigMap
            continue
        per_owner[(owners[0]["uid"], child["kind"])] += 1
    for uid, p in portals.items():
        name, status = p["metadata"]["name"], p.get("status") or {}
        if name not in names:
            continue
        if status.get("phase") != "Ready":
            lost.append(f"{name} is {status.get('phase')}")
        attempt = (status.get("provisioning") or {}).get("attempt")
        if attempt != 1:
            lost.append(f"{name} provisioning attempt {attempt}")
        for kind in ("Job", "Deployment", "Service", "Ingress", "ConfigMap"):
            if per_owner[(uid, kind)] != 1:
                lost.append(f"{name} has {per_owner[(uid, kind)]} {kind}")
    return lost


def check_retry_after(figures: Figures, proxy: FaultProxy) -> None:
    """Portico's own client waits at least Retry-After before it sends the same request again."""
    seen = list(proxy.seen)
    probes = {id(p) for p in proxy.probes}
    for i, s in enumerate(seen):
        # Writes only: two reconciles may GET one path a moment apart, while a repeated
        # write is the same body to the same path (GETs: urllib3 honours the header too).
        if not s.throttled_portico_write:
            continue
        figures.throttled += 1
        figures.probes += id(s) in probes
        later = repeat_of(seen, i)
        if later is None or later.fault == "kill":  # a new process owes it no wait
            continue
        figures.throttled_checked += 1
        figures.probes_repeated += id(s) in probes
        if later.at - s.at < RETRY_AFTER - 0.05:
            figures.throttled_then_early += 1


def _await_probe_repeats(proxy: FaultProxy, timeout: float = RETRY_AFTER + 10.0) -> None:
    """Before a kill: the client has sent every probe again (or TIMEOUT passed: the check
    then counts fewer), and no new probe comes until `hold_probes(False)` after the kill.

    When the kill schedule has slipped (restarts take longer than its gaps), a restarted
    operator is killed as soon as it is healthy, just as it starts writing: without this
    wait a probe is cut by the kill before its Retry-After has passed, in every run."""
    deadline = time.monotonic() + timeout
    while True:
        while proxy.unrepeated_probes() and time.monotonic() < deadline:
            time.sleep(0.05)
        proxy.hold_probes(True)
        if not proxy.unrepeated_probes() or time.monotonic() >= deadline:
            return
        proxy.hold_probes(False)  # one came between the check and the hold


def run(
    plane: ControlPlane,
    operator: Operator,
    namespace: str,
    instance: str,
    workdir: Path,
    *,
    portals: int,
    fault_seconds: float,
    kills: int,
    rate: float = 0.2,
    converge_timeout: float = 300.0,
    seed: int = 12,
) -> Figures:
    """Stop OPERATOR, run a faulty twin through the proxy, then restore OPERATOR."""
    figures = Figures(portals=portals, fault_seconds=fault_seconds, rate=rate)
    chance = random.Random(seed)
    proxy = FaultProxy(plane.server, plane.workdir / "pki", rate=rate, seed=seed).start()
    kubeconfig = proxied_kubeconfig(operator.kubeconfig, proxy, workdir / "proxied.kubeconfig")
    faulty = Operator(plane, kubeconfig, workdir, **operator.env)
    operator.stop()
    try:
        faulty.start()
        names = {f"chaos-{i:03d}" for i in range(portals)}
        docs = [portal(n, namespace, instance) for n in sorted(names)]
        cluster = Cluster(plane)
        for start in range(0, len(docs), 50):
            cluster.apply(*docs[start : start + 50])
        began = time.monotonic()
        for k in range(kills):
            due = began + fault_seconds * (k + chance.uniform(0.3, 1.0)) / kills
            time.sleep(max(0.0, due - time.monotonic()))
            assert faulty.proc is not None
            _await_probe_repeats(proxy)
            if faulty.proc.poll() is not None:
                figures.self_exits += 1  # it died on its own: a failure the test reports
            else:
                os.kill(faulty.proc.pid, signal.SIGKILL)
                faulty.proc.wait()
                proxy.mark_kill()
                figures.kills += 1
            proxy.hold_probes(False)
            faulty.proc = None
            faulty.start()
            figures.recoveries += 1
        time.sleep(max(0.0, began + fault_seconds - time.monotonic()))
        proxy.rate = 0.0
        last_fault = time.monotonic()
        _wait_ready(plane, namespace, names, converge_timeout)
        figures.converge_seconds = round(time.monotonic() - last_fault, 1)
        time.sleep(3)  # a late duplicate would show up now
        figures.lost = audit_children(plane, namespace, names)
        assert faulty.proc is not None
        if faulty.proc.poll() is not None:
            figures.self_exits += 1
        figures.faults = proxy.faults()
        figures.requests = len(proxy.seen)
        check_retry_after(figures, proxy)
        return figures
    finally:
        faulty.stop()
        proxy.stop()
        operator.start()


def _wait_ready(plane: ControlPlane, namespace: str, names: set[str], timeout: float) -> None:
    wait_for(
        "every portal Ready after the last fault",
        lambda: (not not_ready(plane, namespace, names)) or None,
        timeout=timeout,
        every=1.0,
    )
