"""API faults and SIGKILLs during a rollout (the short version; bench/reliability.py is the long).

The operator runs behind `tests.support.faultproxy.FaultProxy` at a 20 % fault rate
(409, 429 + Retry-After, 500, 503, slow answers, resets, dropped watches) and is
SIGKILLed and restarted throughout; afterwards every portal is Ready with one
provisioning attempt, one child of each kind and no orphan, and no write answered
429 was sent again sooner than Retry-After (with at least one such repeat seen).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests.support import chaos
from tests.support.controlplane import Operator

PORTALS = int(os.environ.get("PORTICO_CHAOS_PORTALS", "40"))
FAULT_SECONDS = float(os.environ.get("PORTICO_CHAOS_SECONDS", "120"))
KILLS = int(os.environ.get("PORTICO_CHAOS_KILLS", "20"))


def test_rollout_converges_through_api_faults_and_kills(
    operator: Operator, namespace: str, instance: str, tmp_path: Path
) -> None:
    figures = chaos.run(
        operator.plane,
        operator,
        namespace,
        instance,
        tmp_path,
        portals=PORTALS,
        fault_seconds=FAULT_SECONDS,
        kills=KILLS,
    )
    print(json.dumps(figures.row()))  # the reliability table's row (pytest -s shows it)
    assert figures.lost == [], figures.lost
    assert figures.self_exits == 0, "the operator exited on its own under faults"
    assert figures.kills == KILLS and figures.recoveries == KILLS
    injected = figures.faults
    for kind in ("409", "429", "500", "503", "slow", "reset", "drop-watch"):
        assert injected[kind] > 0, f"no {kind} was injected: {dict(injected)}"
    # Portico's writes answered 429 + Retry-After, as the proxy saw them: no kill comes
    # between one of the first five (the probes) and its repeat, so each probe must be seen
    # repeated; no repeat, probe or not, may come sooner than Retry-After.
    assert figures.throttled_checked > 0, f"no throttled write was seen repeated: {figures}"
    assert figures.probes_repeated == figures.probes, f"a probe was not repeated: {figures}"
    assert figures.throttled_then_early == 0, "Portico retried before Retry-After"
