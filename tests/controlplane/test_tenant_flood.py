"""One tenant cannot stall the operator: 20 hostile .pfx files (the MAC's iteration count
set to 2^31-1) in one namespace while another namespace's portals converge.

On a control plane of this module's own, with leader election on short timings (a
Lease of 4 s): an operator that derived those keys in its own process would hold the
interpreter for minutes and lose the Lease. Here the flood is refused as
PfxTooExpensive, the other namespace reaches Ready, and the Lease stays with the one
holder, renewed all along.
"""

from __future__ import annotations

import base64
import datetime
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from portico.core.names import SECRET_LABEL
from portico_dev import ControlPlane
from tests.support import reliability as rel
from tests.support.controlplane import BASE_DOMAIN, Cluster, new_namespace, wait_for
from tests.support.dnsserver import AuthoritativeDNS
from tests.support.pfx_corpus import hostile_pfx

LEASE, RENEW, RETRY = 4.0, 3.0, 0.5
HOSTILE, CALM = 20, 5
PASSWORD = "flood-pfx-passw0rd"


class LeaseWatch:
    """Polls the Lease until stopped: (asked at, holder, renewTime) each time."""

    def __init__(self, plane: ControlPlane) -> None:
        self.plane = plane
        self.seen: list[tuple[datetime.datetime, str, datetime.datetime | None]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        args = ("get", "lease", "portico-leader", "-n", rel.SYSTEM, "-o", "json")
        while not self._stop.wait(0.5):
            asked = datetime.datetime.now(datetime.UTC)
            got = self.plane.kubectl(*args, check=False)
            if got.returncode == 0:
                spec = json.loads(got.stdout)["spec"]
                renew = spec.get("renewTime")
                when = (
                    datetime.datetime.fromisoformat(renew.replace("Z", "+00:00")) if renew else None
                )
                self.seen.append((asked, spec.get("holderIdentity") or "", when))

    def __enter__(self) -> LeaseWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def expired(self) -> list[tuple[datetime.datetime, datetime.datetime | None]]:
        """Answers showing a Lease not renewed for longer than its duration. The answer
        reflects the server at or after `asked`, so none of these is a slow poll's artefact."""
        return [
            (asked, renew)
            for asked, _, renew in self.seen
            if renew is None or (asked - renew).total_seconds() > LEASE
        ]


@pytest.fixture
def namespaces(own_control_plane: ControlPlane) -> Iterator[tuple[str, str]]:
    names = (new_namespace(own_control_plane, "flood"), new_namespace(own_control_plane, "calm"))
    yield names
    for name in names:
        own_control_plane.kubectl("delete", "namespace", name, "--wait=false", check=False)


def pfx_secret(name: str, namespace: str, data: bytes) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace, "labels": {SECRET_LABEL: "portico"}},
        "data": {
            "certificate.pfx": base64.b64encode(data).decode(),
            "password": base64.b64encode(PASSWORD.encode()).decode(),
        },
    }


def test_a_hostile_pfx_flood_leaves_other_tenants_and_the_lease_alone(
    own_control_plane: ControlPlane,
    namespaces: tuple[str, str],
    dns: AuthoritativeDNS,
    tmp_path: Path,
) -> None:
    plane, (flood, calm) = own_control_plane, namespaces
    cluster = Cluster(plane)
    zone = f"{flood}.test"
    records = [f"h{i} CNAME h{i}-{flood}.{BASE_DOMAIN}." for i in range(HOSTILE)]
    dns.set_zone(zone, records)
    op = rel.operator(
        plane,
        tmp_path,
        "portico-flood",
        **dns.operator_env(),
        # The flood is about certificates, checked once DNS verifies: the CNAME suffices.
        PORTICO_DOMAIN_OWNERSHIP="Optional",
        **rel.elector_env(LEASE, RENEW, RETRY),
    )
    instance = rel.new_instance(cluster)
    op.start()
    try:
        wait_for("the operator to lead", lambda: rel.holder(plane) == "portico-flood", 30)
        with LeaseWatch(plane) as lease:
            for i in range(HOSTILE):
                host = f"h{i}.{zone}"
                cluster.apply(pfx_secret(f"h{i}-pfx", flood, hostile_pfx(host, PASSWORD)))
                custom = {"hostname": host, "tls": {"pfxSecretRef": {"name": f"h{i}-pfx"}}}
                cluster.apply(
                    rel.portal(
                        f"h{i}", flood, instance, subdomain=f"h{i}-{flood}", customDomain=custom
                    )
                )
            calm_names = [f"c{i}" for i in range(CALM)]
            for name in calm_names:
                cluster.apply(rel.portal(name, calm, instance))
            rel.wait_all_ready(cluster, calm, calm_names, timeout=180)
            for i in range(HOSTILE):
                failed = cluster.wait_phase(
                    flood, f"h{i}", "Failed", "PfxTooExpensive", timeout=180
                )
                message = cluster.condition(failed, "CertificateReady")["message"]
                assert "2,147,483,647" in message and "default settings" in message
        holders = {holder for _, holder, _ in lease.seen}
        assert holders == {"portico-flood"}, f"the Lease changed hands: {lease.seen}"
        assert len(lease.seen) >= 10 and lease.expired() == [], lease.expired()
        renewals = {renew for _, _, renew in lease.seen}
        assert len(renewals) >= 3, "the Lease was not renewed while the flood was handled"
        log = op.log_text()
        assert "lost the Lease" not in log and PASSWORD not in log
    finally:
        op.stop()
