"""What every tier's conftest shares: fail (never skip) when required, its marker, SIGTERM."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any, NoReturn

import pytest

from portico_dev import BinariesMissing, ControlPlane
from portico_dev import binaries as devbinaries


def skip_or_fail(reason: str, required_by: str = "PORTICO_REQUIRE_CONTROLPLANE") -> NoReturn:
    """Skip with a visible reason, or fail when the environment variable requires the tier."""
    if os.environ.get(required_by) == "1":
        pytest.fail(f"{reason} ({required_by}=1)", pytrace=False)
    pytest.skip(reason)


def mark_tier(items: list[pytest.Item], here: Path, marker: pytest.MarkDecorator) -> None:
    """Give every test collected below HERE the tier's marker."""
    for item in items:
        if here in Path(str(item.path)).resolve().parents:
            item.add_marker(marker)


def raise_on_sigterm(signum: int, frame: FrameType | None) -> None:
    """SIGTERM as an exception, so fixture finalizers (and atexit) still run."""
    raise SystemExit(128 + signum)


def running_plane(**options: Any) -> Iterator[ControlPlane]:
    """A control plane for a tier's fixture (OPTIONS for ControlPlane), stopped at the end
    even on SIGTERM; missing binaries skip, or fail when the tier is required."""
    try:
        bins = devbinaries.locate()
    except BinariesMissing as exc:
        skip_or_fail(str(exc))
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, raise_on_sigterm)
    plane = ControlPlane(bins=bins, die_with_parent=True, **options)
    plane.start()
    try:
        yield plane
    finally:
        plane.stop()
