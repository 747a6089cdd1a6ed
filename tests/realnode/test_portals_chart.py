"""`helm install` of charts/portico with the operator image built here: the operator runs as a
pod on the real node (the chart's ServiceAccount, Pod Security restricted, a read-only root
filesystem, its probes) and takes a portal to Ready, served through Traefik.

It runs after test_portals.py, whose operator process has stopped by then (module scope):
two operators never reconcile the same portals.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.support.chart import RESTRICTED, Release, chart_values
from tests.support.controlplane import BASE_DOMAIN, Cluster
from tests.support.dnsserver import AuthoritativeDNS
from tests.support.portals import portal
from tests.support.realnode import (
    CREDENTIALS_NAMESPACE,
    Images,
    Instance,
    PageServer,
    RealCluster,
    fetch,
    on_real_node,
    serving,
    until,
)


@contextmanager
def _installed(
    real_cluster: RealCluster, values: dict[str, Any], workdir: Path
) -> Iterator[Release]:
    """The chart in a fresh namespace enforcing Pod Security restricted. A failed install
    says why with the operator pods' logs (on the node's disk: kubectl logs cannot reach
    them), read before the uninstall removes them."""
    plane, suffix = real_cluster.plane, uuid.uuid4().hex[:6]
    namespace = f"chart-system-{suffix}"
    plane.kubectl("create", "namespace", namespace)
    plane.kubectl("label", "namespace", namespace, RESTRICTED)
    # A name containing the chart's: the fullname (and ServiceAccount) is the release name.
    release = Release(plane, f"portico-{suffix}", namespace, workdir)
    try:
        try:
            release.install(values)
        except AssertionError as err:
            pods = real_cluster.kubectl("get", "pods", "-n", namespace, "-o", "wide")
            logs = sorted((real_cluster.node.dir / "pod-logs").glob(f"{namespace}_*/*/*.log"))
            text = "\n".join(f"{p}:\n{p.read_text(errors='replace')[-3000:]}" for p in logs)
            raise AssertionError(f"{err}\npods:\n{pods}\noperator logs:\n{text}") from None
        yield release
    finally:
        release.uninstall()
        plane.kubectl("delete", "namespace", namespace, "--wait=false", check=False)


def test_chart_operator_pod_takes_a_portal_to_ready(
    real_cluster: RealCluster,
    portico_images: Images,
    crm: Instance,
    page_server: PageServer,
    portal_dns: AuthoritativeDNS,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    plane, cluster = real_cluster.plane, Cluster(real_cluster.plane)
    repository, tag = portico_images.operator.rsplit(":", 1)
    # The pod reaches the host's DNS server through a relay on the node's address.
    dns_ip, dns_port = real_cluster.node.expose_host_port(portal_dns.port, udp=True).split(":")
    values = {
        **chart_values(portal_dns),
        "image": {"repository": repository, "tag": tag, "pullPolicy": "Never"},
        "runtimeImage": portico_images.runtime,
        "runtimeImagePullPolicy": "Never",
        # The stand-in's credentials are in the session's instance namespace, not the release's.
        "instanceCredentialsNamespaces": [CREDENTIALS_NAMESPACE],
        "dns": {"nameservers": [dns_ip], "port": int(dns_port), "timeout": 1, "recheckSeconds": 1},
        # The session's page server (the same templates/pages.yaml) holds the routes for
        # the base domain already; a second one would contend for them.
        "pages": {"enabled": False},
    }
    workdir: Path = tmp_path_factory.mktemp("chart")
    with _installed(real_cluster, values, workdir) as release:
        (pod,) = cluster.items("pods", release.namespace)
        assert on_real_node(pod), "the operator must run on the real node"
        assert pod["spec"]["serviceAccountName"] == release.account
        (container,) = pod["spec"]["containers"]
        assert container["image"] == portico_images.operator
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert {"livenessProbe", "startupProbe"} <= container.keys()  # the chart's probes
        ready = {c["type"]: c["status"] for c in pod["status"]["conditions"]}
        assert ready["Ready"] == "True", pod["status"]  # helm --wait: the probes pass
        labels = cluster.get("namespace", release.namespace) or {}
        assert labels["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"

        namespace = f"chart-{uuid.uuid4().hex[:6]}"
        plane.kubectl("create", "namespace", namespace)
        plane.wait_for_service_account(namespace, "default")
        try:
            cluster.apply(portal("hub", namespace, crm.name, displayName="Chart Operated Hub"))
            cluster.wait_phase(namespace, "hub", "Ready", timeout=240)
            host = f"hub-{namespace}.{BASE_DOMAIN}"
            until(
                "the start page",
                lambda: serving(fetch(real_cluster.http, host), "Chart Operated Hub"),
                timeout=30,
            )
            runtime = cluster.items("pods", namespace, "app.kubernetes.io/component=runtime")
            assert runtime and all(on_real_node(p) for p in runtime)
        finally:
            plane.kubectl("delete", "namespace", namespace, "--wait=false", check=False)
