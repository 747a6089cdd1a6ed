"""Fixtures shared by the unit tests (their helpers live in tests/support)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support import runtime_stub


@pytest.fixture
def runtime_pod() -> Iterator[int]:
    """The port of a real HTTP server standing where a portal's runtime pod would."""
    with runtime_stub.runtime_pod() as port:
        yield port
