"""The real-control-plane tier: one control plane per session, a fresh namespace per test.

Without binaries the tier is skipped with the reason; PORTICO_REQUIRE_CONTROLPLANE=1
(set by .ci/run) turns that skip into a failure so CI can never silently skip it.
"""

from __future__ import annotations

import os
import re
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import NoReturn

import pytest

from portico.devcluster import BinariesMissing, ControlPlane
from portico.devcluster import binaries as devbinaries

HERE = Path(__file__).parent.resolve()


def require_controlplane() -> bool:
    return os.environ.get("PORTICO_REQUIRE_CONTROLPLANE") == "1"


def skip_or_fail(reason: str) -> NoReturn:
    """Skip with a visible reason, or fail when the tier is required."""
    if require_controlplane():
        pytest.fail(f"{reason} (PORTICO_REQUIRE_CONTROLPLANE=1)", pytrace=False)
    pytest.skip(reason)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.controlplane)


def _raise_on_sigterm(signum: int, frame: FrameType | None) -> None:
    # Turn SIGTERM into an exception so fixture finalizers (and atexit) still run.
    raise SystemExit(128 + signum)


@pytest.fixture(scope="session")
def control_plane() -> Iterator[ControlPlane]:
    """One control plane (etcd, apiserver, controllers, scheduler, kwok) for the whole run."""
    try:
        bins = devbinaries.locate()
    except BinariesMissing as exc:
        skip_or_fail(str(exc))
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _raise_on_sigterm)
    plane = ControlPlane(bins=bins, die_with_parent=True)
    plane.start()
    try:
        yield plane
    finally:
        plane.stop()


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")[:40].strip("-")


@pytest.fixture
def namespace(control_plane: ControlPlane, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace for one test (its default ServiceAccount exists), deleted afterwards."""
    name = f"{_slug(request.node.name) or 't'}-{uuid.uuid4().hex[:6]}"
    control_plane.kubectl("create", "namespace", name)
    control_plane.wait_for_service_account(name, "default")
    yield name
    control_plane.kubectl("delete", "namespace", name, "--wait=false", check=False)
