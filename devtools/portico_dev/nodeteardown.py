"""Stop a real dev node so that nothing is left: no process, mount, cgroup or namespace.

Kept apart from node.py (which needs the control plane) so ControlPlane.stop can
call it from any process that only has the state file. Order matters: the kubelet
first (so it restarts nothing), then every container by its cgroup, the shims and
containerd, then the mounts, the cgroups, and last the namespace holder.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import time
from pathlib import Path

from portico_dev import procs
from portico_dev.state import State

CGROUP_FS = Path("/sys/fs/cgroup")
CNI_RESULTS = Path("/var/lib/cni/results")  # libcni's cache: not configurable in containerd 1.6
CONTAINER_LOG_LINKS = Path("/var/log/containers")  # the kubelet's symlinks: not configurable
_MNT_DETACH = 2
_libc = ctypes.CDLL(None, use_errno=True)


def cgroup_dirs(cgroup_root: str) -> list[Path]:
    """The node's cgroup root in every mounted hierarchy (v1: one per controller)."""
    name = cgroup_root.strip("/")
    found = [CGROUP_FS / name] if (CGROUP_FS / "cgroup.procs").exists() else []
    found += [h / name for h in sorted(CGROUP_FS.iterdir()) if (h / "cgroup.procs").exists()]
    return [d for d in found if d.is_dir()]


def _cgroup_pids(cgroup_root: str) -> set[int]:
    pids: set[int] = set()
    for top in cgroup_dirs(cgroup_root):
        # os.walk, not rglob: pods' cgroups vanish while they are walked (the kubelet and
        # the kills below remove them), and os.walk skips a directory that is gone.
        for where, _dirs, files in os.walk(top):
            if "cgroup.procs" in files:
                with contextlib.suppress(OSError):
                    procs = Path(where, "cgroup.procs").read_text()
                    pids.update(int(line) for line in procs.split())
    return pids


def _kill_cgroup_members(cgroup_root: str, timeout: float = 15.0) -> None:
    # Every container process (pause and app) lives below the kubelet's cgroup root.
    deadline = time.monotonic() + timeout
    while (pids := _cgroup_pids(cgroup_root)) and time.monotonic() < deadline:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.2)


def _shim_pids(socket: str) -> list[int]:
    """containerd shims of *this* containerd: they daemonize, so find them by its socket."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if socket.encode() in argv and b"-address" in argv:
            found.append(int(entry.name))
    return found


def _mounts_under(root: Path) -> list[str]:
    prefix = str(root).rstrip("/") + "/"
    points = []
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            point = line.split()[4].replace("\\040", " ")
            if point.startswith(prefix):
                points.append(point)
    return sorted(set(points), key=len, reverse=True)


def unmount_all(root: Path) -> None:
    """Detach every mount below root, deepest first (rootfs overlays, tmpfs volumes, netns)."""
    for _ in range(3):
        points = _mounts_under(root)
        if not points:
            return
        for point in points:
            _libc.umount2(point.encode(), _MNT_DETACH)


def _remove_cgroups(cgroup_root: str) -> None:
    # A just-killed task can keep its cgroup busy for a moment: retry briefly.
    for _ in range(20):
        tops = cgroup_dirs(cgroup_root)
        if not tops:
            return
        for top in tops:
            subdirs = sorted((d for d in top.rglob("*") if d.is_dir()), key=lambda d: -len(d.parts))
            for directory in [*subdirs, top]:
                with contextlib.suppress(OSError):
                    directory.rmdir()
        time.sleep(0.1)


def _remove_cni_results(node_dir: Path, network: str) -> None:
    """libcni caches each attachment as <network>-<sandbox id>-<ifname>; CRI adds cni-loopback."""
    sandboxes: set[str] = set()
    for kind in ("root", "state"):
        with contextlib.suppress(OSError):
            top = node_dir / "containerd" / kind / "io.containerd.grpc.v1.cri" / "sandboxes"
            sandboxes.update(entry.name for entry in top.iterdir())
    with contextlib.suppress(OSError):
        for result in CNI_RESULTS.iterdir():
            name = result.name
            ours = name.startswith(f"{network}-") or (
                name.startswith("cni-loopback-") and name.split("-")[2] in sandboxes
            )
            if ours:
                result.unlink()


def _stop(state: State, names: tuple[str, ...]) -> None:
    for name in names:
        entry = state.processes.pop(name, None)
        if entry is not None and procs.pid_matches(*entry):
            procs.terminate([entry[0]], timeout=10.0)


def teardown(state: State) -> None:
    """Stop the real node recorded in state (idempotent; a no-op without one)."""
    node = state.real_node
    if not node:
        return
    node_dir = Path(node["dir"])
    _stop(state, ("traefik", "kube-proxy", "kubelet"))
    _kill_cgroup_members(node["cgroup_root"])
    socket = node["containerd_socket"]
    _stop(state, ("containerd",))
    shims = _shim_pids(socket)
    for pid in shims:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    procs.terminate(shims, timeout=5.0)
    unmount_all(node_dir)
    _remove_cgroups(node["cgroup_root"])
    _stop(state, (*(n for n in list(state.processes) if n.startswith("relay-")), "node-net"))
    _remove_cni_results(node_dir, node["network"])
    with contextlib.suppress(OSError):
        for link in CONTAINER_LOG_LINKS.glob("*.log"):
            if link.is_symlink() and os.readlink(link).startswith(str(node_dir) + "/"):
                link.unlink()
    if not _mounts_under(node_dir):
        shutil.rmtree(node_dir, ignore_errors=True)
    state.real_node = {}
