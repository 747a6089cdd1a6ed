"""Last in the tier: stopping the cluster leaves no process, mount, cgroup or namespace."""

from __future__ import annotations

import os
from pathlib import Path

from portico_dev import nodeteardown, procs
from tests.support.realnode import RealCluster


def _netns_inode(pid: int) -> int:
    return os.stat(f"/proc/{pid}/ns/net").st_ino


def _processes_in_netns(inode: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.stat(entry / "ns" / "net").st_ino == inode:
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def test_stop_leaves_nothing_behind(real_cluster: RealCluster, hello_image: str) -> None:
    plane = real_cluster.plane
    # A running pod (sandbox, container, volumes, netns) so there is something to clean up.
    plane.kubectl("create", "namespace", "teardown")
    plane.wait_for_service_account("teardown", "default")
    plane.kubectl(
        "run", "hello", "-n", "teardown", f"--image={hello_image}", "--image-pull-policy=Never"
    )
    plane.kubectl("wait", "--for=condition=Ready", "pod/hello", "-n", "teardown", "--timeout=90s")
    assert plane.state is not None
    real = dict(plane.state.real_node)
    pids = {name: pid for name, (pid, _) in plane.state.processes.items()}
    node_netns = _netns_inode(pids["node-net"])
    containers = nodeteardown._cgroup_pids(real["cgroup_root"])
    assert containers, "the pod's processes must be in the node's cgroups"
    workdir = plane.workdir

    plane.stop()

    alive = {name: pid for name, pid in pids.items() if procs.pid_alive(pid)}
    assert not alive, f"still running after stop: {alive}"
    assert not [pid for pid in containers if procs.pid_alive(pid)], "container processes left"
    assert not nodeteardown._shim_pids(real["containerd_socket"]), "containerd shims left"
    assert not _processes_in_netns(node_netns), "something still holds the node's namespace"
    assert not nodeteardown._mounts_under(workdir), "mounts left under the work directory"
    assert not nodeteardown.cgroup_dirs(real["cgroup_root"]), "the node's cgroups are left"
    assert not workdir.exists()
