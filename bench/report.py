"""The result file (machine, versions, every figure), its table, and what "complete" means."""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

from portico_dev import binaries


def machine() -> dict[str, Any]:
    meminfo = Path("/proc/meminfo").read_text().split()
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.machine(),
    )
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "memory_gib": round(int(meminfo[meminfo.index("MemTotal:") + 1]) / 2**20, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def versions(helm: Path) -> dict[str, str]:
    out = {name: metadata.version(name) for name in ("portico", "kopf", "kubernetes", "aiohttp")}
    out.update({f"{k} (control plane)": v for k, v in binaries.versions().items()})
    helm_version = subprocess.run(
        [str(helm), "version", "--short"], capture_output=True, text=True, check=False
    )
    out["helm binary"] = helm_version.stdout.strip()
    out["git"] = subprocess.run(
        ["git", "describe", "--always", "--dirty"], capture_output=True, text=True, check=False
    ).stdout.strip()
    return out


# Every figure a run must produce (dotted paths; "*" is every entry of a map or list). The smoke
# test checks exactly this list, so a figure that stops being measured fails CI.
REQUIRED = (
    "machine.cpus",
    "versions.portico",
    "converge.*.portico.applied.total_s",
    "converge.*.portico.applied.p50_s",
    "converge.*.portico.applied.p99_s",
    "converge.*.portico.ready.total_s",
    "converge.*.portico.ready.p50_s",
    "converge.*.portico.ready.p99_s",
    "converge.*.floor.applied_s",
    "converge.*.floor.available_s",
    "converge.*.floor.removed_s",
    "converge.*.ratio_applied_to_floor",
    "converge.*.ratio_ready_to_floor",
    "converge.*.portico.api_per_new_portal.reads",
    "converge.*.portico.api_per_new_portal.writes",
    "helm.available_s",
    "helm.ratio_to_portico",
    "helm_wait.available_s",
    "scaling.grow.applied.total_s",
    "scaling.drain.window_s",
    "scaling.drain.held_up_to_s",
    "api_cost.spec_change.api_per_change.reads",
    "api_cost.spec_change.api_per_change.writes",
    "api_cost.idle.window_s",
    "api_cost.idle.api_per_portal.reads",
    "api_cost.idle.api_per_portal.writes",
    "api_cost.idle_at_scale.api_per_portal.reads",
    "api_cost.idle_at_scale.api_per_portal.writes",
    "api_cost.restart.api_per_portal.reads_after_initial_lists",
    "api_cost.restart.api_per_portal.writes",
    "scaling.probes.*.present",
    "scaling.probes.*.children_applied_s",
    "scaling.usage.*.rss_mib",
    "scaling.usage.*.cpu_percent",
    "scaling.startup.*.startup_log_s",
    "scaling.startup.*.startup_all_watches_s",
)


# Figures a run leaves out when told to (the option set to 0).
OPTIONAL = {
    "helm.": "helm_n",
    "helm_wait.": "helm_wait_n",
    "scaling.grow.": "scale",
    "scaling.drain.": "scale",
    "api_cost.idle_at_scale.": "scale",
}


def _lookup(data: Any, parts: list[str]) -> list[Any]:
    if not parts:
        return [data]
    head, rest = parts[0], parts[1:]
    if head == "*" and isinstance(data, dict | list):
        items = data.values() if isinstance(data, dict) else data
        return [v for value in items for v in _lookup(value, rest)] or [None]
    if not isinstance(data, dict):
        return [None]
    return _lookup(data.get(head), rest)


def missing(result: dict[str, Any]) -> list[str]:
    """Figures the run did not produce (None, empty, or absent)."""
    settings = result.get("settings") or {}
    skipped = {prefix for prefix, option in OPTIONAL.items() if settings.get(option) == 0}
    return [
        path
        for path in REQUIRED
        if not any(path.startswith(prefix) for prefix in skipped)
        and any(v is None or v == [] or v == {} for v in _lookup(result, path.split(".")))
    ]


def table(result: dict[str, Any]) -> str:
    rows = [("figure", "value")]
    for n, c in result["converge"].items():
        p, f = c["portico"], c["floor"]
        rows += [
            (f"converge N={n}: portico applied total / p50 / p99 s", _s(p["applied"])),
            (f"converge N={n}: portico Ready total / p50 / p99 s", _s(p["ready"])),
            (
                f"converge N={n}: floor applied / available s",
                f"{f['applied_s']} / {f['available_s']}",
            ),
            (
                f"converge N={n}: ratio to floor (applied, Ready)",
                f"{c['ratio_applied_to_floor']}x, {c['ratio_ready_to_floor']}x",
            ),
            (f"converge N={n}: API per new portal", _cost(p["api_per_new_portal"])),
        ]
    for key, how in (("helm", ""), ("helm_wait", ", each --wait")):
        if h := result.get(key):
            rows.append(
                (
                    f"helm N={h['n']}: one release per portal{how}, available s",
                    f"{h['available_s']} (portico {h.get('portico_ready_s')}: "
                    f"helm/portico {h.get('ratio_to_portico')}x)",
                )
            )
    cost = result["api_cost"]
    rows += [
        ("API per spec change", _cost(cost["spec_change"]["api_per_change"])),
        (
            f"API per portal, idle {cost['idle']['window_s']:.0f}s",
            _cost(cost["idle"]["api_per_portal"]),
        ),
        ("API per portal, across a restart", _cost(cost["restart"]["api_per_portal"])),
    ]
    if "idle_at_scale" in cost:
        at_scale = cost["idle_at_scale"]
        rows.append(
            (
                f"API per portal, idle {at_scale['window_s']:.0f}s at {at_scale['portals']}",
                _cost(at_scale["api_per_portal"]),
            )
        )
    for probe in result["scaling"]["probes"]:
        off = ", pods off" if probe.get("pods") == "off" else ""
        rows.append(
            (
                f"new portal among {probe['present']}{off}: children applied s",
                str(probe["children_applied_s"]),
            )
        )
    if grow := result["scaling"].get("grow"):
        rows += [
            (f"grow by {grow['n']} (pods off): applied total / p50 / p99 s", _s(grow["applied"])),
            (
                f"grow by {grow['n']} (pods off): API per new portal",
                _cost(grow["api_per_new_portal"]),
            ),
        ]
    if drain := result["scaling"].get("drain"):
        quiet = "quiet" if drain["quiet"] else "never quiet"
        rows.append(
            (
                f"after the restart at scale: s until {quiet} (held up to) / API per portal",
                f"{drain['window_s']} ({drain['held_up_to_s']}) / {_cost(drain['api_per_portal'])}",
            )
        )
    for usage in result["scaling"]["usage"]:
        rows.append(
            (
                f"operator at {usage['portals']} portals ({usage['when']}): RSS MiB / CPU %",
                f"{usage['rss_mib']} / {usage['cpu_percent']}",
            )
        )
    for start in result["scaling"]["startup"]:
        rows.append(
            (
                f"startup at {start['portals']} portals: log marker / all watches s",
                f"{start['startup_log_s']} / {start['startup_all_watches_s']}",
            )
        )
    width = max(len(r[0]) for r in rows)
    return "\n".join(f"{a:<{width}}  {b}" for a, b in rows)


def _s(spread: dict[str, float]) -> str:
    return f"{spread['total_s']} / {spread['p50_s']} / {spread['p99_s']}"


def _cost(cost: dict[str, Any]) -> str:
    verbs = ", ".join(f"{k} {v:g}" for k, v in cost["by_verb_resource"].items() if v)
    return f"reads {cost['reads']:g}, writes {cost['writes']:g} ({verbs})"


def median_of(runs: list[Any]) -> Any:
    """One result whose every number is the median over RUNS (same shape), the rest the first's."""
    first = runs[0]
    if isinstance(first, dict) and all(isinstance(r, dict) for r in runs):
        return {k: median_of([r.get(k) for r in runs]) for k in first}
    if isinstance(first, list) and all(isinstance(r, list) and len(r) == len(first) for r in runs):
        return [median_of(list(items)) for items in zip(*runs, strict=True)]
    numbers = [r for r in runs if isinstance(r, int | float) and not isinstance(r, bool)]
    if numbers and len(numbers) == len(runs):
        return round(statistics.median(numbers), 3)
    return first
