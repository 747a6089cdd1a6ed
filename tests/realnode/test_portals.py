"""Portals end to end on the real node: the operator (a process here) with Portico's runtime
image, the stand-in instance as a pod, real provisioning Jobs, everything served by Traefik.

One operator and one custom-domain portal are shared by the module's tests, in order:
Configuring page -> Ready on the custom host, certificate rotation under load, a spec edit
that rolls the pods, then a provisioning failure of the real Job and its fix.
"""

from __future__ import annotations

import contextlib
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from cryptography import x509

from tests.support.certs import custom, make_pfx, ownership_record, pfx_secret
from tests.support.controlplane import BASE_DOMAIN, PORTICO, Cluster, Operator, wait_for
from tests.support.dnsserver import AuthoritativeDNS
from tests.support.portals import portal
from tests.support.realnode import (
    INSTANCE_TOKEN,
    REJECTED_PACKAGE,
    Answer,
    Instance,
    PageServer,
    RealCluster,
    fetch,
    instance_docs,
    on_real_node,
    pods,
    serving,
    until,
)

COMPONENT = "app.kubernetes.io/component"
READY_TIMEOUT = 240.0  # real pods: image unpack, a provisioning Job, the runtime's rollout
AFTER_READY = 3.0  # seconds of requests checked after `kubectl wait` returns


@dataclass
class Site:
    namespace: str
    name: str
    default_host: str
    custom_host: str
    zone: str
    fingerprint: str  # of the .pfx's leaf, lower-case hex


@pytest.fixture(scope="module")
def site(
    real_cluster: RealCluster,
    operator: Operator,
    crm: Instance,
    portal_dns: AuthoritativeDNS,
    page_server: PageServer,
) -> Iterator[Site]:
    """A Production portal with a custom domain and an uploaded .pfx; DNS has no CNAME yet."""
    cluster = Cluster(real_cluster.plane)
    namespace = f"site-{uuid.uuid4().hex[:6]}"
    real_cluster.kubectl("create", "namespace", namespace)
    real_cluster.plane.wait_for_service_account(namespace, "default")
    zone, host = f"{namespace}.test", f"www.{namespace}.test"
    data, fingerprint = make_pfx(host, "pfx-password-1")
    cluster.apply(pfx_secret("site-pfx", namespace, data, "pfx-password-1"))
    portal_dns.set_zone(zone, [])
    subdomain = f"site-{namespace}"
    doc = portal(
        "site",
        namespace,
        crm.name,
        subdomain=subdomain,
        type="Production",
        displayName="Contoso Field Support",
        customDomain=custom(host),
    )
    cluster.apply(doc)
    yield Site(namespace, "site", f"{subdomain}.{BASE_DOMAIN}", host, zone, fingerprint)
    real_cluster.plane.kubectl("delete", "namespace", namespace, "--wait=false", check=False)


def _page(real_cluster: RealCluster, site: Site) -> Answer | None:
    answer = fetch(real_cluster.http, site.default_host)
    # Traefik's own 503 (no endpoints yet) has no Retry-After and names no portal.
    if answer.status == 503 and "retry-after" in answer.headers:
        return answer
    return None


def _start_page(
    real_cluster: RealCluster, site: Site, display_name: str, fingerprint: str
) -> Answer | None:
    answer = serving(fetch(real_cluster.https, site.custom_host, tls=True), display_name)
    return answer if answer and answer.fingerprint == fingerprint else None


def _status_fingerprint(cluster: Cluster, site: Site) -> str:
    cert = cluster.portal(site.namespace, site.name)["status"]["certificate"]
    return str(cert["sha256Fingerprint"]).replace(":", "").lower()


