"""`python -m bench --smoke`: the fleet benchmark runs end to end and produces every figure.

It checks that each figure was measured, never what it is: figures are
reported against a same-run floor, not asserted (bench/README.md).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from bench import report

from portico_dev import BinariesMissing
from portico_dev import binaries as devbinaries
from tests.support.tiers import skip_or_fail

ROOT = Path(__file__).resolve().parents[2]


def test_bench_smoke_produces_every_figure(tmp_path: Path) -> None:
    try:
        devbinaries.locate()
    except BinariesMissing as exc:
        skip_or_fail(str(exc))
    out = tmp_path / "smoke.json"
    started = time.monotonic()
    run = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=420,
        check=False,
    )
    elapsed = time.monotonic() - started
    print(run.stdout, run.stderr[-3000:], sep="\n")
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(out.read_text())
    assert report.missing(result) == []
    assert list(result["converge"]) == ["20"]
    # Every contender finished; the idle window really held a full resync.
    assert result["api_cost"]["idle"]["window_s"] > result["settings"]["resync"]
    assert result["helm"]["n"] == 20 and result["helm_wait"]["n"] == 5
    # Started with no portals, restarted with every portal Ready, and again at --scale.
    assert result["scaling"]["startup"][-1]["portals"] >= result["settings"]["scale"]
    assert len(result["scaling"]["startup"]) == 3
    off = [p for p in result["scaling"]["probes"] if p.get("pods") == "off"]
    assert len(off) == 2 and off[-1]["present"] >= result["settings"]["scale"] - 1
    # Its duration is reported (budget: 4 minutes, a minute of it the drain at --scale
    # waiting out the pacing hold), never asserted: a busy machine is slow.
    print(f"smoke bench: {elapsed:.0f}s")
