"""Site operations as a visitor sees them, over real HTTP through Traefik on the real node:
a Stopped site's URL answers the page server's "not running" page (503), Running again
serves the portal; `portico restart --site` rolls the runtime's pods while every request
is answered by the portal, and is echoed once the new pods alone serve; a renamed site's
old address answers a 308 to the new one (same path and query) from the page server."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator

import pytest

from tests.support.controlplane import (
    BASE_DOMAIN,
    PORTICO,
    Cluster,
    Operator,
    fresh_namespace,
    wait_for,
)
from tests.support.portals import portal
from tests.support.realnode import (
    Answer,
    Instance,
    PageServer,
    RealCluster,
    fetch,
    pods,
    request_loop,
    serving,
    until,
)

READY_TIMEOUT = 240.0
COMPONENT = "app.kubernetes.io/component"


@pytest.fixture(scope="module")
def namespace(
    real_cluster: RealCluster, operator: Operator, page_server: PageServer
) -> Iterator[str]:
    with fresh_namespace(real_cluster.plane, "ops") as name:
        yield name


def _runtime(portal: str) -> str:
    """The label selector of one portal's runtime pods (the namespace holds several)."""
    return f"{COMPONENT}=runtime,portico.dev/portal={portal}"


def _ready_site(real_cluster: RealCluster, namespace: str, crm: Instance, name: str) -> str:
    cluster = Cluster(real_cluster.plane)
    subdomain = f"{name}-{namespace}"
    cluster.apply(
        portal(name, namespace, crm.name, subdomain=subdomain, displayName=f"Contoso {name}")
    )
    cluster.wait_phase(namespace, name, "Ready", timeout=READY_TIMEOUT)
    host = f"{subdomain}.{BASE_DOMAIN}"
    until("the portal", lambda: serving(fetch(real_cluster.http, host), f"Contoso {name}"))
    return host


def test_a_stopped_site_answers_the_stopped_page_and_running_brings_it_back(
    real_cluster: RealCluster, namespace: str, crm: Instance
) -> None:
    cluster = Cluster(real_cluster.plane)
    host = _ready_site(real_cluster, namespace, crm, "pause")
    real_cluster.kubectl(
        "patch", "portal", "pause", "-n", namespace, "--type=merge",
        "-p", '{"spec": {"state": "Stopped"}}',
    )  # fmt: skip
    real_cluster.kubectl(
        "wait", "portal/pause", "-n", namespace,
        "--for=jsonpath={.status.phase}=Stopped", "--timeout=120s",
    )  # fmt: skip

    def stopped_page() -> Answer | None:
        answer = fetch(real_cluster.http, host)
        ok = answer.status == 503 and "is not running" in answer.body
        return answer if ok else None

    page = until("the stopped page through Traefik", stopped_page, timeout=60)
    assert "<h1>Contoso pause</h1>" in page.body and int(page.headers["retry-after"]) > 0
    wait_for(
        "the runtime's pods to go",
        lambda: not pods(cluster, namespace, _runtime("pause")),
        timeout=120,
    )
    real_cluster.kubectl(
        "patch", "portal", "pause", "-n", namespace, "--type=merge",
        "-p", '{"spec": {"state": "Running"}}',
    )  # fmt: skip
    cluster.wait_phase(namespace, "pause", "Ready", timeout=READY_TIMEOUT)
    until("the portal again", lambda: serving(fetch(real_cluster.http, host), "Contoso pause"))