def test_configuring_page_then_ready_on_the_custom_domain(
    real_cluster: RealCluster, site: Site, portal_dns: AuthoritativeDNS
) -> None:
    cluster = Cluster(real_cluster.plane)
    waiting = cluster.wait_phase(site.namespace, site.name, "Configuring", "CNAMEMissing")
    assert waiting["status"]["phase"] == "Configuring"
    page = until("the getting-set-up page", lambda: _page(real_cluster, site))
    assert "Contoso Field Support" in page.body
    assert int(page.headers["retry-after"]) > 0
    # The shared page server answered (its headers): no page pod of the portal's own.
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert pods(cluster, site.namespace, f"{COMPONENT}=pages") == []
    assert cluster.get("ingress", site.name, site.namespace) is None  # its route comes at Ready

    target = site.default_host
    # What the owner adds: the CNAME and the ownership TXT record the status names.
    txt = ownership_record(cluster, site.namespace, site.name)
    portal_dns.set_zone(site.zone, [f"www CNAME {target}.", txt])
    ready = cluster.wait_phase(site.namespace, site.name, "Ready", timeout=READY_TIMEOUT)
    assert ready["status"]["customDomainUrl"] == f"https://{site.custom_host}"
    assert _status_fingerprint(cluster, site) == site.fingerprint
    # Traefik loads the Ingress's TLS Secret a moment after the route: until then it answers
    # with its own default certificate, so wait for the portal's.
    started = time.monotonic()
    served = until(
        "the start page with the portal's certificate on the custom host",
        lambda: _start_page(real_cluster, site, "Contoso Field Support", site.fingerprint),
        timeout=60,
    )
    print(f"start page with its certificate served {time.monotonic() - started:.1f}s after Ready")
    assert served.fingerprint == _status_fingerprint(cluster, site)
    runtime = pods(cluster, site.namespace, f"{COMPONENT}=runtime")
    assert runtime and all(on_real_node(p) for p in runtime)


def test_the_default_host_gets_the_controllers_default_certificate(
    real_cluster: RealCluster, site: Site
) -> None:
    """The Ingress names no Secret for the default host (no namespace holds the wildcard
    key); Traefik serves it over HTTPS with its default TLS store's wildcard certificate."""
    cluster = Cluster(real_cluster.plane)
    cluster.wait_phase(site.namespace, site.name, "Ready", timeout=READY_TIMEOUT)
    ingress = cluster.get("ingress", site.name, site.namespace) or {}
    assert {"hosts": [site.default_host]} in ingress["spec"]["tls"]
    ca = x509.load_pem_x509_certificate(
        (real_cluster.plane.workdir / "pki" / "ca.crt").read_bytes()
    )

    def answered() -> Answer | None:
        answer = fetch(real_cluster.https, site.default_host, tls=True)
        return answer if answer.status == 200 and answer.cert else None

    served = until("the default host over HTTPS", answered)
    leaf = x509.load_der_x509_certificate(served.cert)
    names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == [f"*.{BASE_DOMAIN}"]
    leaf.verify_directly_issued_by(ca)


def test_an_article_and_a_search_over_https(real_cluster: RealCluster, site: Site) -> None:
    """The provisioning Job installed the sample content on the instance (a pod); the
    runtime pods serve it over HTTPS on the custom host, gated, in the visitor's language."""
    cluster = Cluster(real_cluster.plane)
    cluster.wait_phase(site.namespace, site.name, "Ready", timeout=READY_TIMEOUT)

    def get(path: str, text: str) -> Answer | None:
        answer = fetch(real_cluster.https, site.custom_host, tls=True, path=path)
        return serving(answer, text) if answer.fingerprint == site.fingerprint else None

    article = until(
        "the sample article", lambda: get("/knowledge/KA-01001", "How to reset your password")
    )
    assert "<h1>How to reset your password</h1>" in article.body
    found = until("search results", lambda: get("/search?q=password", 'href="/knowledge/KA-01001"'))
    assert "Warranty terms" not in found.body  # a role-gated article: not for an anonymous visitor
    assert (
        fetch(real_cluster.https, site.custom_host, tls=True, path="/knowledge/KA-01003").status
        == 404
    )
    assert fetch(real_cluster.https, site.custom_host, tls=True, path="/blogs").status == 404


