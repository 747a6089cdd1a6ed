"""Fixtures shared by the unit tests (their helpers live in tests/support)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support import runtime_stub
from tests.support.dnsserver import AuthoritativeDNS, running_dns


@pytest.fixture
def runtime_pod() -> Iterator[int]:
    """The port of a real HTTP server standing where a portal's runtime pod would."""
    with runtime_stub.runtime_pod() as port:
        yield port


@pytest.fixture(scope="module")
def nsd(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AuthoritativeDNS]:
    """A real authoritative DNS server for the module: the platform's zone `portals.test`
    with the module's PLATFORM records, and an empty customer zone `contoso.test`."""
    zones = {"portals.test": list(request.module.PLATFORM), "contoso.test": []}
    with running_dns(tmp_path_factory.mktemp("nsd"), zones) as server:
        yield server


@pytest.fixture
def zones(nsd: AuthoritativeDNS) -> AuthoritativeDNS:
    """The module's server, running, with the customer zone emptied."""
    nsd.start()
    nsd.set_zone("contoso.test")
    return nsd
