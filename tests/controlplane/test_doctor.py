"""`portico doctor` end to end on the real API server: a healthy portal with a custom domain
passes every check, and each fault is found for real — a certificate the "ingress" (a real
HTTPS server on loopback) serves that is not the one Portico bound, a 503 while Ready, a
DNS record (on the loopback DNS server) that points elsewhere, a missing instance and its
Warning Event. `kubectl portico` runs through the real kubectl binary."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.serialization import BestAvailableEncryption, pkcs12

from tests.support.certs import custom, make_leaf, ownership_record
from tests.support.controlplane import BASE_DOMAIN, PORTICO, Cluster
from tests.support.dnsserver import AuthoritativeDNS
from tests.support.portals import portal, secret
from tests.support.tlsserver import running_ingress

PASSWORD = "doctor-pfx-password-1"


def doctor(cluster: Cluster, namespace: str, name: str, *args: str) -> tuple[int, dict[str, Any]]:
    done = subprocess.run(
        [PORTICO, "doctor", name, "-n", namespace, "-o", "json", *args],
        env={**os.environ, "KUBECONFIG": str(cluster.plane.kubeconfig)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode in (0, 1), done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    return done.returncode, json.loads(done.stdout)


def by_check(report: dict[str, Any]) -> dict[str, dict[str, str]]:
    return {c["check"]: c for c in report["checks"]}


def test_doctor_passes_a_healthy_portal_and_finds_a_wrong_certificate_a_503_and_dns_elsewhere(
    cluster: Cluster, namespace: str, instance: str, dns: AuthoritativeDNS
) -> None:
    zone, host = f"{namespace}.test", f"www.{namespace}.test"
    target = f"site-{namespace}.{BASE_DOMAIN}"
    key, leaf, ca = make_leaf(host)
    pfx = pkcs12.serialize_key_and_certificates(
        b"portal", key, leaf, [ca], BestAvailableEncryption(PASSWORD.encode())
    )
    pfx_secret = secret("site-pfx", namespace, password=PASSWORD)
    pfx_secret["data"]["certificate.pfx"] = base64.b64encode(pfx).decode()
    dns.set_zone(zone, [f"www CNAME {target}."])
    cluster.apply(
        pfx_secret,
        secret("site-hub", namespace, sharedKey="hub-key"),
        portal(
            "site",
            namespace,
            instance,
            subdomain=f"site-{namespace}",
            type="Production",
            customDomain=custom(host),
            analytics={
                "customerInsights": {
                    "hubUri": "https://hub.example.net",
                    "policyName": "writer",
                    "sharedKeySecretRef": {"name": "site-hub", "key": "sharedKey"},
                }
            },
        ),
    )
    # The owner publishes the ownership record its status names (domainOwnership Required).
    dns.set_zone(zone, [f"www CNAME {target}.", ownership_record(cluster, namespace, "site")])
    cluster.wait_phase(namespace, "site", "Ready", timeout=120)
    nameserver = f"--nameserver={dns.address}:{dns.port}"
    default_key, default_leaf, _ = make_leaf(target)  # the controller's default certificate
    good = {target: (default_key, default_leaf), host: (key, leaf)}

    with running_ingress(good) as ingress:
        code, report = doctor(
            cluster, namespace, "site", nameserver, f"--ingress-address={ingress.address}"
        )
    checks = by_check(report)
    assert code == 0, report
    for check in (
        "InstanceLinked",
        "RuntimeAvailable",
        "DomainVerified",
        "CertificateReady",
        "Ready",
        "PortalInstance",
        "Reachable",
        "Endpoints",
        f"CNAME {host}",
        f"https://{target}",
        f"https://{host}",
        f"TLS {target}",
        f"TLS {host}",
    ):
        assert checks[check]["result"] == "pass", checks[check]
    assert "status.certificate" in checks[f"TLS {host}"]["message"]
    assert sorted(ingress.hosts) == sorted([target, host])
    # The runtime's counters: kwok's pods serve nothing, so the pod proxy cannot read them,
    # and the doctor says the hub's answers are unknown rather than calling them good.
    hub = checks["hub https://hub.example.net"]
    assert hub["result"] == "warning" and "could not read the runtime's counters" in hub["message"]

    # An ingress that serves another certificate for the host, and 503s although Ready.
    other_key, other_leaf, _ = make_leaf(host)
    wrong = {target: (default_key, default_leaf), host: (other_key, other_leaf)}
    with running_ingress(wrong, answer=503) as ingress:
        code, report = doctor(
            cluster, namespace, "site", nameserver, f"--ingress-address={ingress.address}"
        )
    checks = by_check(report)
    assert code == 1 and report["result"] == "error"
    certificate = checks[f"TLS {host}"]
    assert certificate["result"] == "error"
    assert "not the certificate Portico bound" in certificate["message"]
    assert "ingress controller" in certificate["fix"]
    routing = checks[f"https://{host}"]
    assert routing["category"] == "Routing" and routing["result"] == "error"
    assert "503" in routing["message"]

    # The record now points elsewhere: the doctor's own lookup finds it at once.
    dns.set_zone(zone, ["www CNAME elsewhere", "elsewhere A 192.0.2.10"])
    with running_ingress(good) as ingress:
        code, report = doctor(
            cluster, namespace, "site", nameserver, f"--ingress-address={ingress.address}"
        )
    found = by_check(report)[f"CNAME {host}"]
    assert code == 1 and found["result"] == "error", found
    assert f"elsewhere.{zone}" in found["message"]
    assert found["fix"] == f"Change the CNAME record for {host} to {target}"


def test_doctor_finds_a_missing_instance_and_its_warning_event(
    cluster: Cluster, namespace: str
) -> None:
    cluster.apply(portal("lost", namespace, "no-such-instance"))
    cluster.wait_phase(namespace, "lost", "Failed", "InstanceNotFound")
    done = subprocess.run(
        [PORTICO, "doctor", "lost", "-n", namespace],
        env={**os.environ, "KUBECONFIG": str(cluster.plane.kubeconfig)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    table = done.stdout
    assert "InstanceLinked" in table and "ERROR" in table
    assert "fix: Create the PortalInstance named in spec.instanceRef" in table
    code, report = doctor(cluster, namespace, "lost")
    assert code == 1
    checks = by_check(report)
    assert checks["InstanceLinked"]["result"] == "error"
    # Its runtime is withdrawn for the missing instance: no second error for the endpoints.
    assert checks["Endpoints"]["result"] == "pass"
    assert checks["PortalInstance"]["message"] == "PortalInstance no-such-instance does not exist"
    events = [c for c in report["checks"] if c["category"] == "Events"]
    assert any(
        c["result"] == "warning" and c["message"].startswith("InstanceNotFound") for c in events
    ), events


def test_kubectl_portico_runs_doctor_and_status_as_a_kubectl_plugin(
    cluster: Cluster, namespace: str
) -> None:
    cluster.apply(portal("plug", namespace, "no-such-instance"))
    cluster.wait_phase(namespace, "plug", "Failed", "InstanceNotFound")
    plugin_dir = Path(sys.executable).parent
    assert (plugin_dir / "kubectl-portico").is_file()
    env = {
        **os.environ,
        "KUBECONFIG": str(cluster.plane.kubeconfig),
        "PATH": f"{plugin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    kubectl = str(cluster.plane.bins["kubectl"])

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [kubectl, *args], env=env, capture_output=True, text=True, timeout=120
        )

    listed = run("plugin", "list")
    assert "kubectl-portico" in listed.stdout, listed.stdout + listed.stderr
    status = run("portico", "status", "plug", "-n", namespace, "-o", "json")
    assert status.returncode == 0, status.stderr
    view = json.loads(status.stdout)
    assert view["portal"] == f"{namespace}/plug" and view["phase"] == "Failed"
    assert any(c["reason"] == "InstanceNotFound" for c in view["conditions"])
    as_yaml = run("portico", "status", "plug", "-n", namespace, "-o", "yaml")
    assert as_yaml.returncode == 0 and "phase: Failed" in as_yaml.stdout
    checked = run("portico", "doctor", "plug", "-n", namespace, "-o", "json")
    assert checked.returncode == 1, checked.stderr
    assert json.loads(checked.stdout)["result"] == "error"
    restarted = run("portico", "restart", "plug", "-n", namespace, "--recheck")
    assert restarted.returncode == 0 and "re-check requested" in restarted.stdout
    annotations = cluster.portal(namespace, "plug")["metadata"].get("annotations") or {}
    assert "portico.dev/reconcile-requested-at" in annotations
    planned = run("portico", "plan", "--help")
    assert planned.returncode == 0 and "Usage" in planned.stdout
    # The namespace comes from the kubeconfig's context when -n is not given, as in kubectl.
    cluster.plane.kubectl("config", "set-context", "--current", f"--namespace={namespace}")
    try:
        bare = run("portico", "status", "plug", "-o", "json")
    finally:
        cluster.plane.kubectl("config", "set-context", "--current", "--namespace=")
    assert bare.returncode == 0 and json.loads(bare.stdout)["phase"] == "Failed", bare.stderr
