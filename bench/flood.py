"""A tenant's flood against another tenant's converge time: the same-run ratio.

Run: .venv/bin/python bench/flood.py [N] [HOSTILE]   (defaults 20 and 20)

Starts a control plane of its own and one operator, then times how long N new
portals in a fresh namespace take to be Ready:

1. alone;
2. right after HOSTILE portals in another namespace, each with its own .pfx
   whose MAC asks for 2^31-1 iterations and a custom host whose DNS never
   answers (the operator's resolver points at a loopback socket that reads
   nothing, so every lookup of the flood runs into its timeout);
3. alone again, after the flood is deleted.

Printed: the ratio "N portals Ready with the flood / without" (without: the
mean of 1 and 3). Ready times are polled every 0.2 s.
"""

from __future__ import annotations

import base64
import socket
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.controlplane import reliability as rel  # noqa: E402
from tests.controlplane.harness import BASE_DOMAIN, Cluster, wait_for  # noqa: E402
from tests.pfx_corpus import hostile_pfx  # noqa: E402

from bench import fleet  # noqa: E402
from portico.devcluster import ControlPlane  # noqa: E402

DNS_TIMEOUT = 2.0
TIMEOUT = 900.0
PASSWORD = "flood-bench-pfx"


def pfx_secret(name: str, namespace: str, data: bytes) -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace},
        "data": {
            "certificate.pfx": base64.b64encode(data).decode(),
            "password": base64.b64encode(PASSWORD.encode()).decode(),
        },
    }


def converge(plane: ControlPlane, cluster: Cluster, n: int) -> float:
    """Seconds until N new portals in a fresh namespace are all Ready."""
    namespace = f"calm-{uuid.uuid4().hex[:6]}"
    plane.kubectl("create", "namespace", namespace)
    plane.wait_for_service_account(namespace, "default")
    names = [f"c{i:03d}" for i in range(n)]
    started = time.monotonic()
    cluster.apply(*(fleet.portal(namespace, name) for name in names))
    wait_for(
        f"{n} portals Ready in {namespace}",
        lambda: len(rel.ready(cluster, namespace, names)) == n or None,
        timeout=TIMEOUT,
        every=0.2,
    )
    return time.monotonic() - started


def flood(cluster: Cluster, plane: ControlPlane, hostile: int) -> str:
    namespace = f"flood-{uuid.uuid4().hex[:6]}"
    plane.kubectl("create", "namespace", namespace)
    plane.wait_for_service_account(namespace, "default")
    docs = []
    for i in range(hostile):
        host = f"h{i}.{namespace}.test"
        docs.append(pfx_secret(f"h{i}-pfx", namespace, hostile_pfx(host, PASSWORD)))
        portal = fleet.portal(namespace, f"h{i}")
        portal["spec"]["customDomain"] = {
            "hostname": host,
            "tls": {"pfxSecretRef": {"name": f"h{i}-pfx"}},
        }
        docs.append(portal)
    cluster.apply(*docs)
    return namespace


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    hostile = int(sys.argv[2]) if len(sys.argv) > 2 else 20
    began = time.monotonic()
    # A DNS server that never answers: every lookup of the flood waits for its timeout.
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(("127.0.0.1", 0))
    port = silent.getsockname()[1]
    with ControlPlane(die_with_parent=True) as plane, tempfile.TemporaryDirectory() as tmp:
        cluster = Cluster(plane)
        op = rel.operator(
            plane,
            Path(tmp),
            "portico-flood-bench",
            PORTICO_DNS_NAMESERVERS=f"127.0.0.1:{port}",
            PORTICO_DNS_TIMEOUT=f"{DNS_TIMEOUT:g}",
            PORTICO_DNS_RECHECK_SECONDS="1",
        )
        cluster.apply(*fleet.instance_objects())
        op.start()
        try:
            alone = [converge(plane, cluster, n)]
            flooded = flood(cluster, plane, hostile)
            with_flood = converge(plane, cluster, n)
            # Worked on meanwhile: each has a status (its DNS still waits, so the
            # certificate's verdict is not reported yet, though it was computed).
            worked = sum(
                1 for p in cluster.items("portals", flooded) if (p.get("status") or {}).get("phase")
            )
            plane.kubectl("delete", "namespace", flooded, "--wait=true", "--timeout=300s")
            alone.append(converge(plane, cluster, n))
        finally:
            op.stop()
    silent.close()
    without = statistics.mean(alone)
    print(f"{n} portals Ready alone: {' and '.join(f'{s:.1f}s' for s in alone)}")
    print(f"{n} portals Ready beside {hostile} hostile .pfx portals: {with_flood:.1f}s")
    print(f"ratio with flood / without: {with_flood / without:.2f}")
    print(f"flood portals with a status when the second namespace was Ready: {worked}/{hostile}")
    print(f"DNS of the flood: never answers ({DNS_TIMEOUT:g}s timeout); base domain {BASE_DOMAIN}")
    print(f"total {time.monotonic() - began:.0f}s")


if __name__ == "__main__":
    main()
