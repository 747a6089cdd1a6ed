"""The bench's bookkeeping: audit counting, the figure check, waiting, and the relabelled floor."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from bench import fleet, report, turns
from bench.audit import AuditLog, breakdown
from bench.scenario import every

USER = "system:serviceaccount:portico-bench:portico-operator"


def entry(audit_id: str, verb: str, resource: str, user: str = USER, **extra: Any) -> str:
    ref = {"resource": resource, "namespace": extra.pop("namespace", "ns")}
    ref.update(extra)
    return json.dumps(
        {
            "auditID": audit_id,
            "stage": "ResponseComplete",
            "verb": verb,
            "user": {"username": user},
            "objectRef": ref,
            "requestReceivedTimestamp": "2026-01-01T00:00:01.000000Z",
        }
    )


def test_audit_counts_each_request_of_the_user_once(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    lines = [
        entry("1", "get", "portals"),
        entry("2", "watch", "secrets", namespace=""),
        entry("2", "watch", "secrets", namespace=""),  # ResponseStarted + ResponseComplete
        entry("3", "patch", "portals", subresource="status"),
        entry("4", "list", "configmaps", namespace=""),
        entry("5", "patch", "pods", user="system:serviceaccount:kube-system:kwok"),
    ]
    log.write_text("\n".join(lines) + "\n" + entry("6", "get", "portals")[:20])  # torn line
    audit = AuditLog(log, USER)
    counted = breakdown(audit.between(0, 2e9), per=2)
    assert counted["reads"] == 1.0  # get + cluster-wide list, over 2 portals
    assert counted["reads_after_initial_lists"] == 0.5
    assert counted["writes"] == 0.5 and counted["watches"] == 0.5
    assert counted["by_verb_resource"] == {
        "get portals": 0.5,
        "list configmaps": 0.5,
        "patch portals/status": 0.5,
        "watch secrets": 0.5,
    }


def test_a_missing_or_empty_figure_is_reported() -> None:
    assert "helm.available_s" in report.missing({"helm": {"available_s": None}})
    probes = {"scaling": {"probes": [{"present": 0, "children_applied_s": 0.4}]}}
    assert "scaling.probes.*.children_applied_s" not in report.missing(probes)
    assert "scaling.probes.*.children_applied_s" in report.missing({"scaling": {"probes": []}})
    assert "helm_wait.available_s" in report.missing({})
    assert "helm_wait.available_s" not in report.missing({"settings": {"helm_wait_n": 0}})
    assert "helm.ratio_to_portico" not in report.missing({"settings": {"helm_n": 0}})
    assert "scaling.grow.applied.total_s" in report.missing({"settings": {"scale": 40}})
    assert "scaling.grow.applied.total_s" not in report.missing({"settings": {"scale": 0}})
    for at_scale in ("scaling.drain.window_s", "api_cost.idle_at_scale.api_per_portal.writes"):
        assert at_scale in report.missing({"settings": {"scale": 40}})
        assert at_scale not in report.missing({"settings": {"scale": 0}})


def test_floor_children_are_portico_s_render_without_owner_or_operator_labels() -> None:
    settings = fleet.settings(10)
    portal = fleet.portal("ns", "p00001")
    children = fleet.children(portal, settings)
    made = {(c["kind"], c["metadata"]["name"]) for c in children}
    # "Applied" is every child but the Ingress, which a portal gets once it is Ready.
    assert made - fleet.expected(portal, settings) == {("Ingress", "p00001")}
    floor = [fleet.standalone(c, "floor") for c in children]
    text = json.dumps(floor)
    assert '"portico.dev/portal"' not in text and 'managed-by": "portico"' not in text
    assert all("ownerReferences" not in c["metadata"] for c in floor)
    assert all(c["metadata"]["namespace"] == "floor" for c in floor)
    assert all(c["metadata"]["namespace"] == "ns" for c in children)  # not changed in place


def test_realnode_timeline_notes_each_moment_once_and_only_when_true() -> None:
    from bench.realnode import Timeline, observe

    line = Timeline("ns", t0=100.0, expected={("ConfigMap", "p"), ("Job", "p-provision-1")})
    owner = {"ownerReferences": [{"kind": "Portal", "name": "p"}]}

    def obj(name: str, **extra: Any) -> dict[str, Any]:
        meta = {"name": name, "namespace": extra.pop("namespace", "ns"), **extra.pop("meta", {})}
        return {"metadata": meta, **extra}

    observe(line, "ConfigMap", obj("p", meta=owner), 100.5)
    assert "children_applied" not in line.marks  # the Job is not there yet
    observe(line, "Job", obj("p-provision-1", meta=owner), 101.0)
    assert line.marks["children_applied"] == 1.0
    observe(line, "Pod", obj("elsewhere", namespace="other"), 101.0)  # another run's
    job_pod = obj(
        "p-provision-1-x",
        meta={"labels": {"batch.kubernetes.io/job-name": "p-provision-1"}},
        status={
            "conditions": [{"type": "PodScheduled", "status": "True"}],
            "containerStatuses": [{"state": {"terminated": {"exitCode": 0}}}],
        },
    )
    observe(line, "Pod", job_pod, 102.0)
    observe(
        line,
        "Event",
        {**obj("e"), "involvedObject": {"name": "p-provision-1-x"}, "reason": "Pulled"},
        102.5,
    )
    assert line.marks["job_pod_scheduled"] == line.marks["job_container_finished"] == 2.0
    assert line.marks["job_image_ready"] == 2.5
    waiting = {"status": {"conditions": [{"type": "Ready", "status": "False"}]}}
    observe(line, "Pod", obj("p-abc", **waiting), 103.0)
    assert "runtime_pod_ready" not in line.marks
    stale = {"observedGeneration": 1, "phase": "Ready"}
    stale["conditions"] = [{"type": "Ready", "status": "True"}]
    observe(line, "Portal", obj("p", meta={"generation": 2}, status=stale), 104.0)
    assert "portal_ready" not in line.marks  # Ready for an older generation
    observe(line, "Portal", obj("p", meta={"generation": 1}, status=stale), 105.0)
    observe(line, "Portal", obj("p", meta={"generation": 1}, status=stale), 106.0)
    assert line.marks["portal_ready"] == 5.0


def test_realnode_phases_start_at_the_later_track() -> None:
    from bench.realnode import phases

    runs = [
        {"marks": {"deployment_available": 3.0, "job_complete": 5.0, "portal_ready": 5.5}},
        {"marks": {"deployment_available": 6.0, "job_complete": 4.0, "portal_ready": 6.5}},
        {"marks": {"deployment_available": 2.0}},  # never Ready: not counted
    ]
    assert phases(runs)["status Ready after the later of the two"] == 0.5


def test_every_is_done_only_when_every_key_has_a_moment_and_asks_each_done_key_once() -> None:
    moments: dict[str, float] = {}
    asked: list[str] = []

    def moment(key: str) -> float | None:
        asked.append(key)
        return moments.get(key)

    done = every(["a", "b", "c"], moment)
    assert not done() and asked == ["a"]  # stops at the first key without a moment
    moments.update(b=2.0, c=3.0)
    asked.clear()
    assert not done() and asked == ["a"]
    moments["a"] = 1.0
    asked.clear()
    assert done() and asked == ["a", "b", "c"]
    asked.clear()
    assert done() and asked == []  # a key with its moment is not asked again


def test_a_second_bench_waits_for_the_first(tmp_path: Path) -> None:
    lock = tmp_path / "bench.lock"
    entered = threading.Event()

    def second() -> None:
        with turns.turn(lock, "the first"):
            entered.set()

    with turns.turn(lock, "nobody"):
        waiting = threading.Thread(target=second)
        waiting.start()
        assert not entered.wait(0.5)  # the first bench holds the machine
    assert entered.wait(5)  # and the second runs once it is done
    waiting.join(5)
