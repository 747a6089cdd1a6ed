"""The operator on the real control plane: lifecycle, restarts, references, claims, drift."""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path
from typing import Any

from tests.support.controlplane import BASE_DOMAIN, PORTICO, Cluster, Operator, wait_for
from tests.support.portals import examples, install_project_service, portal, secret

ROOT = Path(__file__).resolve().parents[2]


def test_every_example_reaches_ready(cluster: Cluster, namespace: str, instance: str) -> None:
    install_project_service(cluster, instance)
    docs = examples(namespace, instance)
    names = [doc["metadata"]["name"] for doc in docs]
    cluster.apply(*docs)
    cluster.apply(
        secret("contoso-insights", namespace, sharedKey="k1"),
        secret("contoso-oidc", namespace, clientSecret="s1"),
    )
    for name in names:
        obj = cluster.wait_phase(namespace, name, "Ready", timeout=120)
        status = obj["status"]
        assert status["url"] == f"https://{obj['spec']['subdomain']}.{BASE_DOMAIN}"
        assert status["provisioning"]["state"] == "Succeeded"
        for c in status["conditions"]:
            assert c["status"] == "True", c
            assert c["observedGeneration"] == obj["metadata"]["generation"]
    full = cluster.portal(namespace, "contoso-support")
    types = {c["type"] for c in full["status"]["conditions"]}
    assert {"AnalyticsConfigured", "TranslationsImported", "RuntimeAvailable"} <= types
    kinds = {
        (c["kind"], c["metadata"]["name"]) for c in _children(cluster, namespace, "contoso-support")
    }
    assert {
        ("ConfigMap", "contoso-support-config"),
        ("Deployment", "contoso-support"),
        ("Service", "contoso-support"),
        ("Ingress", "contoso-support"),
        ("Job", "contoso-support-provision-1"),
        ("Secret", "contoso-support-instance"),
        ("Job", "contoso-support-translations-1"),
    } <= kinds


def _children(cluster: Cluster, namespace: str, name: str) -> list[dict[str, Any]]:
    out = []
    for kind in ("configmaps", "secrets", "deployments", "services", "ingresses", "jobs"):
        for item in cluster.items(kind, namespace, f"portico.dev/portal={name}"):
            item.setdefault("kind", kind)
            out.append(item)
    kinds = {
        "configmaps": "ConfigMap",
        "secrets": "Secret",
        "deployments": "Deployment",
        "services": "Service",
        "ingresses": "Ingress",
        "jobs": "Job",
    }
    for item in out:
        item["kind"] = kinds.get(item["kind"], item["kind"])
    return out


def test_install_failure_then_restart(cluster: Cluster, namespace: str, instance: str) -> None:
    # The dev cluster's kwok stages fail the first provisioning attempt of fail-once-* portals.
    cluster.apply(portal("fail-once-a", namespace, instance))
    failed = cluster.wait_phase(namespace, "fail-once-a", "Failed", "InstallFailed")
    message = cluster.condition(failed, "SolutionsInstalled")["message"]
    assert "fail-once-a-provision-1" in message and "BackoffLimitExceeded" in message
    reasons = [e["reason"] for e in cluster.events(namespace, "fail-once-a")]
    assert "InstallFailed" in reasons
    cluster.plane.kubectl(
        "annotate", "portal", "fail-once-a", "-n", namespace, "portico.dev/restart=first"
    )
    ready = cluster.wait_phase(namespace, "fail-once-a", "Ready")
    assert ready["status"]["provisioning"]["attempt"] == 2
    assert ready["status"]["lastHandledRestart"] == "first"
    # The same value again does nothing.
    cluster.plane.kubectl(
        "annotate",
        "--overwrite",
        "portal",
        "fail-once-a",
        "-n",
        namespace,
        "portico.dev/restart=first",
    )
    cluster.plane.kubectl(
        "annotate",
        "portal",
        "fail-once-a",
        "-n",
        namespace,
        "portico.dev/reconcile-requested-at=now",
    )
    wait_for(
        "the re-check to be echoed",
        lambda: (
            cluster.portal(namespace, "fail-once-a")["status"].get("lastHandledReconcileAt")
            == "now"
        ),
    )
    assert cluster.portal(namespace, "fail-once-a")["status"]["provisioning"]["attempt"] == 2
    jobs = [j["metadata"]["name"] for j in cluster.items("jobs", namespace)]
    assert jobs == ["fail-once-a-provision-2"], "the failed attempt's Job is pruned"


