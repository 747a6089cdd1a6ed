"""A tenant's flood against another tenant's converge time: the same-run ratio.

Run: .venv/bin/python -m bench.flood [N] [HOSTILE] [ORDER]   (defaults 20, 20, abba)

Starts a control plane of its own and one operator, then times how long N new
portals in a fresh namespace take to be Ready, in each of three conditions:

- alone;
- right after HOSTILE ordinary portals in another namespace: each with a
  custom host and its own valid .pfx (MAC iterations 2,048, as OpenSSL
  writes);
- right after HOSTILE hostile portals in another namespace: the same, but
  each .pfx's MAC asks for 2^31-1 iterations.

The floods' custom hosts have DNS that never answers (the operator's resolver
points at a loopback socket that reads nothing), so every lookup of a flood
runs into its timeout: slow DNS and costly files together. Each flood is
deleted before the next step. The steps run in the order alone, ordinary,
hostile, hostile, ordinary, alone (ABBA): on a machine whose later steps are
slower, a linear drift cancels out of the means; ORDER `baab` runs the floods
the other way round (alone, hostile, ordinary, ordinary, hostile, alone).

Printed: "N portals Ready with the hostile flood / without", the brief's
figure; and "with the hostile flood / with the ordinary one", which takes out
what any HOSTILE more portals cost the control plane (their Deployments, Jobs
and pods), leaving what the files themselves cost. Ready times are polled
every 0.2 s.
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

from tests.support import reliability as rel  # noqa: E402
from tests.support.controlplane import BASE_DOMAIN, Cluster, wait_for  # noqa: E402
from tests.support.pfx_corpus import hostile_pfx  # noqa: E402

from bench import fleet  # noqa: E402
from portico.core.names import SECRET_LABEL  # noqa: E402
from portico_dev import ControlPlane  # noqa: E402

DNS_TIMEOUT = 2.0
TIMEOUT = 900.0
PASSWORD = "flood-bench-pfx"
ORDERS = {
    "abba": ("alone", "ordinary", "hostile", "hostile", "ordinary", "alone"),
    "baab": ("alone", "hostile", "ordinary", "ordinary", "hostile", "alone"),
}
ITERATIONS = {"ordinary": 2048, "hostile": 2**31 - 1}


def pfx_secret(name: str, namespace: str, data: bytes) -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace, "labels": {SECRET_LABEL: "portico"}},
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


def flood(cluster: Cluster, plane: ControlPlane, count: int, mac_iterations: int) -> str:
    namespace = f"flood-{uuid.uuid4().hex[:6]}"
    plane.kubectl("create", "namespace", namespace)
    plane.wait_for_service_account(namespace, "default")
    docs = []
    for i in range(count):
        host = f"h{i}.{namespace}.test"
        data = hostile_pfx(host, PASSWORD, mac_iterations)
        docs.append(pfx_secret(f"h{i}-pfx", namespace, data))
        portal = fleet.portal(namespace, f"h{i}")
        portal["spec"]["customDomain"] = {
            "hostname": host,
            "tls": {"pfxSecretRef": {"name": f"h{i}-pfx"}},
        }
        docs.append(portal)
    cluster.apply(*docs)
    return namespace


def report(
    times: dict[str, list[float]], worked: dict[str, list[int]], n: int, hostile: int
) -> None:
    mean = {kind: statistics.mean(seconds) for kind, seconds in times.items()}
    for kind, seconds in times.items():
        listed = ", ".join(f"{s:.1f}s" for s in seconds)
        if kind == "alone":
            print(f"{n} portals Ready alone: {listed}")
            continue
        counts = "/".join(map(str, worked[kind]))
        print(
            f"{n} portals Ready beside {hostile} {kind} .pfx portals: {listed} "
            f"({counts} of {hostile} had a status by then)"
        )
    print(f"ratio with the hostile flood / without: {mean['hostile'] / mean['alone']:.2f}")
    versus = mean["hostile"] / mean["ordinary"]
    print(f"ratio with the hostile flood / the ordinary one: {versus:.2f}")


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    hostile = int(sys.argv[2]) if len(sys.argv) > 2 else 20
    order = ORDERS[sys.argv[3] if len(sys.argv) > 3 else "abba"]
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
        times: dict[str, list[float]] = {"alone": [], "ordinary": [], "hostile": []}
        worked: dict[str, list[int]] = {"ordinary": [], "hostile": []}
        op.start()
        try:
            for kind in order:
                if kind == "alone":
                    times[kind].append(converge(plane, cluster, n))
                    continue
                flooded = flood(cluster, plane, hostile, ITERATIONS[kind])
                times[kind].append(converge(plane, cluster, n))
                # Worked on meanwhile: each has a status (its DNS still waits, so the
                # certificate's verdict is not reported yet, though it was computed).
                worked[kind].append(
                    sum(
                        1
                        for p in cluster.items("portals", flooded)
                        if (p.get("status") or {}).get("phase")
                    )
                )
                plane.kubectl("delete", "namespace", flooded, "--wait=true", "--timeout=300s")
        finally:
            op.stop()
    silent.close()
    report(times, worked, n, hostile)
    print(f"DNS of the flood: never answers ({DNS_TIMEOUT:g}s timeout); base domain {BASE_DOMAIN}")
    print(f"total {time.monotonic() - began:.0f}s")


if __name__ == "__main__":
    main()
