"""`python -m bench`: Portico at fleet scale on a local control plane, against a same-run floor.

Starts its own control plane (the code behind `portico dev up`, with the
operator's reads audited too), runs `portico run` as its own ServiceAccount,
prints a table and writes every figure as JSON. See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.support.runtime import running_instance

from bench import fleet, profile, report, turns
from bench.audit import AuditLog
from bench.kubeapi import Api, Tracker
from bench.operator import OperatorProcess
from bench.scenario import Bench
from portico.core import pacing
from portico_dev import ControlPlane
from portico_dev import binaries as devbinaries

ACCOUNT = "portico-operator"
USER = f"system:serviceaccount:{fleet.OPERATOR_NAMESPACE}:{ACCOUNT}"
ROOT = Path(__file__).resolve().parents[1]


def _say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument("--sizes", default="100,1000", help="converge sizes N, ascending")
    p.add_argument("--helm-n", type=int, default=100, help="portals in the Helm baseline")
    p.add_argument("--helm-parallel", type=int, default=1, help="helm installs at once")
    p.add_argument(
        "--helm-wait-n",
        type=int,
        default=100,
        help="portals in the second Helm baseline, each install with --wait (0: none)",
    )
    p.add_argument("--idle", type=float, default=330, help="idle window, seconds")
    p.add_argument("--resync", type=float, default=120, help="PORTICO_RESYNC_SECONDS")
    p.add_argument("--probes", type=int, default=3, help="new-portal probes per size")
    p.add_argument("--settle", type=float, default=5, help="seconds for late writes to land")
    p.add_argument("--quiet", type=float, default=15, help="restart: idle gap that ends it")
    p.add_argument("--timeout", type=float, default=3600, help="per phase, seconds")
    p.add_argument("--out", type=Path, help="result file (default bench/results/latest.json)")
    p.add_argument("--repeat", type=int, default=1, help="whole runs; figures are medians")
    p.add_argument(
        "--scale",
        type=int,
        default=0,
        help="at the end, grow the fleet to this many portals with pods not run (0: skip)",
    )
    p.add_argument(
        "--scale-idle",
        type=float,
        default=None,
        help="after the restart at scale, an idle window of this many seconds (default: --idle)",
    )
    p.add_argument(
        "--profile",
        action="store_true",
        help="sample the operator with py-spy while the largest N converges",
    )
    p.add_argument(
        "--smoke",
        action="store_true",
        help="the CI version: N=20, Helm N=20, idle 25s with resync 10s",
    )
    args = p.parse_args(argv)
    if args.smoke:
        args.sizes, args.helm_n, args.idle, args.resync = "20", 20, 25, 10
        args.helm_wait_n, args.scale = 5, 40
        args.probes, args.settle, args.quiet, args.timeout = 1, 2, 5, 150
    if args.out is None:  # a smoke run never replaces the latest full results
        where = Path(tempfile.gettempdir()) if args.smoke else ROOT / "bench" / "results"
        args.out = where / ("portico-bench-smoke.json" if args.smoke else "latest.json")
    args.sizes = sorted(int(n) for n in str(args.sizes).split(","))
    if args.idle <= args.resync:
        p.error("--idle must be longer than --resync, so the window holds a full resync")
    if args.scale_idle is not None and args.scale_idle <= args.resync:
        p.error("--scale-idle must be longer than --resync, so the window holds a full resync")
    return args


def _to_portico(result: dict[str, Any], helm: dict[str, Any]) -> dict[str, Any]:
    """A Helm figure beside Portico's Ready total for the same N (measured, else none)."""
    ready = result["converge"].get(str(helm["n"]), {}).get("portico", {}).get("ready", {})
    helm["portico_ready_s"] = ready.get("total_s")
    if ready:
        helm["ratio_to_portico"] = round(helm["available_s"] / ready["total_s"], 2)
    return helm


