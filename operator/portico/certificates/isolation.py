"""Certificate checks out of the operator's process, with a CPU and a wall-clock limit.

OpenSSL derives a .pfx's keys holding the GIL, for as many iterations as the
file asks. In the operator's own process that would stop watches, Lease
renewals and the liveness probe with it; here it runs in a small pool of
worker processes (worker.py). The iteration counts are judged first, in the
worker, before any key is derived (pkcs12_cost.py); what still takes too long
is stopped: the worker caps its own CPU time per job (RLIMIT_CPU), and the
operator kills it when the wall-clock limit passes, then starts a fresh one.

Callers are reconcile threads: `check` blocks the calling thread only. A
caller waits for a free worker in arrival order; the work queue keeps any one
namespace to its fair share of reconcile threads, and so of the callers here.
"""

from __future__ import annotations

import json
import os
import queue
import select
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from datetime import datetime
from types import TracebackType

from portico.certificates import wire
from portico.certificates.result import CertificateVerdict, CertReason, Problem, Rejection

DEFAULT_WORKERS = 2
DEFAULT_CPU_SECONDS = 10
DEFAULT_TIMEOUT = 30.0
# Environment a worker keeps: it needs to find Python and nothing of the operator's.
_KEEP_ENV = ("PATH", "PYTHONPATH", "LANG", "LC_ALL", "HOME", "VIRTUAL_ENV")


class WorkerFailed(Exception):
    """The worker could not answer (a bug or a crash): retried by the reconcile's backoff."""


def timed_out(message: str) -> Rejection:
    return Rejection((Problem(CertReason.CERTIFICATE_CHECK_TIMED_OUT, message),))


class _Worker:
    def __init__(self) -> None:
        env = {k: v for k, v in os.environ.items() if k in _KEEP_ENV}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "portico.certificates.worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,  # nothing of a tenant's file may reach a log
            env=env,
        )
        self.buffer = b""
        self.ended = False  # its stdout closed: it exited (or was killed by its CPU limit)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def send(self, job: Mapping[str, object]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(job).encode() + b"\n")
        self.proc.stdin.flush()

    def answer(self, deadline: float) -> bytes | None:
        """One line, or None when the worker ended or DEADLINE (monotonic) passed."""
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        while b"\n" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                self.ended = True
                return None
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                pipe.close()


class CertificateWorkers:
    """A pool of SIZE worker processes, started when first needed."""

    def __init__(
        self,
        size: int = DEFAULT_WORKERS,
        cpu_seconds: int = DEFAULT_CPU_SECONDS,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self.cpu_seconds, self.timeout = cpu_seconds, timeout
        self._idle: queue.Queue[_Worker | None] = queue.Queue()
        for _ in range(max(size, 1)):
            self._idle.put(None)
        self.killed = 0  # workers stopped for overrunning a limit (for tests and logs)

    def check(
        self,
        form: str,
        blob: bytes,
        secret: bytes | None,
        hostname: str | None = None,
        now: datetime | None = None,
    ) -> CertificateVerdict:
        """FORM "pfx": convert BLOB with password SECRET; "pair": tls.crt BLOB, tls.key SECRET."""
        job = {
            "form": form,
            "blob": wire.b64(blob),
            "secret": wire.b64(secret),
            "host": hostname,
            "now": now.isoformat() if now else None,
            "cpu_seconds": self.cpu_seconds,
        }
        slot = self._idle.get()
        worker: _Worker | None = None
        keep: _Worker | None = None
        try:
            worker = slot or _Worker()
            try:
                worker.send(job)
            except OSError:  # it died since its last job: once more on a fresh one
                worker.stop()
                worker = _Worker()
                worker.send(job)
            line = worker.answer(time.monotonic() + self.timeout)
            if line is None:
                return self._overran(worker)
            keep = worker
            return _verdict(line)
        finally:
            if keep is None and worker is not None:
                worker.stop()
            self._idle.put(keep)

    def _overran(self, worker: _Worker) -> Rejection:
        self.killed += 1
        ended = worker.proc.wait(timeout=5) if worker.ended else None
        worker.stop()
        if ended == -signal.SIGXCPU:
            return timed_out(
                f"Checking the certificate used up its {self.cpu_seconds} s of CPU time and "
                "was stopped: the file takes far longer to open than a normal export. Export "
                "it again with your tool's default settings and update the Secret"
            )
        if ended is not None:
            raise WorkerFailed(f"the certificate worker ended unexpectedly (exit {ended})")
        return timed_out(
            f"Checking the certificate took longer than {self.timeout:g} s and was stopped. "
            "Export the file again with your tool's default settings and update the Secret; "
            "if a normal file keeps timing out, the operator is short of CPU"
        )

    def close(self) -> None:
        while True:
            try:
                worker = self._idle.get_nowait()
            except queue.Empty:
                return
            if worker is not None:
                worker.stop()

    def __enter__(self) -> CertificateWorkers:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        err: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _verdict(line: bytes) -> CertificateVerdict:
    try:
        raw = json.loads(line)
        if "error" in raw:
            raise WorkerFailed(f"the certificate worker failed ({raw['error']})")
        return wire.decode(raw)
    except (ValueError, KeyError, TypeError) as err:
        what = type(err).__name__
        raise WorkerFailed(f"the certificate worker answered nonsense ({what})") from None