def test_spec_edit_from_failed_starts_a_new_attempt(
    cluster: Cluster, namespace: str, instance: str
) -> None:
    cluster.apply(portal("fail-once-b", namespace, instance))
    cluster.wait_phase(namespace, "fail-once-b", "Failed", "InstallFailed")
    cluster.apply(portal("fail-once-b", namespace, instance, displayName="Fixed"))
    ready = cluster.wait_phase(namespace, "fail-once-b", "Ready")
    assert ready["status"]["provisioning"]["attempt"] == 2
    assert ready["status"]["provisioning"]["generation"] == ready["metadata"]["generation"]


def test_reference_problems_name_the_fix(cluster: Cluster, namespace: str, instance: str) -> None:
    cluster.apply(
        portal("no-instance", namespace, "no-such-instance"),
        portal("bad-language", namespace, instance, language="it-IT"),
        portal("bad-admin", namespace, instance, administrator="eve@example.com"),
    )
    for name, reason, words in (
        ("no-instance", "InstanceNotFound", "no-such-instance"),
        ("bad-language", "LanguageNotInstalled", "it-IT"),
        ("bad-admin", "AdministratorNotAllowed", "eve@example.com"),
    ):
        obj = cluster.wait_phase(namespace, name, "Failed", reason)
        assert words in cluster.condition(obj, "Ready")["message"]
        assert reason in [e["reason"] for e in cluster.events(namespace, name)]
        children = {(c["kind"], c["metadata"]["name"]) for c in _children(cluster, namespace, name)}
        # Nothing was ever made, and nothing is made while a person must act; a portal
        # without an instance holds no name either: no routing, no page on the shared domain.
        assert children == set(), children


def test_prerequisite_arrives_on_the_instance(
    cluster: Cluster, namespace: str, instance: str
) -> None:
    cluster.apply(
        portal(
            "projects", namespace, instance, audience="Partner", template="PartnerProjectService"
        )
    )
    failed = cluster.wait_phase(namespace, "projects", "Failed", "PrerequisiteMissing")
    assert "ProjectService" in cluster.condition(failed, "SolutionsInstalled")["message"]
    generation = failed["metadata"]["generation"]
    install_project_service(cluster, instance)
    ready = cluster.wait_phase(namespace, "projects", "Ready")
    assert ready["metadata"]["generation"] == generation, "nobody touched the portal"


def test_subdomain_claim_and_release(
    cluster: Cluster, namespace: str, other_namespace: str, instance: str
) -> None:
    cluster.apply(portal("first", namespace, instance, subdomain=f"shared-{namespace}"))
    cluster.wait_phase(namespace, "first", "Ready")
    cluster.apply(portal("second", other_namespace, instance, subdomain=f"shared-{namespace}"))
    taken = cluster.wait_phase(other_namespace, "second", "Failed", "SubdomainTaken")
    assert f"{namespace}/first" in cluster.condition(taken, "Ready")["message"]
    cluster.plane.kubectl("delete", "portal", "first", "-n", namespace)

    # A release is not a gift: the name stays reserved for the deleted holder's namespace
    # (claimGraceSeconds, 24 h here), and the waiting portal says until when. Taking it
    # once that ends: tests/unit/test_claims_entitlement.py.
    def reserved() -> dict[str, Any] | None:
        obj = cluster.portal(other_namespace, "second")
        message = str(cluster.condition(obj, "Ready").get("message", ""))
        return obj if "reserved for that namespace until" in message else None

    obj = wait_for("the contender to wait for the reservation", reserved)
    assert obj["status"]["phase"] == "Failed"


def test_children_are_restored_and_collected(
    cluster: Cluster, namespace: str, instance: str
) -> None:
    cluster.apply(portal("drift", namespace, instance))
    cluster.wait_phase(namespace, "drift", "Ready")
    before = cluster.get("configmap", "drift-config", namespace)
    assert before is not None
    cluster.plane.kubectl("delete", "service", "drift", "-n", namespace)
    cluster.plane.kubectl(
        "patch",
        "configmap",
        "drift-config",
        "-n",
        namespace,
        "--type=merge",
        "-p",
        '{"data": {"portal.json": "{}"}}',
    )
    wait_for("the Service to come back", lambda: cluster.get("service", "drift", namespace))
    wait_for(
        "the ConfigMap to be restored",
        lambda: (
            (cluster.get("configmap", "drift-config", namespace) or {}).get("data")
            == before["data"]
        ),
    )
    cluster.plane.kubectl("delete", "portal", "drift", "-n", namespace)
    wait_for(
        "every child to be garbage-collected",
        lambda: _children(cluster, namespace, "drift") == [],
        timeout=60,
    )


