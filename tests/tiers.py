"""What every tier's conftest shares: fail (never skip) when required, its marker, SIGTERM."""

from __future__ import annotations

import os
from pathlib import Path
from types import FrameType
from typing import NoReturn

import pytest


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
