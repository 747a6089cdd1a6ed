"""What the reliability tests share: operators with identities of their own, the Lease,
the API server's audit log, and rollouts of many portals."""

from __future__ import annotations

import datetime
import json
import statistics
import uuid
from dataclasses import dataclass
from pathlib import Path

from portico_dev import ControlPlane
from tests.support.controlplane import Cluster, Operator, instance_docs, wait_for
from tests.support.portals import portal

SYSTEM = "portico-system"
WRITES = {"create", "update", "patch", "delete", "deletecollection"}


def account(plane: ControlPlane, name: str, role: str = "cluster-admin") -> Path:
    """A ServiceAccount NAME bound to ROLE cluster-wide, and a kubeconfig with its token.

    A distinct account per operator is how the audit log tells them apart.
    """
    if plane.kubectl("get", "namespace", SYSTEM, check=False).returncode != 0:
        plane.kubectl("create", "namespace", SYSTEM)
    kubeconfig = plane.serviceaccount_kubeconfig(SYSTEM, name, duration="2h")
    plane.kubectl(
        "create",
        "clusterrolebinding",
        name,
        f"--clusterrole={role}",
        f"--serviceaccount={SYSTEM}:{name}",
        check=False,
    )
    return kubeconfig


def user(name: str) -> str:
    return f"system:serviceaccount:{SYSTEM}:{name}"


def operator(
    plane: ControlPlane, workdir: Path, name: str, role: str = "cluster-admin", **env: str
) -> Operator:
    """`portico run` as its own ServiceAccount NAME (not started yet)."""
    kubeconfig = account(plane, name, role)
    (workdir / name).mkdir(parents=True, exist_ok=True)
    return Operator(plane, kubeconfig, workdir / name, POD_NAME=name, **env)


def elector_env(lease: float, renew: float, retry: float) -> dict[str, str]:
    return {
        "PORTICO_LEADER_ELECTION": "true",
        "PORTICO_LEADER_ELECTION_NAMESPACE": SYSTEM,
        "PORTICO_LEADER_ELECTION_LEASE_DURATION": str(lease),
        "PORTICO_LEADER_ELECTION_RENEW_DEADLINE": str(renew),
        "PORTICO_LEADER_ELECTION_RETRY_PERIOD": str(retry),
    }


def holder(plane: ControlPlane, namespace: str = SYSTEM) -> str:
    """Who holds the Lease portico-leader now ("" when nobody or released)."""
    args = ("get", "lease", "portico-leader", "-n", namespace, "-o", "json")
    got = plane.kubectl(*args, check=False)
    if got.returncode != 0:
        return ""
    return str(json.loads(got.stdout)["spec"].get("holderIdentity") or "")


def new_instance(cluster: Cluster) -> str:
    name = f"crm-{uuid.uuid4().hex[:8]}"
    cluster.apply(*instance_docs(name, SYSTEM))
    return name


def ready(cluster: Cluster, namespace: str, names: list[str]) -> list[str]:
    """The portals of NAMES that are Ready for their current generation."""
    items = cluster.items("portals", namespace)
    done = []
    for obj in items:
        status = obj.get("status") or {}
        current = status.get("observedGeneration") == obj["metadata"]["generation"]
        if obj["metadata"]["name"] in names and status.get("phase") == "Ready" and current:
            done.append(obj["metadata"]["name"])
    return done


def wait_all_ready(cluster: Cluster, namespace: str, names: list[str], timeout: float) -> None:
    wait_for(
        f"all {len(names)} portals Ready",
        lambda: len(ready(cluster, namespace, names)) == len(names) or None,
        timeout=timeout,
        every=1.0,
    )


# --- the audit log ---------------------------------------------------------------


@dataclass(frozen=True)
class Write:
    at: float  # epoch seconds the API server received it
    user: str
    verb: str
    resource: str
    namespace: str
    name: str
    code: int


def _epoch(stamp: str) -> float:
    return datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def writes(plane: ControlPlane, users: set[str], since: float = 0.0) -> list[Write]:
    """Writes by USERS (completed, any outcome), in the order the API server received them."""
    out = []
    for line in plane.audit_log.read_text(errors="replace").splitlines():
        event = json.loads(line)
        if event.get("stage") != "ResponseComplete" or event.get("verb") not in WRITES:
            continue
        who = (event.get("user") or {}).get("username", "")
        if who not in users:
            continue
        at = _epoch(event["requestReceivedTimestamp"])
        if at < since:
            continue
        ref = event.get("objectRef") or {}
        out.append(
            Write(
                at,
                who,
                event["verb"],
                ref.get("resource", ""),
                ref.get("namespace", ""),
                ref.get("name", ""),
                int((event.get("responseStatus") or {}).get("code", 0)),
            )
        )
    return sorted(out, key=lambda w: w.at)


def runs(done: list[Write]) -> list[tuple[str, float, float]]:
    """Successful writes grouped into runs of one writer: (user, first, last)."""
    out: list[tuple[str, float, float]] = []
    for w in done:
        if w.code >= 400:
            continue
        if out and out[-1][0] == w.user:
            out[-1] = (w.user, out[-1][1], w.at)
        else:
            out.append((w.user, w.at, w.at))
    return out


def median(values: list[float]) -> float:
    return statistics.median(values)


# --- leader failover ---------------------------------------------------------------


@dataclass
class Failovers:
    seconds: list[float]  # from each SIGKILL to the standby's first write of the Lease
    writes: list[Write]  # every write of both operators, in order
    users: tuple[str, str]


def failovers(
    plane: ControlPlane,
    workdir: Path,
    namespace: str,
    kills: int,
    timings: tuple[float, float, float],
) -> Failovers:
    """Two operators; SIGKILL the leader KILLS times (it comes back as a standby each time),
    and after every takeover a new portal must become Ready."""
    cluster, env = Cluster(plane), elector_env(*timings)
    names = ("portico-a", "portico-b")
    ops = {n: operator(plane, workdir, n, **env) for n in names}
    started = datetime.datetime.now(datetime.UTC).timestamp()
    instance = new_instance(cluster)
    seconds: list[float] = []
    try:
        ops["portico-a"].start()
        wait_for("portico-a to lead", lambda: holder(plane) == "portico-a", timeout=30)
        ops["portico-b"].start()
        cluster.apply(portal("p0", namespace, instance))
        cluster.wait_phase(namespace, "p0", "Ready", timeout=120)
        for i in range(1, kills + 1):
            leader = holder(plane)
            standby = next(n for n in names if n != leader)
            killed = datetime.datetime.now(datetime.UTC).timestamp()
            ops[leader].kill()
            took_over = lambda who=standby: holder(plane) == who  # noqa: E731
            wait_for(f"{standby} to take over", took_over, 4 * timings[0])
            lease = [
                w
                for w in writes(plane, {user(standby)}, since=killed)
                if w.resource == "leases" and w.code < 400
            ]
            seconds.append(lease[0].at - killed)
            cluster.apply(portal(f"p{i}", namespace, instance))
            cluster.wait_phase(namespace, f"p{i}", "Ready", timeout=120)
            ops[leader].start()  # back, as a standby
    finally:
        for op in ops.values():
            op.stop()
    done = writes(plane, {user(n) for n in names}, since=started)
    return Failovers(seconds, done, (user(names[0]), user(names[1])))
