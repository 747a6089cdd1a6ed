"""Reliability on a control plane of this module's own: leader failover (two operators,
SIGKILL the leader) and a rollout that survives a kube-apiserver and an etcd restart.

The leader tests use short timings (lease 4 s, renew deadline 3 s, retry 0.5 s) to
keep the tier quick; bench/failover.py measures the defaults (15/10/2 s).
"""

from __future__ import annotations

import itertools
import os
import signal
import time
from pathlib import Path

import pytest

from portico_dev import ControlPlane
from tests.support import reliability as rel
from tests.support.controlplane import Cluster, wait_for

LEASE, RENEW, RETRY = 4.0, 3.0, 0.5
ROLLOUT = 12


@pytest.fixture
def ns(own_namespace: str) -> str:
    return own_namespace


def test_the_standby_takes_over_when_the_leader_is_killed(
    own_control_plane: ControlPlane, ns: str, tmp_path: Path
) -> None:
    kills = 3
    result = rel.failovers(own_control_plane, tmp_path, ns, kills, (LEASE, RENEW, RETRY))
    # Not before the lease could have run out, and soon after: lease + two polls.
    for seconds in result.seconds:
        assert LEASE - RETRY - 0.2 <= seconds <= LEASE + 2 * 1.2 * RETRY + 1.5, result.seconds
    # One writer at a time: the writes form exactly one run per leadership, alternating,
    # and the next leader's first write comes at least lease - renew deadline after the
    # last write of the one before (never both within one lease period).
    runs = rel.runs(result.writes)
    assert [r[0] for r in runs] == [result.users[i % 2] for i in range(kills + 1)], runs
    for before, after in itertools.pairwise(runs):
        assert after[1] - before[2] >= LEASE - RENEW, (before, after)
    # The standby made no write at all while it stood by (or it would be a run of its own),
    # and the leader wrote the Lease and children (a portal became Ready after each kill).
    kinds = {w.resource for w in result.writes if w.code < 400}
    assert {"leases", "deployments", "jobs"} <= kinds
    print(f"failover seconds (lease {LEASE}s): {[round(s, 2) for s in result.seconds]}")


@pytest.mark.parametrize("component", ["kube-apiserver", "etcd"])
def test_a_rollout_survives_a_restart_of(
    component: str, own_control_plane: ControlPlane, ns: str, tmp_path: Path
) -> None:
    plane, cluster = own_control_plane, Cluster(own_control_plane)
    op = rel.operator(plane, tmp_path, f"portico-{component}")
    op.start()
    try:
        assert op.proc is not None
        pid = op.proc.pid
        instance = rel.new_instance(cluster)
        names = [f"r{i}" for i in range(ROLLOUT)]
        cluster.apply(*[rel.portal(n, ns, instance) for n in names])

        # Mid-rollout: the operator has begun (a first status), most portals are not Ready.
        def begun() -> bool:
            return any((o.get("status") or {}).get("phase") for o in cluster.items("portals", ns))

        wait_for("the rollout to begin", begun, timeout=120, every=0.2)
        seen = cluster.items("portals", ns)[0]["metadata"]["resourceVersion"]
        at_restart = len(rel.ready(cluster, ns, names))
        plane.restart(component, down=3)
        back = time.monotonic()
        if component == "kube-apiserver":
            # Its new watch cache starts now: the watches the operator resumes from before
            # the restart are too old, answered with ERROR 410 Gone, and Kopf lists again.
            # (An etcd restart leaves the API server's watch cache, so no 410 there.)
            old = f"/apis/portico.dev/v1alpha1/namespaces/{ns}/portals?watch=1&timeoutSeconds=1"
            answer = plane.kubectl("get", "--raw", f"{old}&resourceVersion={seen}").stdout
            assert '"code":410' in answer and "too old resource version" in answer, answer[:300]
        rel.wait_all_ready(cluster, ns, names, timeout=240)
        converged = time.monotonic() - back
        assert at_restart < ROLLOUT, "the rollout was over before the restart"
        assert op.proc is not None and op.proc.poll() is None and op.proc.pid == pid
        # Nothing was done twice: one provisioning Job and one runtime Deployment per portal.
        for kind in ("jobs", "deployments"):
            items = cluster.items(kind, ns)
            owners = [o["metadata"]["labels"]["portico.dev/portal"] for o in items]
            assert sorted(owners) == sorted(names), (kind, owners)
        assert "instance-token" not in op.log_text()
        failed = sum(" failed (" in line and ns in line for line in op.log_text().splitlines())
        print(f"{component}: {at_restart}/{ROLLOUT} Ready at the restart, all {converged:.0f}s")
        print(f"after it was back; {failed} failed reconciles or watches were retried")
    finally:
        op.stop()


def test_a_frozen_leader_that_wakes_up_after_a_takeover_writes_nothing(
    own_control_plane: ControlPlane, ns: str, tmp_path: Path
) -> None:
    """SIGSTOP the leader (a long GC pause, a frozen VM) past its lease: the standby takes
    over; on SIGCONT the old leader's renew deadline has long passed, so its fenced client
    refuses every write and it stands by. The API server's audit log must show no
    successful write by it after it woke up."""
    plane, cluster = own_control_plane, Cluster(own_control_plane)
    env = rel.elector_env(LEASE, RENEW, RETRY)
    a, b = (rel.operator(plane, tmp_path, n, **env) for n in ("portico-x", "portico-y"))
    instance = rel.new_instance(cluster)
    try:
        a.start()
        wait_for("portico-x to lead", lambda: rel.holder(plane) == "portico-x", timeout=30)
        b.start()
        cluster.apply(rel.portal("f0", ns, instance))
        cluster.wait_phase(ns, "f0", "Ready", timeout=120)
        assert a.proc is not None
        os.killpg(a.proc.pid, signal.SIGSTOP)
        wait_for("portico-y to take over", lambda: rel.holder(plane) == "portico-y", 4 * LEASE)
        # Work the frozen leader will hear about when it wakes: a new portal and an edit.
        cluster.apply(rel.portal("f1", ns, instance))
        patch = '{"spec": {"displayName": "Edited while x was frozen"}}'
        plane.kubectl("patch", "portal", "f0", "-n", ns, "--type=merge", "-p", patch)
        cluster.wait_phase(ns, "f1", "Ready", timeout=120)
        time.sleep(11)  # past the harness's 10 s resync: its queue has work overdue on waking
        woke = time.time()
        os.killpg(a.proc.pid, signal.SIGCONT)
        wait_for("portico-x to stand by", lambda: "portico-x lost the Lease" in a.log_text(), 30)
        time.sleep(2 * LEASE)  # room for any write it might still try
        after = rel.writes(plane, {rel.user("portico-x")}, since=woke)
        assert [w for w in after if w.code < 400] == [], after
        assert rel.holder(plane) == "portico-y" and a.proc.poll() is None
        cluster.wait_phase(ns, "f0", "Ready", timeout=60)  # the edit, by the new leader
    finally:
        if a.proc is not None:
            os.killpg(a.proc.pid, signal.SIGCONT)
        a.stop()
        b.stop()
