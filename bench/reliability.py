"""The long reliability run: a rollout under 20 % API faults and SIGKILLs on a local control plane.

Run: .venv/bin/python -m bench.reliability [--portals 500] [--seconds 600] [--kills 100]
The same scenario as tests/controlplane/test_faults.py (tests/support/chaos.py), longer;
it prints one JSON row for docs/reliability.md and exits 1 when anything is lost, or when
the Retry-After check failed or found no repeat to check.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support import chaos  # noqa: E402
from tests.support.controlplane import Cluster, Operator  # noqa: E402
from tests.support.runtime import TOKEN, running_instance  # noqa: E402

from portico.core.names import SECRET_LABEL  # noqa: E402
from portico_dev import ControlPlane  # noqa: E402
from portico_dev import binaries as devbinaries  # noqa: E402

NAMESPACE, ACCOUNT = "portico-system", "portico-bench-operator"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--portals", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=600.0)
    parser.add_argument("--kills", type=int, default=100)
    parser.add_argument("--rate", type=float, default=0.2)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="portico-reliability-"))
    plane = ControlPlane(bins=devbinaries.locate(), die_with_parent=True)
    plane.start()
    standin = running_instance()
    instance_url, _ = standin.__enter__()
    try:
        plane.kubectl("create", "namespace", NAMESPACE)
        plane.kubectl("create", "namespace", "chaos")
        kubeconfig = plane.serviceaccount_kubeconfig(NAMESPACE, ACCOUNT, duration="6h")
        plane.kubectl(
            "create",
            "clusterrolebinding",
            ACCOUNT,
            "--clusterrole=cluster-admin",
            f"--serviceaccount={NAMESPACE}:{ACCOUNT}",
        )
        Cluster(plane).apply(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {
                    "name": "crm-credentials",
                    "namespace": NAMESPACE,
                    "labels": {SECRET_LABEL: "portico"},
                },
                "stringData": {"token": TOKEN},
            },
            {
                "apiVersion": "portico.dev/v1alpha1",
                "kind": "PortalInstance",
                "metadata": {"name": "crm"},
                "spec": {
                    # The operator mints each portal's token at the stand-in instance.
                    "url": instance_url,
                    "insecure": True,
                    "credentialsSecretRef": {"namespace": NAMESPACE, "name": "crm-credentials"},
                    "languages": ["en-US"],
                    "solutions": ["FieldService"],
                    "administrators": ["jay@contoso.com"],
                    "allowedNamespaces": {"from": "All"},
                },
            },
        )
        operator = Operator(plane, kubeconfig, workdir, PORTICO_RESYNC_SECONDS="60")
        operator.start()
        began = time.monotonic()
        figures = chaos.run(
            plane,
            operator,
            "chaos",
            "crm",
            workdir,
            portals=args.portals,
            fault_seconds=args.seconds,
            kills=args.kills,
            rate=args.rate,
            converge_timeout=max(600.0, args.portals * 2.0),
        )
        operator.stop()
        row = figures.row() | {"wall_seconds": round(time.monotonic() - began)}
        print(json.dumps(row, indent=1))
        unchecked = not figures.throttled_checked or figures.probes_repeated != figures.probes
        failed = figures.lost or figures.self_exits or figures.throttled_then_early or unchecked
        return 1 if failed else 0
    finally:
        standin.__exit__(None, None, None)
        plane.stop()


if __name__ == "__main__":
    sys.exit(main())
