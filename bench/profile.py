"""A sampling profile of the operator process while it works (py-spy, from PyPI).

`py-spy record --format raw` writes collapsed stacks ("frame;frame;leaf count");
`top` turns them into the functions with the most samples on the stack (inclusive)
and at the top of it (self), which is what the bench reports.
"""

from __future__ import annotations

import collections
import contextlib
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

PY_SPY = Path(sys.executable).with_name("py-spy")


@contextlib.contextmanager
def recording(pid: int, out: Path, rate: int = 50) -> Iterator[None]:
    """Sample PID (with its threads: reconciles run in a worker thread) until the block ends."""
    spy = str(PY_SPY) if PY_SPY.exists() else shutil.which("py-spy")
    if spy is None:
        raise RuntimeError("py-spy is not installed: pip install -e '.[dev]'")
    proc = subprocess.Popen(
        [spy, "record", "--pid", str(pid), "--rate", str(rate), "--format", "raw",
         "--output", str(out), "--nonblocking", "--threads"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        yield
    finally:
        proc.send_signal(signal.SIGINT)  # py-spy writes its output when interrupted
        _, err = proc.communicate(timeout=60)
        if not out.exists():
            raise RuntimeError(f"py-spy wrote no profile: {err.decode(errors='replace')[-500:]}")


def top(raw: Path, k: int = 30) -> dict[str, Any]:
    """The K functions with the most samples, inclusive and self, as shares of all samples."""
    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = [_short(f) for f in stack.split(";") if not f.startswith("thread ")]
        if not frames:
            continue
        total += n
        own[frames[-1]] += n
        for frame in set(frames):
            inclusive[frame] += n

    def share(counter: collections.Counter[str]) -> list[list[Any]]:
        return [[f, round(c / total, 3)] for f, c in counter.most_common(k)] if total else []

    return {"samples": total, "inclusive": share(inclusive), "self": share(own)}


def _short(frame: str) -> str:
    """`func (path/to/module.py:12)` → `func (module.py)`: lines vary, files say enough."""
    name, _, where = frame.partition(" (")
    return f"{name} ({Path(where.split(':')[0]).name})" if where else name
