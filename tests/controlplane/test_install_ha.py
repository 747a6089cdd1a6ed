"""HA as the chart installs it: replicas 2 turn on leader election, and the chart's own
ServiceAccount (its Lease Role, nothing more) is enough to lead, renew, take over and
hand the Lease back. Two operator processes run with that account's token and the
environment the chart gave the container, with distinct POD_NAMEs.
"""

from __future__ import annotations

from pathlib import Path

from tests.support import reliability as rel
from tests.support.chart import (
    DENIED,
    audit,
    chart_values,
    describe,
    exclusive,
    installed,
    now,
)
from tests.support.controlplane import OPERATOR_NAMESPACE, Cluster, Operator, wait_for
from tests.support.dnsserver import AuthoritativeDNS

TIMINGS = {"leaseDuration": 4, "renewDeadline": 3, "retryPeriod": 0.5}


def test_chart_account_leads_and_fails_over_with_two_replicas(
    cluster: Cluster,
    namespace: str,
    instance: str,
    dns: AuthoritativeDNS,
    operator: Operator,
    tmp_path: Path,
) -> None:
    plane = cluster.plane
    # The instance's credentials live in the shared operator's namespace, not the release's.
    values = chart_values(
        dns,
        replicas=2,
        leaderElection=TIMINGS,
        instanceCredentialsNamespaces=[OPERATOR_NAMESPACE],
    )
    with installed(plane, values, tmp_path, "portico-ha") as release:
        env = release.operator_env()
        assert env["PORTICO_LEADER_ELECTION"] == "true"
        assert env["PORTICO_LEADER_ELECTION_NAMESPACE"] == release.namespace
        kubeconfig = release.kubeconfig()
        ops = {}
        for pod in ("pod-a", "pod-b"):
            (tmp_path / pod).mkdir()
            ops[pod] = Operator(plane, kubeconfig, tmp_path / pod, POD_NAME=pod, **env)
        since = now()

        def lease() -> str:
            return rel.holder(plane, release.namespace)

        with exclusive(operator):
            try:
                ops["pod-a"].start()
                wait_for("pod-a to lead", lambda: lease() == "pod-a", timeout=30)
                ops["pod-b"].start()
                assert "portico_leader 1.0" in ops["pod-a"].metrics()
                assert "portico_leader 0.0" in ops["pod-b"].metrics()
                cluster.apply(rel.portal("ha1", namespace, instance))
                cluster.wait_phase(namespace, "ha1", "Ready", timeout=120)
                ops["pod-a"].kill()
                wait_for("pod-b to take over", lambda: lease() == "pod-b", timeout=30)
                cluster.apply(rel.portal("ha2", namespace, instance))
                cluster.wait_phase(namespace, "ha2", "Ready", timeout=120)
                ops["pod-b"].stop()  # a clean stop hands the Lease back
                assert lease() == ""
            finally:
                for op in ops.values():
                    op.stop()
        for op in ops.values():
            refusals = [line for line in op.log_text().splitlines() if DENIED.search(line)]
            assert refusals == [], "\n".join(refusals[:20])
        writes = audit(plane, release.user, since)
        refused = [
            describe(w)
            for w in writes
            if (w.get("annotations") or {}).get("authorization.k8s.io/decision") != "allow"
        ]
        assert refused == []
        lease_verbs = {w["verb"] for w in writes if w["objectRef"]["resource"] == "leases"}
        assert lease_verbs == {"create", "update"}
