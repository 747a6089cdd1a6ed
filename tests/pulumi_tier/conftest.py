"""The `pulumi` tier: stacks/ through the real engine on a local control plane of its own.

The control plane starts without Portico's CRDs (the platform stack installs them).
Without the engine or the control-plane binaries the tier is skipped with the
reason; PORTICO_REQUIRE_CONTROLPLANE=1 (`make test`) turns that into a failure.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from portico_dev import BinariesMissing, ControlPlane, pulumi_engine
from tests.support.dnsserver import AuthoritativeDNS, running_dns
from tests.support.pulumi import Engine
from tests.support.tiers import mark_tier, running_plane, skip_or_fail

HERE = Path(__file__).parent.resolve()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    mark_tier(items, HERE, pytest.mark.pulumi)


@pytest.fixture(scope="module")
def plane() -> Iterator[ControlPlane]:
    yield from running_plane(nodes=2, install_crds=False)


@pytest.fixture(scope="module")
def dns(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthoritativeDNS]:
    with running_dns(tmp_path_factory.mktemp("dns"), {"portico.invalid": []}) as server:
        yield server


@pytest.fixture(scope="module")
def engine(plane: ControlPlane, tmp_path_factory: pytest.TempPathFactory) -> Engine:
    try:
        bins = pulumi_engine.locate()
    except BinariesMissing as exc:
        skip_or_fail(str(exc))
    found = Engine(
        bins=bins,
        root=tmp_path_factory.mktemp("pulumi"),
        passphrase=secrets.token_hex(16),
        kubeconfig=plane.kubeconfig,
    )
    found.prepare()
    return found
