"""The page server against a real API server: its watch of Portals and EndpointSlices with
exactly the chart's read-only RBAC (a token of the chart's own ServiceAccount), the pages
it answers as the operator's status changes, and what its token may not do."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from starlette.testclient import TestClient

from portico_dev import pages as devpages
from portico_runtime.pages import serve_app, watch
from tests.support.controlplane import BASE_DOMAIN, Cluster, wait_for
from tests.support.portals import portal


@dataclass
class PageServer:
    client: TestClient
    user: str  # its ServiceAccount's user name


@pytest.fixture
def page_server(cluster: Cluster, tmp_path: Path) -> Iterator[PageServer]:
    """The chart's page server RBAC in a namespace of its own; the server in-process."""
    plane = cluster.plane
    release_ns = f"pages-{uuid.uuid4().hex[:6]}"
    plane.kubectl("create", "namespace", release_ns)
    text = devpages.manifests(plane.bins["helm"], "unused:1", BASE_DOMAIN).replace(
        "namespace: portico-system", f"namespace: {release_ns}"
    )
    docs = [d for d in yaml.safe_load_all(text) if d]
    rbac = [d for d in docs if d["kind"] in ("ServiceAccount", "ClusterRole", "ClusterRoleBinding")]
    for doc in rbac:  # a name of its own, so parallel tests never share one
        if doc["kind"] != "ServiceAccount":
            doc["metadata"]["name"] = f"{release_ns}-pages"
        if doc["kind"] == "ClusterRoleBinding":
            doc["roleRef"]["name"] = f"{release_ns}-pages"
            doc["subjects"][0]["namespace"] = release_ns
    cluster.apply(*rbac)
    token = plane.kubectl("create", "token", devpages.NAME, "-n", release_ns).stdout.strip()
    (tmp_path / "token").write_text(token)
    kubeconfig = yaml.safe_load(plane.kubeconfig.read_text())
    ca = Path(kubeconfig["clusters"][0]["cluster"]["certificate-authority"])
    app, stop = serve_app(watch.Api(plane.server, tmp_path / "token", ca))
    try:
        yield PageServer(TestClient(app), f"system:serviceaccount:{release_ns}:{devpages.NAME}")
    finally:
        stop.set()
        for doc in rbac:
            if doc["kind"] != "ServiceAccount":
                plane.kubectl("delete", doc["kind"].lower(), doc["metadata"]["name"], check=False)
        plane.kubectl("delete", "namespace", release_ns, "--wait=false", check=False)


def test_the_page_server_follows_portal_status_read_only(
    cluster: Cluster, namespace: str, instance: str, page_server: PageServer
) -> None:
    client = page_server.client
    wait_for("the first lists", lambda: client.get("/readyz").status_code == 200)
    name = "pg-broken"
    host = f"{name}-{namespace}.{BASE_DOMAIN}"
    cluster.apply(
        portal(name, namespace, instance, subdomain=f"{name}-{namespace}", language="it-IT")
    )
    cluster.wait_phase(namespace, name, "Failed", "LanguageNotInstalled")

    def failed_page() -> bool:
        answer = client.get("/", headers={"Host": host})
        return answer.status_code == 503 and "its settings need a change" in answer.text

    wait_for("the Failed page from the watch", failed_page, timeout=30)
    answer = client.get("/", headers={"Host": host})
    assert "it-IT" not in answer.text and "LanguageNotInstalled" not in answer.text
    assert client.get("/", headers={"Host": f"nobody.{BASE_DOMAIN}"}).status_code == 404

    cluster.plane.kubectl("delete", "portal", name, "-n", namespace)
    wait_for(
        "the page to go with the portal",
        lambda: client.get("/", headers={"Host": host}).status_code == 404,
        timeout=30,
    )


def test_the_page_servers_token_reads_and_never_writes(
    cluster: Cluster, page_server: PageServer
) -> None:
    allowed = {
        ("list", "portals.portico.dev"): "yes",
        ("watch", "endpointslices.discovery.k8s.io"): "yes",
        ("patch", "portals.portico.dev/status"): "no",
        ("update", "portals.portico.dev"): "no",
        ("get", "secrets"): "no",
        ("create", "ingresses.networking.k8s.io"): "no",
    }
    for (verb, resource), expected in allowed.items():
        got = cluster.plane.kubectl(
            "auth", "can-i", verb, resource, "--all-namespaces", f"--as={page_server.user}",
            check=False,
        ).stdout.strip()  # fmt: skip
        assert got == expected, (verb, resource, got)