async def run(
    args: argparse.Namespace, plane: ControlPlane, bins: dict[str, Path], result: dict[str, Any]
) -> None:
    """Fill RESULT as figures come in, so a failed run still leaves what it measured."""
    plane.kubectl("create", "namespace", fleet.OPERATOR_NAMESPACE)
    kubeconfig = plane.serviceaccount_kubeconfig(fleet.OPERATOR_NAMESPACE, ACCOUNT, duration="24h")
    plane.kubectl(
        "create",
        "clusterrolebinding",
        ACCOUNT,
        "--clusterrole=cluster-admin",
        f"--serviceaccount={fleet.OPERATOR_NAMESPACE}:{ACCOUNT}",
    )
    api = Api(plane.server, plane.workdir / "pki")
    tracker = Tracker(api)
    env = dict(fleet.operator_env(args.resync))
    operator = OperatorProcess(kubeconfig, plane.workdir / "logs" / "operator.log", env)
    b = Bench(
        api,
        tracker,
        AuditLog(plane.audit_log, USER),
        operator,
        fleet.settings(args.resync),
        plane.kubeconfig,
        bins["helm"],
        plane.workdir,
        args.settle,
    )
    result |= {
        "command": " ".join(["python -m bench", *sys.argv[1:]]),
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": report.machine(),
        "versions": report.versions(bins["helm"]),
        "settings": {k: v for k, v in vars(args).items() if k != "out"},
        "converge": {},
        "scaling": {"probes": [], "usage": [], "startup": []},
        "api_cost": {},
    }
    try:
        for obj in fleet.instance_objects():
            await api.create(obj)
        await tracker.start()
        await b.namespace("bench-probe")
        _say("operator: first start (0 portals)")
        result["scaling"]["startup"].append(await b.restart(args.quiet, args.resync))
        await _usage(b, result, "idle", args.settle * 2)
        await _probe(b, result, args)
        for i, n in enumerate(args.sizes):
            _say(f"floor N={n}: the same children written straight")
            floor = await b.floor(n, f"bench-floor-{n}", args.timeout)
            _say(f"converge N={n}: {floor}")
            if args.profile and n == args.sizes[-1]:
                assert operator.proc is not None
                raw = args.out.with_name(f"profile-n{n}.txt")
                with profile.recording(operator.proc.pid, raw):
                    portico = await b.converge(n, f"bench-n{n}", args.timeout)
                result["profile"] = {"n": n, "raw": raw.name, **profile.top(raw)}
            else:
                portico = await b.converge(n, f"bench-n{n}", args.timeout)
            result["converge"][str(n)] = _ratios(portico, floor)
            _say(f"converge N={n}: applied {portico['applied']}, Ready {portico['ready']}")
            await _probe(b, result, args)
            await _usage(b, result, f"after converge N={n}", args.settle * 2)
            if i < len(args.sizes) - 1:
                _say(f"restart with {b.present} portals")
                result["scaling"]["startup"].append(await b.restart(args.quiet, args.resync))
        first = args.sizes[0]
        _say(f"spec change of the {first} portals of N={first}")
        names = [f"p{i:05d}" for i in range(first)]
        result["api_cost"]["spec_change"] = await b.spec_change(
            f"bench-n{first}", names, args.timeout
        )
        _say(f"helm: {args.helm_n} releases, {args.helm_parallel} at a time")
        result["helm"] = _to_portico(
            result,
            await b.helm_baseline(args.helm_n, "bench-helm", args.helm_parallel, args.timeout),
        )
        if args.helm_wait_n:
            _say(f"helm --wait: {args.helm_wait_n} releases, {args.helm_parallel} at a time")
            waited = await b.helm_baseline(
                args.helm_wait_n, "bench-helm-wait", args.helm_parallel, args.timeout, wait=True
            )
            result["helm_wait"] = _to_portico(result, waited)
        _say(f"idle window {args.idle:.0f}s (resync every {args.resync:g}s)")
        idle = await b.idle(args.idle)
        result["api_cost"]["idle"] = idle
        result["scaling"]["usage"].append(
            {"portals": b.present, "when": f"idle {args.idle:.0f}s", **idle["usage"]}
        )
        _say(f"restart with {b.present} portals, every one Ready")
        restart = await b.restart(args.quiet, args.resync)
        result["api_cost"]["restart"] = restart
        result["scaling"]["startup"].append(restart)
        await _usage(b, result, "after restart", args.settle * 2)
        if args.scale > b.present:
            await _scale(args, plane, b, result)
    finally:
        operator.stop()
        await tracker.stop()
        await api.close()
    result["finished"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


# Without these no pod is made or run: objects are only stored (see bench/README.md).
POD_MAKERS = ("kube-controller-manager", "kwok")


async def _scale(
    args: argparse.Namespace, plane: ControlPlane, b: Bench, result: dict[str, Any]
) -> None:
    """The operator's own cost at a fleet size whose pods this machine cannot run.

    The controller manager and kwok are stopped (SIGSTOP), so the API server only stores
    what Portico writes; a probe before and after growing compares like with like.
    """
    await b.namespace("bench-scale")
    pods = [c.pid for c in plane.components if c.name in POD_MAKERS]
    for pid in pods:
        os.kill(pid, signal.SIGSTOP)
    try:
        _say(f"scale: pods off; probe among {b.present}, then grow to {args.scale}")
        await _probe(b, result, args, pods="off")
        grown = await b.grow(args.scale - b.present, "bench-scale", args.timeout)
        result["scaling"]["grow"] = grown
        _say(f"scale: {grown['n']} more portals applied in {grown['applied']['total_s']}s")
        await _probe(b, result, args, pods="off")
        await _usage(b, result, "at scale (pods off)", args.settle * 2)
        _say(f"restart with {b.present} portals (pods off)")
        result["scaling"]["startup"].append(await b.restart(args.quiet, args.resync))
        await _usage(b, result, "after restart at scale (pods off)", args.settle * 2)
        _say("scale: until the operator's held status writes have landed")
        drained = await b.drain(args.quiet * 2, pacing.PROGRESS_CAP + args.resync)
        result["scaling"]["drain"] = drained
        _say(f"scale: quiet after {drained['window_s']}s")
        seconds = args.idle if args.scale_idle is None else args.scale_idle
        _say(f"idle window at scale {seconds:.0f}s (resync every {args.resync:g}s)")
        idle = await b.idle(seconds)
        result["api_cost"]["idle_at_scale"] = idle
        when = f"idle {seconds:.0f}s at scale (pods off)"
        result["scaling"]["usage"].append({"portals": b.present, "when": when, **idle["usage"]})
    finally:
        for pid in pods:
            os.kill(pid, signal.SIGCONT)


def _ratios(portico: dict[str, Any], floor: dict[str, Any]) -> dict[str, Any]:
    applied = portico["applied"]["total_s"] / max(floor["applied_s"], 1e-9)
    ready = portico["ready"]["total_s"] / max(floor["available_s"], 1e-9)
    return {
        "portico": portico,
        "floor": floor,
        "ratio_applied_to_floor": round(applied, 2),
        "ratio_ready_to_floor": round(ready, 2),
    }


async def _probe(
    b: Bench, result: dict[str, Any], args: argparse.Namespace, pods: str = "on"
) -> None:
    probe = {**await b.probe("bench-probe", args.probes, args.timeout), "pods": pods}
    _say(f"new portal among {probe['present']}: {probe['children_applied_s']}s to applied")
    result["scaling"]["probes"].append(probe)


async def _usage(b: Bench, result: dict[str, Any], when: str, seconds: float) -> None:
    usage = await b.operator.sample(seconds)
    result["scaling"]["usage"].append({"portals": b.present, "when": when, **usage})


def once(args: argparse.Namespace, bins: dict[str, Path]) -> dict[str, Any]:
    """One whole run on a fresh control plane."""
    plane = ControlPlane(bins=bins, die_with_parent=True, audit_read_users=(USER,), log=_say)
    plane.start()
    result: dict[str, Any] = {}
    try:
        asyncio.run(run(args, plane, bins, result))
        return result
    except BaseException:
        kept = Path(tempfile.mkdtemp(prefix="portico-bench-logs-"))
        shutil.copytree(plane.workdir / "logs", kept, dirs_exist_ok=True)
        (kept / "partial.json").write_text(json.dumps(result, indent=2) + "\n")
        _say(f"the bench failed; logs (operator, audit, components) and partial.json in {kept}")
        raise
    finally:
        plane.stop()


# Benches on one machine take turns: two at once would each measure the other's load.
LOCK = Path(tempfile.gettempdir()) / "portico-bench.lock"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    bins = devbinaries.locate()
    runs = []
    # The backing instance: the operator mints every portal's token there.
    with turns.turn(LOCK, "another bench on this machine"), running_instance() as (url, _):
        fleet.INSTANCE_URL = url
        for i in range(args.repeat):
            _say(f"run {i + 1} of {args.repeat}")
            runs.append(once(args, bins))
    result = report.median_of(runs)
    if len(runs) > 1:
        result["runs"] = runs
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(report.table(result))
    print(f"\nwritten: {args.out}")
    gaps = report.missing(result)
    if gaps:
        print(f"missing figures: {', '.join(gaps)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
