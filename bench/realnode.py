"""A new portal to Ready on the real node, against the same runtime written straight.

Run (root, the real-node binaries and the image cache, like the real-node tier):

    .venv/bin/python -m bench.realnode [--runs 5] [--out bench/results/realnode.json]

One control plane with its real node (containerd, kubelet, kube-proxy, Traefik), the
stand-in instance as a pod, the shared page server and the operator as a process in the
node's network: the real-node tier's machinery (tests/support/realnode.py). The node is
taken under /tmp/portico-realnode.lock for the whole run, as the tier's users take it.

Each run has a namespace of its own, made beforehand (not timed), and alternates:

- **portico**: one new Portal (default template, no custom domain) applied; from the
  apply, the bench's own watches (as the admin user) note when the children were applied,
  each pod was scheduled, its container started, the runtime pod passed its readiness
  probe, the provisioning Job completed, the Deployment became Available and the Portal
  said Ready (at generation 1); a request loop (every 0.1 s, HTTPS through Traefik with
  the portal's host) notes the first 200 that shows the portal.
- **floor**: the same portal's runtime as Portico renders it (ConfigMap, Deployment,
  Service, Ingress: `render.children`, relabelled, no owner), server-side applied straight,
  with no operator, no Job, no status: the first 200 through Traefik is the floor.

Medians over the runs (each contender's runs alternate, ABAB, so the machine's drift
touches both alike) and the ratio of Portico's Ready to the floor's first 200; the JSON
(with every run, the load average before and after) goes to --out. Nothing is asserted;
the bench fails (exit 1) when it cannot run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.controlplane import BASE_DOMAIN
from tests.support.dnsserver import running_dns
from tests.support.portals import portal
from tests.support.realnode import (
    INSTANCE_TOKEN,
    RealCluster,
    fetch,
    import_portico_images,
    install_page_server,
    instance_docs,
    node_binaries,
    portal_operator,
    running_real_cluster,
    start_instance,
)

from bench import fleet, turns
from bench.kubeapi import Api, Tracker
from portico.settings import Settings
from portico_dev import BinariesMissing, node

LOCK = Path("/tmp/portico-realnode.lock")  # the real node's users take turns
DEFAULT_OUT = Path(__file__).parent / "results" / "realnode.json"
WATCHED = (
    *("Portal", "Secret", "ConfigMap", "Deployment", "Service", "NetworkPolicy", "Job"),
    *("Ingress", "Pod", "Event"),
)
FLOOR_KINDS = ("ConfigMap", "Service", "Deployment", "Ingress")  # what the runtime needs
JOB_LABEL = "batch.kubernetes.io/job-name"
MANAGER = "bench-realnode"  # the bench's writes (the Portal; the floor's children)
PROBE_EVERY = 0.1
TARGET_READY = 18.0

# Portico's milestones in the order a new portal passes them (each: seconds from the apply).
PORTICO_MARKS = (
    "children_applied",
    "job_pod_scheduled",
    "job_image_ready",
    "job_container_started",
    "runtime_pod_scheduled",
    "runtime_image_ready",
    "runtime_container_started",
    "job_container_finished",
    "job_success_criteria_met",
    "job_complete",
    "runtime_pod_ready",
    "deployment_available",
    "portal_ready",
    "ingress_created",
    "served",
)
FLOOR_MARKS = (
    "applied",
    "runtime_pod_scheduled",
    "runtime_image_ready",
    "runtime_container_started",
    "runtime_pod_ready",
    "deployment_available",
    "served",
)


@dataclass
class Timeline:
    """First moments seen in one run's namespace, in seconds from the first write."""

    namespace: str
    t0: float
    marks: dict[str, float] = field(default_factory=dict)
    # The portal's children before Ready (fleet.expected: its Ingress comes at Ready).
    expected: set[tuple[str, str]] = field(default_factory=set)
    owned: set[tuple[str, str]] = field(default_factory=set)  # those seen
    pods: dict[str, str] = field(default_factory=dict)  # pod name -> "job" | "runtime"

    def mark(self, name: str, now: float) -> None:
        self.marks.setdefault(name, round(now - self.t0, 3))


def _true(obj: dict[str, Any], type_: str) -> bool:
    conditions = (obj.get("status") or {}).get("conditions") or ()
    return any(c.get("type") == type_ and c.get("status") == "True" for c in conditions)


