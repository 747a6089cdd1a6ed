"""`portico run` as a subprocess with its own identity, and what /proc says about it."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from portico_dev.procs import free_port

PORTICO = str(Path(sys.executable).with_name("portico"))
# The first line that means "caches synced"; "portico started" until the lead adds one.
SYNC_MARKERS = ("caches synced", "portico started")
_TICK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Usage:
    rss_mib: float
    peak_rss_mib: float
    cpu_seconds: float


class OperatorProcess:
    def __init__(self, kubeconfig: Path, log: Path, env: dict[str, str]) -> None:
        self.kubeconfig, self.log, self.env = kubeconfig, log, env
        self.proc: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0  # Unix time, to compare with the audit log
        self.marker = ""

    async def start(self, timeout: float = 600.0) -> float:
        """Start; returns seconds until the log said the caches are synced."""
        offset = self.log.stat().st_size if self.log.exists() else 0
        env = {
            **os.environ,
            **self.env,
            "KUBECONFIG": str(self.kubeconfig),
            "PORTICO_METRICS_PORT": str(free_port()),
            "PORTICO_HEALTH_PORT": str(free_port()),
        }
        self.started_at, started = time.time(), time.monotonic()
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [PORTICO, "run"],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        while time.monotonic() - started < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the operator exited {self.proc.returncode}; see {self.log}")
            text = self.log.read_bytes()[offset:].decode(errors="replace")
            for marker in SYNC_MARKERS:
                if marker in text:
                    self.marker = marker
                    return time.monotonic() - started
            await asyncio.sleep(0.05)
        raise TimeoutError(f"the operator logged none of {SYNC_MARKERS} in {timeout:.0f}s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def usage(self) -> Usage:
        assert self.proc is not None, "the operator is not running"
        pid = self.proc.pid
        fields = {}
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            fields[key] = value.strip()
        stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        cpu = (int(stat[11]) + int(stat[12])) / _TICK  # utime + stime
        rss, peak = (int(fields[key].split()[0]) / 1024 for key in ("VmRSS", "VmHWM"))
        return Usage(rss, peak, cpu)

    async def sample(self, seconds: float) -> dict[str, float]:
        """RSS and the share of one core the operator used over the next SECONDS."""
        before, start = self.usage(), time.monotonic()
        await asyncio.sleep(seconds)
        after = self.usage()
        return {
            "rss_mib": round(after.rss_mib, 1),
            "peak_rss_mib": round(after.peak_rss_mib, 1),
            "cpu_percent": round(
                100 * (after.cpu_seconds - before.cpu_seconds) / (time.monotonic() - start), 2
            ),
            "window_s": seconds,
        }
