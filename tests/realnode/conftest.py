"""The real-node tier: a control plane plus one real node (containerd, kubelet, kube-proxy)
and Traefik, for the whole session; pods really run.

Without its binaries or Debian packages the tier is skipped with the reason, and
PORTICO_REQUIRE_CONTROLPLANE=1 (set by `make test`) turns that skip into a failure.
"""

from __future__ import annotations

import signal
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from portico.devcluster import BinariesMissing, ControlPlane, images, node
from portico.devcluster import binaries as devbinaries
from tests.tiers import mark_tier, raise_on_sigterm, skip_or_fail

HERE = Path(__file__).parent.resolve()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    mark_tier(items, HERE, pytest.mark.realnode)


class RealCluster:
    """The control plane and its real node, with the ingress addresses on the host."""

    def __init__(self, plane: ControlPlane, real: node.RealNode) -> None:
        self.plane, self.node = plane, real
        assert plane.state is not None
        ingress = plane.state.real_node["ingress"]
        self.http = _port(ingress["http"])
        self.https = _port(ingress["https"])

    def kubectl(self, *args: str, input: str | None = None) -> str:
        return self.plane.kubectl(*args, input=input).stdout


def _port(address: str) -> int:
    host, port = address.rsplit(":", 1)
    assert host == "127.0.0.1", address  # the ingress listens on loopback only
    return int(port)


@pytest.fixture(scope="session")
def real_cluster() -> Iterator[RealCluster]:
    try:
        bins = {**devbinaries.locate(), **devbinaries.locate(devbinaries.NODE_BINARIES)}
        node.check_host()
    except (BinariesMissing, node.NodeUnavailable) as exc:
        skip_or_fail(str(exc))
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, raise_on_sigterm)
    plane = ControlPlane(bins=bins, die_with_parent=True)
    plane.start()
    try:
        real = node.RealNode(plane, bins)
        real.start()
        yield RealCluster(plane, real)
    finally:
        plane.stop()


@pytest.fixture(scope="session")
def hello_image(real_cluster: RealCluster) -> str:
    """The static Go test server, built here and imported into the node's containerd."""
    image = images.hello_image()
    real_cluster.node.import_image(image.archive)
    return image.ref


@pytest.fixture
def namespace(real_cluster: RealCluster) -> Iterator[str]:
    name = f"rn-{uuid.uuid4().hex[:6]}"
    real_cluster.plane.kubectl("create", "namespace", name)
    real_cluster.plane.wait_for_service_account(name, "default")
    yield name
    real_cluster.plane.kubectl("delete", "namespace", name, "--wait=false", check=False)


# The portal tests' shared fixtures (images, DNS, the stand-in instance): one of each per run.
from tests.realnode.stack import crm, page_server, portal_dns, portico_images  # noqa: E402, F401
