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

from portico_dev import BinariesMissing, ControlPlane, imagebuild, images, node, pages
from portico_dev import binaries as devbinaries
from tests.support.controlplane import BASE_DOMAIN, Cluster, Operator, fresh_namespace
from tests.support.dnsserver import AuthoritativeDNS, running_dns
from tests.support.realnode import (
    CREDENTIALS_NAMESPACE,
    INSTANCE_TOKEN,
    Images,
    Instance,
    PageServer,
    RealCluster,
    instance_docs,
    instance_workload,
)
from tests.support.tiers import mark_tier, raise_on_sigterm, skip_or_fail

HERE = Path(__file__).parent.resolve()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    mark_tier(items, HERE, pytest.mark.realnode)


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
        # Traefik's default certificate: a wildcard for the tests' base domain.
        real = node.RealNode(plane, bins, base_domain=BASE_DOMAIN)
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
    with fresh_namespace(real_cluster.plane, "rn") as name:
        yield name


# The portal tests' shared fixtures (images, DNS, the stand-in instance): one of each per run.


@pytest.fixture(scope="session")
def portico_images(real_cluster: RealCluster) -> Images:
    """The operator, runtime and stand-in images, built here (cached) and imported into the node."""
    names = ("operator", "runtime", "standin")
    built = {image.name: image for image in imagebuild.build(only=names)}
    for name in names:
        real_cluster.node.import_image(built[name].archive)
    return Images(*(built[name].ref for name in names))


@pytest.fixture(scope="session")
def portal_dns(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthoritativeDNS]:
    with running_dns(tmp_path_factory.mktemp("dns"), {"portico.invalid": []}) as server:
        yield server


@pytest.fixture(scope="session")
def crm(real_cluster: RealCluster, portico_images: Images) -> Instance:
    """The stand-in instance (its own image, `portico-standin instance`) as a pod; its
    PortalInstance's url is its Service's ClusterIP (there is no cluster DNS)."""
    plane, cluster = real_cluster.plane, Cluster(real_cluster.plane)
    if plane.kubectl("get", "namespace", CREDENTIALS_NAMESPACE, check=False).returncode != 0:
        plane.kubectl("create", "namespace", CREDENTIALS_NAMESPACE)
    plane.wait_for_service_account(CREDENTIALS_NAMESPACE, "default")
    secret = instance_docs("crm", "http://unused", INSTANCE_TOKEN)[0]
    cluster.apply(secret, *instance_workload(portico_images.standin))
    plane.kubectl(
        "wait", "--for=condition=Available", "deployment/crm",
        "-n", CREDENTIALS_NAMESPACE, "--timeout=180s",
    )  # fmt: skip
    ip = real_cluster.kubectl(
        "get", "service", "crm", "-n", CREDENTIALS_NAMESPACE, "-o", "jsonpath={.spec.clusterIP}"
    )
    instance = Instance(f"crm-{uuid.uuid4().hex[:6]}", f"http://{ip}")
    cluster.apply(*instance_docs(instance.name, instance.url, INSTANCE_TOKEN))
    # Left in place: the session's cluster goes (test_zz_down.py stops it before teardown).
    return instance


@pytest.fixture(scope="session")
def page_server(real_cluster: RealCluster, portico_images: Images) -> PageServer:
    """The shared page server from the chart's templates/pages.yaml, as `portico dev up
    --real-node` runs it: every portal test of the session goes through it."""
    helm = real_cluster.plane.bins["helm"]
    pages.install(real_cluster.plane, helm, portico_images.runtime, BASE_DOMAIN)
    return PageServer(pages.NAMESPACE, pages.NAME)


@pytest.fixture(scope="module")
def operator(
    real_cluster: RealCluster,
    portico_images: Images,
    portal_dns: AuthoritativeDNS,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Operator]:
    """`portico run` (one per test module) with Portico's runtime image, pulled Never (it
    was imported): a process of this host in the node's network, where an in-cluster
    operator would be (it reaches the instance's ClusterIP there, and the host's DNS server
    through a relay)."""
    plane = real_cluster.plane
    dns = real_cluster.node.expose_host_port(portal_dns.port, udp=True)
    op = Operator(
        plane,
        plane.kubeconfig,
        tmp_path_factory.mktemp("operator"),
        netns=real_cluster.node.netns,
        PORTICO_RUNTIME_IMAGE=portico_images.runtime,
        PORTICO_IMAGE_PULL_POLICY="Never",
        PORTICO_DNS_NAMESERVERS=dns,
        PORTICO_DNS_TIMEOUT="1",
        PORTICO_DNS_RECHECK_SECONDS="0.5",
        PORTICO_DEFAULT_HOST_TLS="true",  # Traefik's default certificate serves them
        **pages.operator_env(),
    )
    op.start()
    try:
        yield op
    finally:
        op.stop()