def test_translations_import_and_refresh(cluster: Cluster, namespace: str, instance: str) -> None:
    cluster.apply(portal("lang", namespace, instance, additionalLanguages=["de-DE"]))
    ready = cluster.wait_phase(namespace, "lang", "Ready")
    assert ready["status"]["translations"]["imported"] == ["de-DE"]
    job = cluster.get("job", "lang-translations-1", namespace)
    assert job is not None
    assert job["spec"]["template"]["spec"]["containers"][0]["args"] == [
        "import-translations",
        "de-DE",
    ]
    cluster.plane.kubectl(
        "annotate", "portal", "lang", "-n", namespace, "portico.dev/refresh-translations=again"
    )
    wait_for(
        "a second translations run",
        lambda: (
            cluster.portal(namespace, "lang")["status"]["translations"].get("refresh") == "again"
        ),
    )
    cluster.wait_phase(namespace, "lang", "Ready")
    assert cluster.portal(namespace, "lang")["status"]["translations"]["run"] == 2


def test_analytics_secret_missing_rotated_and_removed(
    cluster: Cluster, namespace: str, instance: str
) -> None:
    insights = {
        "customerInsights": {
            "hubUri": "https://hub.example.net",
            "policyName": "writer",
            "sharedKeySecretRef": {"name": "hub-key", "key": "sharedKey"},
        }
    }
    cluster.apply(portal("hub", namespace, instance, analytics=insights))
    missing = cluster.wait_phase(namespace, "hub", "Failed", "SecretNotFound")
    assert "hub-key" in cluster.condition(missing, "AnalyticsConfigured")["message"]
    cluster.apply(secret("hub-key", namespace, sharedKey="first-key-value"))
    cluster.wait_phase(namespace, "hub", "Ready")

    def rollout() -> str:
        dep = cluster.get("deployment", "hub", namespace) or {}
        return str(
            dep["spec"]["template"]["metadata"]["annotations"]["portico.dev/secrets-checksum"]
        )

    before = rollout()
    cluster.apply(secret("hub-key", namespace, sharedKey="second-key-value"))
    wait_for("the Deployment to roll for the rotated key", lambda: rollout() != before)
    config = cluster.get("configmap", "hub-config", namespace) or {}
    assert "second-key-value" not in str(config) and "first-key-value" not in str(config)
    cluster.plane.kubectl(
        "patch",
        "portal",
        "hub",
        "-n",
        namespace,
        "--type=json",
        "-p",
        '[{"op": "remove", "path": "/spec/analytics"}]',
    )
    ready = cluster.wait_phase(namespace, "hub", "Ready")
    assert not cluster.condition(ready, "AnalyticsConfigured")
    config = cluster.get("configmap", "hub-config", namespace) or {}
    assert '"customerInsights"' not in config["data"]["portal.json"]


def test_paused_changes_nothing(cluster: Cluster, namespace: str, instance: str) -> None:
    cluster.apply(portal("still", namespace, instance))
    cluster.wait_phase(namespace, "still", "Ready")
    cluster.apply(portal("still", namespace, instance, paused=True, displayName="Changed"))
    cluster.wait_phase(namespace, "still", "Paused")
    config = cluster.get("configmap", "still-config", namespace) or {}
    assert "Changed" not in config["data"]["portal.json"]
    cluster.apply(portal("still", namespace, instance, paused=False, displayName="Changed"))
    cluster.wait_phase(namespace, "still", "Ready")
    config = cluster.get("configmap", "still-config", namespace) or {}
    assert "Changed" in config["data"]["portal.json"]


def test_kubectl_wait_and_columns(cluster: Cluster, namespace: str, instance: str) -> None:
    cluster.apply(portal("waited", namespace, instance))
    cluster.plane.kubectl(
        "wait",
        "--for=condition=Ready",
        "portal/waited",
        "-n",
        namespace,
        "--timeout=90s",
        timeout=120,
    )
    table = cluster.plane.kubectl("get", "portals", "-n", namespace, "-o", "wide").stdout
    header, row = table.splitlines()[:2]
    assert header.split() == [
        "NAME", "PHASE", "URL", "TYPE", "TEMPLATE", "AGE", "REASON", "STATE", "MAINTENANCE",
    ]  # fmt: skip
    assert row.split()[:2] == ["waited", "Ready"]
    assert row.split()[-1] == "Running"  # no maintenance block: that column is empty