def test_restart_site_rolls_the_pods_and_drops_no_request(
    real_cluster: RealCluster, namespace: str, crm: Instance
) -> None:
    cluster = Cluster(real_cluster.plane)
    host = _ready_site(real_cluster, namespace, crm, "roll")
    time.sleep(3)  # Traefik's own route for the portal
    before = {p["metadata"]["uid"] for p in pods(cluster, namespace, _runtime("roll"))}
    with request_loop(real_cluster.http, host) as answers:
        time.sleep(1)
        env = {"KUBECONFIG": str(real_cluster.plane.kubeconfig), "PATH": "/usr/bin:/bin"}
        out = subprocess.run(
            [PORTICO, "restart", "roll", "-n", namespace, "--site"],
            capture_output=True,
            text=True,
            env=env,
        )
        assert out.returncode == 0, out.stderr
        token = out.stdout.split("portico.dev/restart-site=")[1].split(")")[0]

        def echoed() -> bool:
            status = cluster.portal(namespace, "roll").get("status") or {}
            return status.get("lastHandledSiteRestart") == token

        wait_for("status.lastHandledSiteRestart", echoed, timeout=READY_TIMEOUT)
        time.sleep(3)
    after = {p["metadata"]["uid"] for p in pods(cluster, namespace, _runtime("roll"))}
    assert after and not (after & before), "the site restart must replace every pod"
    failed = [a for a in answers if not isinstance(a, Answer) or a.status != 200]
    assert len(answers) > 20
    assert not failed, f"{len(failed)} of {len(answers)} requests failed: {failed[:3]}"
    print(f"{len(answers)} requests through the site restart, all 200")


def test_maintenance_answers_503_with_retry_after_while_the_runtime_keeps_running(
    real_cluster: RealCluster, namespace: str, crm: Instance
) -> None:
    cluster = Cluster(real_cluster.plane)
    host = _ready_site(real_cluster, namespace, crm, "works")
    before = {p["metadata"]["uid"] for p in pods(cluster, namespace, _runtime("works"))}
    patch = '{"spec": {"maintenance": {"enabled": true, "message": "Back at <10:00>"}}}'
    real_cluster.kubectl("patch", "portal", "works", "-n", namespace, "--type=merge", "-p", patch)

    def maintenance_page() -> Answer | None:
        answer = fetch(real_cluster.http, host)
        ok = answer.status == 503 and "is down for maintenance" in answer.body
        return answer if ok else None

    page = until("the maintenance page through Traefik", maintenance_page, timeout=60)
    assert int(page.headers["retry-after"]) == 300
    assert "Back at &lt;10:00&gt;" in page.body
    # /healthz still reaches the runtime, which kept running (the same pods).
    health = fetch(real_cluster.http, host, path="/healthz")
    assert (health.status, health.body) == (200, "ok\n")
    after = {p["metadata"]["uid"] for p in pods(cluster, namespace, _runtime("works"))}
    assert after == before
    real_cluster.kubectl(
        "patch", "portal", "works", "-n", namespace, "--type=merge",
        "-p", '{"spec": {"maintenance": {"enabled": false}}}',
    )  # fmt: skip
    until("the portal again", lambda: serving(fetch(real_cluster.http, host), "Contoso works"))


def test_a_renamed_site_redirects_its_old_address_to_the_new_one(
    real_cluster: RealCluster, namespace: str, crm: Instance
) -> None:
    cluster = Cluster(real_cluster.plane)
    old_host = _ready_site(real_cluster, namespace, crm, "moving")
    subdomain = f"moved-{namespace}"
    new_host = f"{subdomain}.{BASE_DOMAIN}"
    real_cluster.kubectl(
        "patch", "portal", "moving", "-n", namespace, "--type=merge",
        "-p", json.dumps({"spec": {"subdomain": subdomain, "renamePolicy": "Allow"}}),
    )  # fmt: skip
    path = "/knowledge?q=reset%20password&page=2"

    def redirected() -> Answer | None:
        answer = fetch(real_cluster.http, old_host, path=path)
        location = answer.headers.get("location")
        return answer if answer.status == 308 and location == f"https://{new_host}{path}" else None

    until("the old address to redirect through Traefik", redirected, timeout=120)
    obj = cluster.wait_phase(namespace, "moving", "Ready", timeout=READY_TIMEOUT)
    assert obj["status"]["url"] == f"https://{new_host}"
    assert [p["subdomain"] for p in obj["status"]["previousSubdomains"]] == [old_host.split(".")[0]]
    until(
        "the portal at its new address",
        lambda: serving(fetch(real_cluster.http, new_host), "Contoso moving"),
    )
    # The new route is in place and the old address still redirects (until its release).
    assert redirected() is not None