def test_pfx_rotation_serves_every_request(real_cluster: RealCluster, site: Site) -> None:
    cluster = Cluster(real_cluster.plane)
    cluster.wait_phase(site.namespace, site.name, "Ready", timeout=READY_TIMEOUT)
    answers: list[Answer | str] = []
    stop = threading.Event()

    def load() -> None:
        while not stop.is_set():
            try:
                answers.append(fetch(real_cluster.https, site.custom_host, tls=True))
            except OSError as exc:
                answers.append(f"{type(exc).__name__}: {exc}")
            time.sleep(0.05)

    thread = threading.Thread(target=load, daemon=True)
    thread.start()
    try:
        time.sleep(1)
        data, new = make_pfx(site.custom_host, "pfx-password-2")
        cluster.apply(pfx_secret("site-pfx", site.namespace, data, "pfx-password-2"))
        wait_for("the new certificate in status", lambda: _status_fingerprint(cluster, site) == new)
        wait_for(
            "Traefik to serve the new certificate",
            lambda: any(isinstance(a, Answer) and a.fingerprint == new for a in answers[-5:]),
            timeout=60,
        )
        time.sleep(1)
    finally:
        stop.set()
        thread.join(timeout=30)
    failed = [a for a in answers if not isinstance(a, Answer) or a.status != 200]
    assert not failed, f"{len(failed)} of {len(answers)} requests failed: {failed[:3]}"
    assert all("Contoso Field Support" in a.body for a in answers if isinstance(a, Answer))
    seen = [a.fingerprint for a in answers if isinstance(a, Answer)]
    assert seen[0] == site.fingerprint and seen[-1] == new
    assert set(seen) == {site.fingerprint, new}
    print(f"{len(answers)} requests during the rotation, all 200")
    site.fingerprint = new


def test_spec_edit_rolls_pods_without_downtime_and_wait_returns_when_they_alone_serve(
    real_cluster: RealCluster, site: Site
) -> None:
    """Requests all through a spec edit: every one answered by the runtime (old or new pods,
    never the "Getting set up" page, never an error); after `kubectl wait` returns, only
    the new pods answer."""
    cluster = Cluster(real_cluster.plane)
    cluster.wait_phase(site.namespace, site.name, "Ready", timeout=READY_TIMEOUT)
    before = {p["metadata"]["uid"] for p in pods(cluster, site.namespace, f"{COMPONENT}=runtime")}
    answers: list[tuple[float, Answer | str]] = []  # (when the request was sent, answer)
    stop = threading.Event()

    def load() -> None:
        while not stop.is_set():
            sent = time.monotonic()
            try:
                answers.append((sent, fetch(real_cluster.https, site.custom_host, tls=True)))
            except OSError as exc:
                answers.append((sent, f"{type(exc).__name__}: {exc}"))
            time.sleep(0.05)

    thread = threading.Thread(target=load, daemon=True)
    thread.start()
    try:
        time.sleep(1)
        patch = '{"spec": {"displayName": "Contoso Service Hub"}}'
        started = time.monotonic()
        real_cluster.kubectl(
            "patch", "portal", site.name, "-n", site.namespace, "--type=merge", "-p", patch
        )
        real_cluster.kubectl(
            "wait", "--for=condition=Ready", f"portal/{site.name}", "-n", site.namespace,
            f"--timeout={READY_TIMEOUT:.0f}s",
        )  # fmt: skip
        ready_at = time.monotonic()
        time.sleep(AFTER_READY)
    finally:
        stop.set()
        thread.join(timeout=30)
    after = {p["metadata"]["uid"] for p in pods(cluster, site.namespace, f"{COMPONENT}=runtime")}
    assert after - before, "the edit must roll new pods"
    failed = [a for _, a in answers if not isinstance(a, Answer) or a.status != 200]
    assert not failed, f"{len(failed)} of {len(answers)} requests failed: {failed[:3]}"
    late = [a for sent, a in answers if sent > ready_at and isinstance(a, Answer)]
    assert len(late) > 10, f"too few requests after Ready: {len(late)}"
    old = [a for a in late if "Contoso Field Support" in a.body]
    assert not old, f"{len(old)} of {len(late)} requests after Ready reached the old pods"
    assert all("Contoso Service Hub" in a.body for a in late)
    print(
        f"kubectl wait returned {ready_at - started:.1f}s after the edit; "
        f"{len(answers)} requests during the roll, all 200; {len(late)} after Ready, all new"
    )


