"""Child processes of a control plane: start in their own process group, stop for sure."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path


class ProcessDied(RuntimeError):
    """A component exited while starting; the message has the tail of its log."""


class PortInUse(RuntimeError):
    """A requested port is already bound by something else."""


def free_port() -> int:
    """A port the kernel considers free right now on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def check_port_free(port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError as exc:
            raise PortInUse(f"port 127.0.0.1:{port} is already in use ({exc.strerror})") from exc


def log_tail(path: Path, lines: int = 25) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:]) or "(log is empty)"


@dataclass
class Component:
    """One running binary; its stdout and stderr go to `log`."""

    name: str
    pid: int
    log: Path
    popen: subprocess.Popen[bytes] | None = None

    def alive(self) -> bool:
        if self.popen is not None:
            return self.popen.poll() is None
        return pid_alive(self.pid)

    def check(self) -> None:
        """Raise ProcessDied (with the log tail) when the process has exited."""
        if self.alive():
            return
        code = self.popen.returncode if self.popen is not None else "?"
        tail = log_tail(self.log)
        if "address already in use" in tail:
            raise PortInUse(f"{self.name} could not bind its port (exit {code}):\n{tail}")
        raise ProcessDied(f"{self.name} exited during start-up (exit {code}); {self.log}:\n{tail}")


def _die_with_parent() -> None:
    # Runs in the child before exec: the kernel SIGKILLs it when our process dies,
    # even by SIGKILL, so a crashed test run leaves no control plane behind.
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


_PR_SET_PDEATHSIG = 1


def spawn(
    name: str,
    argv: list[str],
    log: Path,
    env: dict[str, str] | None = None,
    *,
    die_with_parent: bool = False,
) -> Component:
    """Start argv in a new session, so stopping kills its whole process group."""
    with log.open("ab") as handle:
        popen = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=env,
            preexec_fn=_die_with_parent if die_with_parent else None,
        )
    return Component(name, popen.pid, log, popen)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie still answers kill(0); treat it as gone.
    with contextlib.suppress(OSError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        if stat.rsplit(")", 1)[1].split()[0] == "Z":
            return False
    return True


def pid_matches(pid: int, executable: str) -> bool:
    """True when `pid` still runs `executable` (guards against a recycled pid)."""
    try:
        argv0 = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0", 1)[0].decode()
    except OSError:
        return False
    return argv0 == executable


def terminate(pids: list[int], timeout: float = 10.0) -> None:
    """SIGTERM each process group, wait, then SIGKILL whatever is left."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(pid_alive(p) for p in pids):
        _reap(pids)
        time.sleep(0.1)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
    _reap(pids)


def _reap(pids: list[int]) -> None:
    # Collect our own children so they do not linger as zombies.
    for pid in pids:
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(pid, os.WNOHANG)
