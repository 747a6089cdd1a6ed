"""The real-control-plane tier: one control plane per session, a fresh namespace per test.

Without binaries the tier is skipped with the reason; PORTICO_REQUIRE_CONTROLPLANE=1
(set by .ci/run) turns that skip into a failure so CI can never silently skip it.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from portico_dev import BinariesMissing, ControlPlane
from portico_standin.state import InstanceState
from tests.support import controlplane as harness
from tests.support.certmanager import CertManager, running_cert_manager
from tests.support.controlplane import (
    OPERATOR_ACCOUNT,
    OPERATOR_NAMESPACE,
    Cluster,
    Operator,
    instance_docs,
)
from tests.support.dnsserver import AuthoritativeDNS, running_dns
from tests.support.mailserver import MailServer, running_mail_server
from tests.support.runtime import running_instance
from tests.support.tiers import mark_tier, running_plane, skip_or_fail

HERE = Path(__file__).parent.resolve()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    mark_tier(items, HERE, pytest.mark.controlplane)


@pytest.fixture(scope="session")
def control_plane() -> Iterator[ControlPlane]:
    """One control plane (etcd, apiserver, controllers, scheduler, kwok) for the whole run."""
    yield from running_plane()


@pytest.fixture(scope="module")
def own_control_plane() -> Iterator[ControlPlane]:
    """A control plane of one module's own: its tests restart components and run their
    own operators, which the session's operator must not share."""
    yield from running_plane()


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")[:40].strip("-")


@pytest.fixture
def namespace(control_plane: ControlPlane, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace for one test (its default ServiceAccount exists), deleted afterwards."""
    with harness.fresh_namespace(control_plane, _slug(request.node.name) or "t") as name:
        yield name


@pytest.fixture
def own_namespace(own_control_plane: ControlPlane, request: pytest.FixtureRequest) -> Iterator[str]:
    """The same on the module's own control plane."""
    with harness.fresh_namespace(own_control_plane, _slug(request.node.name) or "t") as name:
        yield name


# --- the operator and what its tests share ------------------------------------


@pytest.fixture(scope="session")
def dns(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthoritativeDNS]:
    """A real authoritative DNS server on loopback: every custom domain the operator checks."""
    with running_dns(tmp_path_factory.mktemp("dns"), {"portico.invalid": []}) as server:
        yield server


@pytest.fixture(scope="session", autouse=True)
def standin() -> Iterator[InstanceState]:
    """The backing instance every test's PortalInstance points at (the stand-in, on
    loopback): the operator mints each portal's token there."""
    with running_instance() as (url, state):
        harness.STANDIN_URL = url
        try:
            yield state
        finally:
            harness.STANDIN_URL = ""


@pytest.fixture(scope="session")
def mail_server() -> Iterator[MailServer]:
    """A real SMTP server on loopback: every invitation e-mail the operator sends."""
    with running_mail_server() as server:
        yield server


@pytest.fixture(scope="session")
def cert_manager(
    control_plane: ControlPlane, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[CertManager]:
    """The real cert-manager controller with a CA ClusterIssuer, once per session; its
    CRDs are installed before the operator starts, as docs/install.md asks."""
    try:
        manager = running_cert_manager(control_plane, tmp_path_factory.mktemp("cert-manager"))
        with manager as running:
            yield running
    except BinariesMissing as exc:
        skip_or_fail(str(exc))


@pytest.fixture(scope="session")
def operator(
    control_plane: ControlPlane,
    cert_manager: CertManager,
    dns: AuthoritativeDNS,
    mail_server: MailServer,
    tmp_path_factory: pytest.TempPathFactory,
    standin: InstanceState,
) -> Iterator[Operator]:
    """`portico run` as its own ServiceAccount (so its requests can be told apart)."""
    plane = control_plane
    if plane.kubectl("get", "namespace", OPERATOR_NAMESPACE, check=False).returncode != 0:
        plane.kubectl("create", "namespace", OPERATOR_NAMESPACE)
    kubeconfig = plane.serviceaccount_kubeconfig(
        OPERATOR_NAMESPACE, OPERATOR_ACCOUNT, duration="6h"
    )
    plane.kubectl(
        "create",
        "clusterrolebinding",
        OPERATOR_ACCOUNT,
        "--clusterrole=cluster-admin",
        f"--serviceaccount={OPERATOR_NAMESPACE}:{OPERATOR_ACCOUNT}",
        check=False,
    )
    op = Operator(
        plane,
        kubeconfig,
        tmp_path_factory.mktemp("operator"),
        **dns.operator_env(),
        PORTICO_CERT_MANAGER="true",
        PORTICO_ALLOWED_ISSUERS=f"{cert_manager.issuer['kind']}/{cert_manager.issuer['name']}",
        # As the chart has it: a NetworkPolicy per portal (the API server stores it; kwok
        # nodes enforce nothing), so every test here also proves it costs no write at rest.
        PORTICO_PORTAL_NETWORK_POLICY="true",
        PORTICO_NETWORK_POLICY_INGRESS_NAMESPACES="kubernetes.io/metadata.name=ingress",
        PORTICO_MAIL_HOST=mail_server.host,
        PORTICO_MAIL_PORT=str(mail_server.port),
        PORTICO_MAIL_FROM="portals@portico.test",
        PORTICO_MAIL_TLS="none",
        PORTICO_MAIL_TIMEOUT="3",
        PORTICO_INVITATION_POLL_SECONDS="1",
        PORTICO_INVITATION_RETRY_SECONDS="1",
        # A renamed portal's old subdomain is held this long (test_rename.py waits for it).
        PORTICO_RENAME_GRACE_SECONDS="30",
    )
    op.start()
    try:
        yield op
    finally:
        op.stop()


@pytest.fixture
def cluster(control_plane: ControlPlane, operator: Operator) -> Cluster:
    return Cluster(control_plane)


@pytest.fixture
def instance(cluster: Cluster) -> Iterator[str]:
    """A PortalInstance of this test's own, with its credentials Secret."""
    name = f"crm-{uuid.uuid4().hex[:8]}"
    cluster.apply(*instance_docs(name, OPERATOR_NAMESPACE))
    yield name
    cluster.plane.kubectl("delete", "portalinstance", name, "--wait=false", check=False)


@pytest.fixture
def other_namespace(control_plane: ControlPlane) -> Iterator[str]:
    name = f"other-{uuid.uuid4().hex[:6]}"
    control_plane.kubectl("create", "namespace", name)
    yield name
    control_plane.kubectl("delete", "namespace", name, "--wait=false", check=False)
