"""Every step of a portal's journey is woken by the event that makes it possible, never
by the periodic resync: with a resync far longer than any wait here, a missing wake-up
fails the test instead of hiding behind the 10 s resync the other tests run with.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from portico_dev import ControlPlane
from tests.support import reliability as rel
from tests.support.controlplane import Cluster, Operator, new_namespace, wait_for
from tests.support.portals import portal

RESYNC = 900  # seconds: far beyond every timeout below
STEP = 60  # seconds any one step may take on a loaded machine


@pytest.fixture(scope="module")
def slow_resync(
    own_control_plane: ControlPlane, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Operator]:
    op = rel.operator(
        own_control_plane,
        tmp_path_factory.mktemp("wakeups"),
        "portico-wakeups",
        PORTICO_RESYNC_SECONDS=str(RESYNC),
    )
    op.start()
    try:
        yield op
    finally:
        op.stop()


def _ready_at(cluster: Cluster, namespace: str, name: str, generation: int) -> bool:
    return name in rel.ready(cluster, namespace, [name]) and (
        cluster.portal(namespace, name)["metadata"]["generation"] == generation
    )


def test_create_edit_and_restart_reach_ready_without_a_resync(
    own_control_plane: ControlPlane, slow_resync: Operator, tmp_path: Path
) -> None:
    cluster = Cluster(own_control_plane)
    ns = new_namespace(own_control_plane, "wake")
    instance = rel.new_instance(cluster)
    cluster.apply(portal("web", ns, instance))
    cluster.wait_phase(ns, "web", "Ready", timeout=STEP * 2)

    t0 = time.monotonic()
    own_control_plane.kubectl(
        "patch",
        "portal",
        "web",
        "-n",
        ns,
        "--type=merge",
        "-p",
        '{"spec": {"displayName": "Web, renamed"}}',
    )
    wait_for("Ready at generation 2", lambda: _ready_at(cluster, ns, "web", 2), timeout=STEP)
    print(f"\nspec edit to Ready: {time.monotonic() - t0:.1f}s")

    t0 = time.monotonic()
    own_control_plane.kubectl(
        "annotate", "portal", "web", "-n", ns, "portico.dev/restart=once", "--overwrite"
    )

    def restarted() -> bool:
        status = cluster.portal(ns, "web").get("status") or {}
        return status.get("lastHandledRestart") == "once" and status.get("phase") == "Ready"

    wait_for("Ready after the restart", restarted, timeout=STEP)
    print(f"restart to Ready: {time.monotonic() - t0:.1f}s")