def test_instance_status_counts_portals(cluster: Cluster, namespace: str, instance: str) -> None:
    cluster.apply(portal("one", namespace, instance), portal("two", namespace, instance))
    wait_for(
        "the instance to count 2 portals",
        lambda: (
            (cluster.get("portalinstance", instance) or {}).get("status", {}).get("portalCount")
            == 2
        ),
    )
    obj = cluster.get("portalinstance", instance) or {}
    assert cluster.condition(obj, "Ready")["status"] == "True"


def test_no_secret_in_logs_or_events(
    cluster: Cluster, namespace: str, instance: str, operator: Any
) -> None:
    value = "do-not-log-this-oidc-secret"
    cluster.apply(secret("idp", namespace, clientSecret=value))
    idp = [
        {
            "name": "corp",
            "issuer": "https://login.example",
            "clientId": "c",
            "clientSecretRef": {"name": "idp", "key": "clientSecret"},
        }
    ]
    cluster.apply(portal("quiet", namespace, instance, authentication={"identityProviders": idp}))
    cluster.wait_phase(namespace, "quiet", "Ready")
    assert value not in operator.log_text()
    assert value not in str(cluster.events(namespace, "quiet"))
    assert value not in str(cluster.portal(namespace, "quiet")["status"])
    encoded = base64.b64encode(value.encode()).decode()
    assert encoded not in operator.log_text()


def test_trial_expires_and_conversion_reactivates(
    cluster: Cluster, namespace: str, instance: str, operator: Any, tmp_path: Path
) -> None:
    # A trial of about 20 seconds needs an operator of its own (the shared one keeps 30 days).
    operator.stop()
    short = Operator(
        cluster.plane,
        operator.kubeconfig,
        tmp_path,
        PORTICO_TRIAL_DAYS="0.00012",
        PORTICO_WATCH_NAMESPACES=namespace,
    )
    try:
        short.start()
        cluster.apply(portal("trial", namespace, instance, runtime={"replicas": 1}))
        ready = cluster.wait_phase(namespace, "trial", "Ready")
        assert ready["status"]["trialExpiresAt"]
        cluster.wait_phase(namespace, "trial", "Expired", timeout=60)
        wait_for(
            "the runtime to scale to zero",
            lambda: (
                (cluster.get("deployment", "trial", namespace) or {})
                .get("spec", {})
                .get("replicas")
                == 0
            ),
        )
        assert "TrialExpired" in [e["reason"] for e in cluster.events(namespace, "trial")]
        cluster.plane.kubectl(
            "patch",
            "portal",
            "trial",
            "-n",
            namespace,
            "--type=merge",
            "-p",
            '{"spec": {"type": "Production"}}',
        )
        converted = cluster.wait_phase(namespace, "trial", "Ready")
        assert "trialExpiresAt" not in converted["status"]
        assert (cluster.get("deployment", "trial", namespace) or {})["spec"]["replicas"] == 1
    finally:
        short.stop()
        operator.start()


def test_portico_restart_and_status_commands(
    cluster: Cluster, namespace: str, instance: str
) -> None:
    cluster.apply(portal("cli", namespace, instance))
    cluster.wait_phase(namespace, "cli", "Ready")
    kubeconfig = str(cluster.plane.kubeconfig)
    restart = subprocess.run(
        [PORTICO, "restart", "cli", "-n", namespace, "--kubeconfig", kubeconfig],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "restart requested" in restart.stdout
    wait_for(
        "attempt 2",
        lambda: cluster.portal(namespace, "cli")["status"]["provisioning"]["attempt"] == 2,
    )
    ready = cluster.wait_phase(namespace, "cli", "Ready")
    assert (
        ready["status"]["lastHandledRestart"]
        == ready["metadata"]["annotations"]["portico.dev/restart"]
    )
    status = subprocess.run(
        [PORTICO, "status", "cli", "-n", namespace, "--kubeconfig", kubeconfig],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert f"Portal {namespace}/cli: Ready" in status
    assert "Attempt:   2 (Succeeded, Job cli-provision-2)" in status
    assert "Deployment   cli" in status and "ProvisioningStarted" in status
    missing = subprocess.run(
        [PORTICO, "status", "nope", "-n", namespace, "--kubeconfig", kubeconfig],
        capture_output=True,
        text=True,
        check=False,
    )
    assert missing.returncode == 1 and "not found" in missing.stderr
