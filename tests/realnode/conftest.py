"""The real-node tier: a control plane plus one real node (containerd, kubelet, kube-proxy)
and Traefik, for the whole session; pods really run.

Without its binaries or Debian packages the tier is skipped with the reason, and
PORTICO_REQUIRE_CONTROLPLANE=1 (set by `make test`) turns that skip into a failure.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from portico_dev import BinariesMissing, images, node
from tests.support.controlplane import Operator, fresh_namespace
from tests.support.dnsserver import AuthoritativeDNS, running_dns
from tests.support.realnode import (
    Images,
    Instance,
    PageServer,
    RealCluster,
    import_portico_images,
    install_page_server,
    node_binaries,
    portal_operator,
    running_real_cluster,
    start_instance,
)
from tests.support.tiers import mark_tier, raise_on_sigterm, skip_or_fail

HERE = Path(__file__).parent.resolve()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    mark_tier(items, HERE, pytest.mark.realnode)


@pytest.fixture(scope="session")
def real_cluster() -> Iterator[RealCluster]:
    try:
        bins = node_binaries()
    except (BinariesMissing, node.NodeUnavailable) as exc:
        skip_or_fail(str(exc))
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, raise_on_sigterm)
    with running_real_cluster(bins) as cluster:
        yield cluster


@pytest.fixture(scope="session")
def hello_image(real_cluster: RealCluster) -> str:
    """The static Go test server, built here and imported into the node's containerd."""
    image = images.hello_image()
    real_cluster.node.import_image(image.archive)
    return image.ref


@pytest.fixture
def namespace(real_cluster: RealCluster) -> Iterator[str]:
    with fresh_namespace(real_cluster.plane, "rn") as name:
        yield name


# The portal tests' shared fixtures (images, DNS, the stand-in instance): one of each per run.


@pytest.fixture(scope="session")
def portico_images(real_cluster: RealCluster) -> Images:
    """The operator, runtime and stand-in images, built here (cached) and imported into the node."""
    return import_portico_images(real_cluster)


@pytest.fixture(scope="session")
def portal_dns(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthoritativeDNS]:
    with running_dns(tmp_path_factory.mktemp("dns"), {"portico.invalid": []}) as server:
        yield server


@pytest.fixture(scope="session")
def crm(real_cluster: RealCluster, portico_images: Images) -> Instance:
    """The stand-in instance as a pod. Left in place: the session's cluster goes
    (test_zz_down.py stops it before teardown)."""
    return start_instance(real_cluster, portico_images)


@pytest.fixture(scope="session")
def page_server(real_cluster: RealCluster, portico_images: Images) -> PageServer:
    """The shared page server: every portal test of the session goes through it."""
    return install_page_server(real_cluster, portico_images)


@pytest.fixture(scope="module")
def operator(
    real_cluster: RealCluster,
    portico_images: Images,
    portal_dns: AuthoritativeDNS,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Operator]:
    """`portico run` (one per test module) with Portico's runtime image."""
    op = portal_operator(
        real_cluster, portico_images, portal_dns.port, tmp_path_factory.mktemp("operator")
    )
    op.start()
    try:
        yield op
    finally:
        op.stop()