def test_an_upgrade_removes_the_per_portal_pages_children(
    cluster: Cluster, namespace: str, instance: str
) -> None:
    """What releases before the page server made for each portal — a `<portal>-pages`
    Deployment and ConfigMap it controls — the operator deletes; an object of that name
    that is not the portal's stays."""
    cluster.apply(portal("old", namespace, instance))
    ready = cluster.wait_phase(namespace, "old", "Ready", timeout=120)
    owner = {
        "apiVersion": "portico.dev/v1alpha1",
        "kind": "Portal",
        "name": "old",
        "uid": ready["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }
    labels = {
        "app.kubernetes.io/managed-by": "portico",
        "app.kubernetes.io/name": "portal",
        "app.kubernetes.io/instance": "old",
        "app.kubernetes.io/component": "pages",
        "portico.dev/portal": "old",
    }
    selector = {"portico.dev/portal": "old", "app.kubernetes.io/component": "pages"}
    meta = {"name": "old-pages", "namespace": namespace, "labels": labels}
    cluster.apply(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {**meta, "ownerReferences": [owner]},
         "data": {"page.json": "{}"}},
        {"apiVersion": "apps/v1", "kind": "Deployment",
         "metadata": {**meta, "ownerReferences": [owner]},
         "spec": {"replicas": 0, "selector": {"matchLabels": selector},
                  "template": {"metadata": {"labels": labels},
                               "spec": {"containers": [{"name": "pages", "image": "x"}]}}}},
        # Someone else's object with a pages-like name and Portico's labels: left alone.
        {"apiVersion": "v1", "kind": "ConfigMap",
         "metadata": {**meta, "name": "old-pages-mine"}, "data": {}},
    )  # fmt: skip
    for kind in ("configmap", "deployment"):
        wait_for(
            f"the old {kind} old-pages to be removed",
            lambda k=kind: cluster.get(k, "old-pages", namespace) is None,
            timeout=60,
        )
    assert cluster.get("configmap", "old-pages-mine", namespace) is not None
    assert cluster.portal(namespace, "old")["status"]["phase"] == "Ready"


def test_maintenance_mode_default_custom_and_fallback_pages(
    cluster: Cluster, namespace: str, instance: str, page_server: PageServer
) -> None:
    """spec.maintenance: the portal stays Ready with its runtime; its URL answers 503 with
    Retry-After and the default page (the message escaped), then the custom page copied
    from the owner's ConfigMap; an oversized page falls back with a condition naming it."""
    client = page_server.client
    wait_for("the first lists", lambda: client.get("/readyz").status_code == 200)
    name = "pg-works"
    host = f"{name}-{namespace}.{BASE_DOMAIN}"
    cluster.apply(portal(name, namespace, instance, subdomain=f"{name}-{namespace}"))
    cluster.wait_phase(namespace, name, "Ready", timeout=120)
    message = "Back at 10:00 <b>sharp</b>"

    def maintain(spec: dict) -> None:
        cluster.plane.kubectl(
            "patch", "portal", name, "-n", namespace, "--type=merge",
            "-p", json.dumps({"spec": {"maintenance": spec}}),
        )  # fmt: skip

    maintain({"enabled": True, "message": message, "retryAfterSeconds": 120})
    obj = cluster.wait_phase(namespace, name, "Ready")
    assert cluster.condition(obj, "MaintenancePage")["reason"] == "DefaultPage"
    wait_for("the route to go", lambda: cluster.get("ingress", name, namespace) is None)
    deployment = cluster.get("deployment", name, namespace)
    assert deployment is not None and deployment["spec"]["replicas"] == 1  # keeps running

    def default_page() -> bool:
        answer = client.get("/", headers={"Host": host})
        return answer.status_code == 503 and "is down for maintenance" in answer.text

    wait_for("the default maintenance page", default_page, timeout=30)
    answer = client.get("/", headers={"Host": host})
    assert answer.headers["retry-after"] == "120"
    assert "Back at 10:00 &lt;b&gt;sharp&lt;/b&gt;" in answer.text and "<b>" not in answer.text

    def condition(reason: str) -> bool:
        obj = cluster.portal(namespace, name)
        generation = obj["metadata"]["generation"]
        current = (obj.get("status") or {}).get("observedGeneration") == generation
        return current and cluster.condition(obj, "MaintenancePage").get("reason") == reason

    # A custom page from the owner's ConfigMap (the API server caps a ConfigMap at 1 MiB,
    # so the over-1-MiB fallback is proven in tests/unit/test_maintenance.py).
    small = {"page.html": "<h1>We are moving house</h1>"}
    cluster.apply(
        {"apiVersion": "v1", "kind": "ConfigMap",
         "metadata": {"name": "sorry", "namespace": namespace}, "data": small}
    )  # fmt: skip
    maintain({"page": {"configMapRef": {"name": "sorry", "key": "page.html"}}})
    wait_for("CustomPage", lambda: condition("CustomPage"), 60)

    def custom_page() -> bool:
        answer = client.get("/", headers={"Host": host})
        return answer.status_code == 503 and "We are moving house" in answer.text

    wait_for("the custom maintenance page", custom_page, timeout=30)
    # A missing page falls back to the default one, and says so.
    maintain({"page": {"configMapRef": {"name": "gone", "key": "page.html"}}})
    wait_for("MaintenancePageNotFound", lambda: condition("MaintenancePageNotFound"), 60)
    wait_for(
        "the copy to be pruned",
        lambda: cluster.get("configmap", f"{name}-maintenance", namespace) is None,
    )
    wait_for("the default page again", default_page, timeout=30)
    # Off again: the portal's own route is back.
    maintain({"enabled": False})
    wait_for("the route back", lambda: cluster.get("ingress", name, namespace) is not None, 60)
    obj = cluster.wait_phase(namespace, name, "Ready")
    assert "maintenance" not in obj["status"]