def observe(line: Timeline, kind: str, obj: dict[str, Any], now: float) -> None:
    """Note what OBJ (seen at NOW) says about the run of LINE."""
    meta = obj.get("metadata") or {}
    if meta.get("namespace") != line.namespace:
        return
    if kind == "Event":
        involved = obj.get("involvedObject") or {}
        role = line.pods.get(involved.get("name", ""))
        if role and obj.get("reason") == "Pulled":  # "already present on machine": pull Never
            line.mark(f"{role}_image_ready", now)
        return
    if any(ref.get("kind") == "Portal" for ref in meta.get("ownerReferences") or ()):
        line.owned.add((kind, meta.get("name", "")))
        if line.expected and line.owned >= line.expected:
            line.mark("children_applied", now)
    if kind == "Pod":
        role = "job" if JOB_LABEL in (meta.get("labels") or {}) else "runtime"
        line.pods[meta["name"]] = role
        if _true(obj, "PodScheduled"):
            line.mark(f"{role}_pod_scheduled", now)
        for status in (obj.get("status") or {}).get("containerStatuses") or ():
            state = status.get("state") or {}
            if "running" in state or "terminated" in state:
                line.mark(f"{role}_container_started", now)
            if "terminated" in state:
                line.mark(f"{role}_container_finished", now)
        if role == "runtime" and _true(obj, "Ready"):
            line.mark("runtime_pod_ready", now)
    elif kind == "Deployment" and _true(obj, "Available"):
        line.mark("deployment_available", now)
    elif kind == "Job":
        # The Job controller says SuccessCriteriaMet (Kubernetes 1.31+), then Complete once
        # its pods are terminated and counted; Portico waits for Complete.
        if _true(obj, "SuccessCriteriaMet"):
            line.mark("job_success_criteria_met", now)
        if _true(obj, "Complete"):
            line.mark("job_complete", now)
    elif kind == "Ingress":
        line.mark("ingress_created", now)
    elif kind == "Portal":
        status = obj.get("status") or {}
        current = status.get("observedGeneration") == meta.get("generation")
        if current and status.get("phase") == "Ready" and _true(obj, "Ready"):
            line.mark("portal_ready", now)


@dataclass
class Bench:
    cluster: RealCluster
    instance: dict[str, Any]  # the PortalInstance the portals link to
    settings: Settings  # the operator's, for the floor's rendering
    timeout: float
    lines: dict[str, Timeline] = field(default_factory=dict)
    tracker: Tracker | None = None
    api: Api = field(init=False)  # made on the event loop (measure)

    def on_event(self, kind: str, obj: dict[str, Any], now: float) -> None:
        namespace = (obj.get("metadata") or {}).get("namespace", "")
        if line := self.lines.get(namespace):
            observe(line, kind, obj, now)

    async def namespace(self, prefix: str) -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:6]}"
        plane = self.cluster.plane
        await asyncio.to_thread(plane.kubectl, "create", "namespace", name)
        await asyncio.to_thread(plane.wait_for_service_account, name, "default")
        return name

    async def gone(self, namespace: str) -> None:
        """Delete the run's namespace and wait for it (not timed: the next run starts clean)."""
        await asyncio.to_thread(
            self.cluster.plane.kubectl,
            "delete", "namespace", namespace, "--wait=true", "--timeout=180s",
            check=False, timeout=200,
        )  # fmt: skip

    async def first_page(self, host: str, text: str) -> float:
        """The moment of the first 200 showing TEXT for HOST over HTTPS through Traefik."""
        https = self.cluster.https
        while True:
            try:
                answer = await asyncio.to_thread(fetch, https, host, tls=True, timeout=5)
                if answer.status == 200 and text in answer.body:
                    return time.monotonic()
            except OSError:
                pass
            await asyncio.sleep(PROBE_EVERY)

    async def run(self, contender: str, number: int) -> dict[str, Any]:
        namespace = await self.namespace(f"rb-{contender[0]}{number}")
        name = f"bench-{number}"
        display = f"Ready bench {contender} {number} {namespace}"
        doc = portal(name, namespace, self.instance["metadata"]["name"], displayName=display)
        doc["spec"]["subdomain"] = namespace  # the host: <namespace>.<base domain>
        host = f"{namespace}.{BASE_DOMAIN}"
        writes = [doc]
        if contender == "floor":
            made = fleet.children(doc, self.settings, self.instance)
            by_kind = {m["kind"]: fleet.standalone(m, namespace) for m in made}
            writes = [by_kind[kind] for kind in FLOOR_KINDS]
        load = os.getloadavg()[0]
        expected = fleet.expected(doc, self.settings, self.instance)
        line = self.lines[namespace] = Timeline(namespace, time.monotonic(), expected=expected)
        served = asyncio.create_task(self.first_page(host, display))
        try:
            for manifest in writes:
                await self.api.apply(manifest, MANAGER)
            line.mark("applied", time.monotonic())
            assert self.tracker is not None
            done = "portal_ready" if contender == "portico" else "deployment_available"
            await self.tracker.until(lambda: done in line.marks, self.timeout, f"{done} {host}")
            line.mark("served", await asyncio.wait_for(served, self.timeout))
            await asyncio.sleep(1)  # late watch events (an Event after the fact)
        finally:
            served.cancel()
            del self.lines[namespace]
            await self.gone(namespace)
        print(f"{contender} {number}: {_brief(line.marks)} (load {load:.1f})", flush=True)
        return {
            "namespace": namespace,
            "load_average_1m": round(load, 2),
            "marks": dict(sorted(line.marks.items(), key=lambda kv: kv[1])),
        }


