"""Leader failover time with the default Lease timings (15 s / 10 s / 2 s).

Run: .venv/bin/python bench/failover.py [KILLS]   (default 10; about 25 s a kill)
Starts a control plane of its own, two operators with separate ServiceAccounts,
then SIGKILLs the leader KILLS times (it comes back as a standby each time). A
failover is timed from the SIGKILL to the standby's first write of the Lease in
the API server's audit log; after each, a new portal must become Ready.
"""

from __future__ import annotations

import itertools
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support import reliability as rel  # noqa: E402

from portico_dev import ControlPlane  # noqa: E402

TIMINGS = (15.0, 10.0, 2.0)


def main() -> None:
    kills = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    began = time.monotonic()
    with ControlPlane(die_with_parent=True) as plane, tempfile.TemporaryDirectory() as tmp:
        plane.kubectl("create", "namespace", "bench")
        plane.wait_for_service_account("bench", "default")
        result = rel.failovers(plane, Path(tmp), "bench", kills, TIMINGS)
    runs = rel.runs(result.writes)
    gaps = [after[1] - before[2] for before, after in itertools.pairwise(runs)]
    lease, renew, retry = TIMINGS
    print(f"lease {lease:.0f}s, renew deadline {renew:.0f}s, retry {retry:.0f}s; {kills} kills")
    print("failover seconds:", " ".join(f"{s:.1f}" for s in result.seconds))
    print(
        f"median {rel.median(result.seconds):.1f}s, "
        f"min {min(result.seconds):.1f}s, max {max(result.seconds):.1f}s"
    )
    print(
        f"writer runs: {len(runs)} (expected {kills + 1}); shortest gap between two writers: "
        f"{min(gaps):.1f}s (bound: lease - renew deadline = {lease - renew:.0f}s)"
    )
    print(f"total {time.monotonic() - began:.0f}s")


if __name__ == "__main__":
    main()