def test_refused_instance_credentials_fail_before_any_job_then_restart(
    real_cluster: RealCluster, operator: Operator, crm: Instance
) -> None:
    """Wrong instance credentials: the instance refuses the operator's token exchange, so the
    portal is Failed with the fix and gets no Job and no token; fixed, `portico restart`
    provisions it."""
    cluster = Cluster(real_cluster.plane)
    bad = f"{crm.name}-bad"
    cluster.apply(*instance_docs(bad, crm.url, "not-the-token"))
    with scratch_namespace(real_cluster) as namespace:
        cluster.apply(portal("shop", namespace, bad, displayName="Contoso Shop"))
        failed = cluster.wait_phase(namespace, "shop", "Failed", "ReconcileError", READY_TIMEOUT)
        message = cluster.condition(failed, "Ready")["message"]
        assert f"the instance at {crm.url} refused the credentials of PortalInstance {bad}" in (
            message
        )
        assert "fix the credentials Secret" in message
        assert "not-the-token" not in str(failed["status"]) + operator.log_text()
        assert not cluster.items("jobs", namespace)
        assert cluster.get("secret", "shop-instance", namespace) is None

        cluster.apply(instance_docs(bad, crm.url, INSTANCE_TOKEN)[0])
        restart(namespace, "shop", real_cluster)
        ready_and_serving(real_cluster, namespace, "shop", "Contoso Shop")


def test_provisioning_failure_of_the_real_job_then_changed_values(
    real_cluster: RealCluster, operator: Operator, crm: Instance
) -> None:
    """The instance fails to install a package (the stand-in pod rejects REJECTED_PACKAGE):
    the real Job fails and the portal says so; a spec edit to another template ("change
    values and restart") provisions again to Ready."""
    cluster = Cluster(real_cluster.plane)
    partner = {"audience": "Partner", "displayName": "Contoso Partners"}
    with scratch_namespace(real_cluster) as namespace:
        cluster.apply(portal("deals", namespace, crm.name, template=REJECTED_PACKAGE, **partner))
        failed = cluster.wait_phase(namespace, "deals", "Failed", "InstallFailed", READY_TIMEOUT)
        message = cluster.condition(failed, "SolutionsInstalled")["message"]
        assert "deals-provision-1" in message, message
        jobs = cluster.items("jobs", namespace)
        assert jobs and all(j["status"].get("failed") for j in jobs)

        changed = portal("deals", namespace, crm.name, template="PartnerFieldService", **partner)
        cluster.apply(changed)
        ready_and_serving(real_cluster, namespace, "deals", "Contoso Partners")


@contextlib.contextmanager
def scratch_namespace(real_cluster: RealCluster) -> Iterator[str]:
    namespace = f"fail-{uuid.uuid4().hex[:6]}"
    real_cluster.kubectl("create", "namespace", namespace)
    real_cluster.plane.wait_for_service_account(namespace, "default")
    try:
        yield namespace
    finally:
        real_cluster.plane.kubectl("delete", "namespace", namespace, "--wait=false", check=False)


def ready_and_serving(real_cluster: RealCluster, namespace: str, name: str, text: str) -> None:
    cluster = Cluster(real_cluster.plane)
    cluster.wait_phase(namespace, name, "Ready", timeout=READY_TIMEOUT)
    host = cluster.portal(namespace, name)["spec"]["subdomain"] + f".{BASE_DOMAIN}"
    until(f"{name}'s start page", lambda: serving(fetch(real_cluster.http, host), text), timeout=30)


def restart(namespace: str, name: str, real_cluster: RealCluster) -> None:
    env = {"KUBECONFIG": str(real_cluster.plane.kubeconfig), "PATH": "/usr/bin:/bin"}
    out = subprocess.run(
        [PORTICO, "restart", name, "-n", namespace], capture_output=True, text=True, env=env
    )
    assert out.returncode == 0, out.stderr