def _brief(marks: dict[str, float]) -> str:
    keys = ("portal_ready", "served") if "portal_ready" in marks else ("served",)
    return ", ".join(f"{k} {marks[k]:.1f}s" for k in keys)


def medians(runs: list[dict[str, Any]], names: tuple[str, ...]) -> dict[str, float]:
    out = {}
    for name in names:
        values = [r["marks"][name] for r in runs if name in r["marks"]]
        if values:
            out[name] = round(statistics.median(values), 2)
    return out


async def measure(bench: Bench, runs: int) -> dict[str, list[dict[str, Any]]]:
    plane = bench.cluster.plane
    bench.api = Api(plane.server, plane.workdir / "pki")
    bench.tracker = Tracker(bench.api, WATCHED, bench.on_event)
    await bench.tracker.start()
    results: dict[str, list[dict[str, Any]]] = {"portico": [], "floor": []}
    try:
        for number in range(1, runs + 1):
            for contender in ("portico", "floor"):  # ABAB: drift touches both alike
                results[contender].append(await bench.run(contender, number))
    finally:
        await bench.tracker.stop()
        await bench.api.close()
    return results


# Where a new portal's time goes: two tracks side by side (the runtime, the provisioning
# Job), then the operator and the page. (label, starts at the last of, ends at); each
# phase is the median over the runs of its own duration.
PHASES = (
    ("children applied (operator)", (), "children_applied"),
    ("runtime: pod scheduled", (), "runtime_pod_scheduled"),
    (
        "runtime: sandbox, image, container started",
        ("runtime_pod_scheduled",),
        "runtime_container_started",
    ),
    ("runtime: readiness probe passed", ("runtime_container_started",), "runtime_pod_ready"),
    ("runtime: Deployment Available", ("runtime_pod_ready",), "deployment_available"),
    ("job: pod scheduled", (), "job_pod_scheduled"),
    ("job: sandbox, image, container started", ("job_pod_scheduled",), "job_container_started"),
    (
        "job: provisioning ran (container finished)",
        ("job_container_started",),
        "job_container_finished",
    ),
    ("job: Job Complete (Job controller)", ("job_container_finished",), "job_complete"),
    (
        "status Ready after the later of the two",
        ("deployment_available", "job_complete"),
        "portal_ready",
    ),
    ("served after Ready", ("portal_ready",), "served"),
)


def phases(runs: list[dict[str, Any]]) -> dict[str, float]:
    out = {}
    for label, starts, end in PHASES:
        values = [
            r["marks"][end] - max((r["marks"][k] for k in starts), default=0.0)
            for r in runs
            if end in r["marks"] and all(k in r["marks"] for k in starts)
        ]
        if values:
            out[label] = round(statistics.median(values), 2)
    return out


def report(results: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    portico = medians(results["portico"], PORTICO_MARKS)
    floor = medians(results["floor"], FLOOR_MARKS)
    ready, served, base = portico["portal_ready"], portico["served"], floor["served"]
    return {
        "portico_median_s": portico,
        "floor_median_s": floor,
        "portico_phases_s": phases(results["portico"]),
        "floor_phases_s": phases(results["floor"]),
        "ready_median_s": ready,
        "served_median_s": served,
        "floor_served_median_s": base,
        "ratio_ready_to_floor": round(ready / base, 2),
        "ratio_served_to_floor": round(served / base, 2),
        "target_ready_s": TARGET_READY,
    }


def print_report(summary: dict[str, Any], runs: int) -> None:
    print(f"\nmedians of {runs} (seconds from the first write)")
    print(f"{'milestone':28} {'portico':>8} {'floor':>8}")
    floor = summary["floor_median_s"]
    for name, at in summary["portico_median_s"].items():
        other = floor.get(name, floor.get("applied") if name == "children_applied" else None)
        print(f"{name:28} {at:8.2f} {'' if other is None else f'{other:8.2f}':>8}")
    print("\nwhere the time goes (medians of each phase's own duration):")
    print(f"{'phase':48} {'portico':>8} {'floor':>8}")
    floor_phases = summary["floor_phases_s"]
    for name, took in summary["portico_phases_s"].items():
        other = floor_phases.get(name)
        print(f"{name:48} {took:8.2f} {'' if other is None else f'{other:8.2f}':>8}")
    print(
        f"\nReady {summary['ready_median_s']:.2f}s, served {summary['served_median_s']:.2f}s; "
        f"floor served {summary['floor_served_median_s']:.2f}s; "
        f"ratio Ready/floor {summary['ratio_ready_to_floor']:.2f}, "
        f"served/floor {summary['ratio_served_to_floor']:.2f} "
        f"(target: Ready <= {TARGET_READY:g}s)"
    )


def run_all(bins: dict[str, Path], runs: int, timeout: float) -> dict[str, list[dict[str, Any]]]:
    """The real-node tier's cluster, instance, page server and operator; then the runs."""
    with (
        tempfile.TemporaryDirectory(prefix="bench-realnode-") as tmp,
        running_dns(Path(tmp) / "dns", {"portico.invalid": []}) as dns,
        running_real_cluster(bins) as cluster,
    ):
        images = import_portico_images(cluster)
        crm = start_instance(cluster, images)
        install_page_server(cluster, images)
        op = portal_operator(cluster, images, dns.port, Path(tmp))
        env = {"PORTICO_BASE_DOMAIN": BASE_DOMAIN, **op.env}
        instance = instance_docs(crm.name, crm.url, INSTANCE_TOKEN)[1]
        op.start()
        try:
            bench = Bench(cluster, instance, Settings.from_env(env), timeout)
            return asyncio.run(measure(bench, runs))
        except BaseException:
            print(op.log_text()[-4000:], file=sys.stderr)
            raise
        finally:
            op.stop()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.realnode", description=__doc__)
    p.add_argument("--runs", type=int, default=5, help="runs of each contender (ABAB)")
    p.add_argument("--timeout", type=float, default=300.0, help="seconds per run")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    p.add_argument("--report", type=Path, help="print the summary of a JSON written before")
    args = p.parse_args(argv)
    if args.report:
        written = json.loads(args.report.read_text())
        written["summary"] = report(written["runs"])
        print_report(written["summary"], len(written["runs"]["portico"]))
        args.report.write_text(json.dumps(written, indent=2) + "\n")
        return
    try:
        bins = node_binaries()
    except (BinariesMissing, node.NodeUnavailable) as exc:
        raise SystemExit(f"bench.realnode cannot run: {exc}") from None
    began = time.time()
    with turns.turn(LOCK, "another user of the real node"):
        waited, load_before = time.time() - began, os.getloadavg()
        results = run_all(bins, args.runs, args.timeout)
    summary = report(results)
    print_report(summary, args.runs)
    out = {
        "summary": summary,
        "runs": results,
        "machine": {
            "cpus": os.cpu_count(),
            "load_average_before": [round(x, 2) for x in load_before],
            "load_average_after": [round(x, 2) for x in os.getloadavg()],
        },
        "settings": {"runs": args.runs, "probe_every_s": PROBE_EVERY, "floor": FLOOR_KINDS},
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(began)),
        "waited_for_the_node_s": round(waited, 1),
        "total_s": round(time.time() - began, 1),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(f"written {args.out}")


if __name__ == "__main__":
    main()
