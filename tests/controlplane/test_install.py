"""The Helm chart on the real control plane (issue 6).

- `helm install` the chart, then run `portico run` with a token of the CHART's
  ServiceAccount (never the admin kubeconfig) and the environment the chart gave
  its Deployment: a portal with a custom domain and a .pfx goes to Ready, a failed
  install is reported in the Job's own words, and deletion collects every child.
  Cluster-wide and namespaced mode. This proves the chart's role is sufficient.
- Requests outside the role are denied.
- Pod Security `restricted` admits the operator's pod and the portals' pods.
- Server-side apply under a GitOps field manager: the operator never owns a spec
  field, and a re-apply is a no-op.
- The chart's Argo CD health checks over the real objects.

The session's cluster-admin operator is stopped while a chart-credentialed one
runs, so two operators never reconcile the same portals.
"""

from __future__ import annotations

import base64
import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from portico_dev import ControlPlane
from tests.support.argocd import health
from tests.support.certs import custom, make_pfx, ownership_record, pfx_secret
from tests.support.chart import (
    DENIED,
    RESTRICTED,
    audit,
    chart_values,
    children,
    describe,
    exclusive,
    installed,
    now,
    running,
    stable_resource_version,
)
from tests.support.controlplane import BASE_DOMAIN, OPERATOR_NAMESPACE, Cluster, Operator, wait_for
from tests.support.dnsserver import AuthoritativeDNS
from tests.support.portals import portal

ROOT = Path(__file__).resolve().parents[2]
GITOPS_MANAGER = "argocd-controller"


def typed(obj: dict[str, Any], kind: str) -> dict[str, Any]:
    """List items carry no kind; the health checks are keyed on it."""
    return {**obj, "kind": kind, "apiVersion": "portico.dev/v1alpha1"}


def argo(cluster: Cluster, kind: str, name: str, namespace: str | None = None) -> dict[str, str]:
    obj = cluster.get(kind.lower(), name, namespace)
    assert obj is not None, f"{kind} {name} is gone"
    return health(typed(obj, kind))


def custom_domain_portal_lifecycle(
    cluster: Cluster, namespace: str, instance: str, dns: AuthoritativeDNS, op: Operator
) -> None:
    """A Production portal with a custom domain and a .pfx to Ready; a failed install;
    deletion. Everything the operator does here it does with OP's credentials."""
    zone, host = f"{namespace}.test", f"www.{namespace}.test"
    subdomain = f"site-{namespace}"[:63].rstrip("-")
    target = f"{subdomain}.{BASE_DOMAIN}"
    password = "chart-pfx-password-3"
    data, fingerprint = make_pfx(host, password)
    dns.set_zone(zone, [])
    cluster.apply(pfx_secret("site-pfx", namespace, data, password))
    cluster.apply(
        portal(
            "site",
            namespace,
            instance,
            subdomain=subdomain,
            type="Production",
            additionalLanguages=["de-DE"],
            customDomain=custom(host),
        )
    )
    waiting = cluster.wait_phase(namespace, "site", "Configuring", "CNAMEMissing")
    assert health(typed(waiting, "Portal"))["status"] == "Progressing"
    # The owner adds both records (the chart requires the ownership TXT by default).
    dns.set_zone(zone, [f"www CNAME {target}.", ownership_record(cluster, namespace, "site")])
    ready = cluster.wait_phase(namespace, "site", "Ready", timeout=120)
    status = ready["status"]
    assert status["customDomainUrl"] == f"https://{host}"
    assert status["certificate"]["sha256Fingerprint"].replace(":", "").lower() == fingerprint
    assert status["translations"]["imported"] == ["de-DE"]
    tls = cluster.get("secret", "site-tls", namespace)
    assert tls is not None and tls["type"] == "kubernetes.io/tls"
    assert b"BEGIN PRIVATE KEY" in base64.b64decode(tls["data"]["tls.key"])
    ingress = cluster.get("ingress", "site", namespace) or {}
    assert {"hosts": [host], "secretName": "site-tls"} in ingress["spec"]["tls"]
    assert health(typed(ready, "Portal")) == {"status": "Healthy", "message": status["url"]}
    assert argo(cluster, "PortalInstance", instance)["status"] == "Healthy"
    # The operator's credentials cannot change a Portal's spec (nor its metadata).
    for body in ('{"spec": {"displayName": "changed"}}', '{"metadata": {"labels": {"a": "b"}}}'):
        denied(
            cluster.plane, op.kubeconfig, "patch", "portal", "site", "-n", namespace,
            "--type=merge", "-p", body, "--dry-run=server",
        )  # fmt: skip

    # A failed install: the message quotes the Job's pod (pods get/list in the role).
    cluster.apply(portal("fail-once-site", namespace, instance))
    failed = cluster.wait_phase(namespace, "fail-once-site", "Failed", "InstallFailed")
    message = cluster.condition(failed, "SolutionsInstalled")["message"]
    assert "the backing service refused the solution package" in message, message
    degraded = health(typed(failed, "Portal"))
    assert degraded["status"] == "Degraded" and degraded["message"].startswith("InstallFailed: ")
    cluster.plane.kubectl(
        "annotate", "portal", "fail-once-site", "-n", namespace, "portico.dev/restart=1"
    )
    cluster.wait_phase(namespace, "fail-once-site", "Ready")

    # Deletion: the garbage collector takes every child (and the Jobs' pods).
    before = children(cluster, namespace, "site")
    for expected in ("deployments/site", "ingresses/site", "secrets/site-tls", "jobs/site-"):
        assert any(c.startswith(expected) for c in before), (expected, before)
    cluster.plane.kubectl("delete", "portal", "site", "fail-once-site", "-n", namespace)
    for name in ("site", "fail-once-site"):
        wait_for(
            f"every child of {name} to be garbage-collected",
            lambda name=name: children(cluster, namespace, name) == [],  # type: ignore[misc]
            timeout=90,
        )
    assert cluster.get("secret", "site-pfx", namespace) is not None, "the user's Secret stays"


def denied(plane: ControlPlane, kubeconfig: Path, *args: str) -> str:
    """Run kubectl as the chart's account; it must be refused by RBAC."""
    result = plane.kubectl(*args, check=False, kubeconfig_path=kubeconfig)
    assert result.returncode != 0, f"kubectl {' '.join(args)} was allowed: {result.stdout}"
    assert "forbidden" in result.stderr.lower(), result.stderr
    return result.stderr


def can_i(plane: ControlPlane, kubeconfig: Path, *args: str) -> bool:
    result = plane.kubectl("auth", "can-i", *args, check=False, kubeconfig_path=kubeconfig)
    return result.stdout.strip() == "yes"


def check_denials(plane: ControlPlane, kubeconfig: Path, namespaced: str | None) -> None:
    """Requests outside the role. NAMESPACED: the one watched namespace, in namespaced mode."""
    # `kubectl auth can-i` reads RESOURCE/NAME, so subresources go in their own flag.
    for verb, resource, subresource in (
        ("create", "clusterroles", ""),
        ("create", "clusterrolebindings", ""),
        ("bind", "clusterroles", ""),
        ("escalate", "clusterroles", ""),
        ("impersonate", "serviceaccounts", ""),
        ("create", "pods", ""),
        ("delete", "pods", ""),
        ("create", "pods", "exec"),
        ("get", "pods", "log"),
        ("create", "serviceaccounts", "token"),
        ("delete", "nodes", ""),
        ("delete", "namespaces", ""),
        ("update", "portals.portico.dev", ""),
        ("patch", "portals.portico.dev", ""),
        ("update", "portals.portico.dev", "status"),
        ("patch", "portalinstances.portico.dev", ""),
        ("create", "portals.portico.dev", ""),
        ("delete", "portals.portico.dev", ""),
        ("create", "customresourcedefinitions.apiextensions.k8s.io", ""),
    ):
        flags = [f"--subresource={subresource}"] if subresource else []
        allowed = can_i(plane, kubeconfig, verb, resource, *flags, "-A")
        assert not allowed, f"{verb} {resource} {subresource}"
    where = ["-n", namespaced] if namespaced else ["-A"]
    assert can_i(plane, kubeconfig, "patch", "portals.portico.dev", "--subresource=status", *where)
    # Real requests, refused on the wire (server-side dry run: nothing changes if allowed).
    denied(plane, kubeconfig, "delete", "node", "kwok-node-0", "--dry-run=server")
    denied(plane, kubeconfig, "create", "clusterrole", "x", "--verb=get", "--resource=pods")
    denied(plane, kubeconfig, "get", "nodes")
    denied(
        plane, kubeconfig, "run", "intruder", "-n", OPERATOR_NAMESPACE,
        "--image=busybox", "--dry-run=server",
    )  # fmt: skip
    if namespaced:
        # Outside the watched namespace: no pods, no Secrets, no portals, no Deployments.
        denied(plane, kubeconfig, "get", "pods", "-n", "kube-system")
        denied(plane, kubeconfig, "get", "secrets", "-n", "kube-system")
        denied(plane, kubeconfig, "get", "configmaps", "-n", "default")
        denied(plane, kubeconfig, "get", "portals", "-A")
        denied(plane, kubeconfig, "get", "deployments", "-n", OPERATOR_NAMESPACE)
        # The instance credentials namespace: get by name, nothing else.
        assert can_i(plane, kubeconfig, "get", "secrets", "-n", OPERATOR_NAMESPACE)
        denied(plane, kubeconfig, "get", "secrets", "-n", OPERATOR_NAMESPACE)
        denied(
            plane, kubeconfig, "create", "secret", "generic", "x", "-n", OPERATOR_NAMESPACE,
            "--dry-run=server",
        )  # fmt: skip
        assert can_i(plane, kubeconfig, "list", "pods", "-n", namespaced)
    else:
        assert can_i(plane, kubeconfig, "list", "pods", "-n", "kube-system")


# --- 1, 2: the chart's ServiceAccount is enough, and no more --------------------------------


@pytest.mark.parametrize("mode", ["cluster-wide", "namespaced"])
def test_chart_account_runs_a_custom_domain_portal_through_its_life(
    mode: str,
    cluster: Cluster,
    namespace: str,
    instance: str,
    dns: AuthoritativeDNS,
    operator: Operator,
    tmp_path: Path,
) -> None:
    plane = cluster.plane
    plane.kubectl("label", "namespace", namespace, RESTRICTED)
    # The instance's credentials live in the shared operator's namespace, not the release's.
    extra: dict[str, Any] = {"instanceCredentialsNamespaces": [OPERATOR_NAMESPACE]}
    if mode == "namespaced":
        extra["watchNamespaces"] = [namespace]  # as ci/namespaced-values.yaml
    prefix = "portico-cw" if mode == "cluster-wide" else "portico-ns"
    with installed(plane, chart_values(dns, **extra), tmp_path, prefix) as release:
        # The chart's own operator pod was admitted under Pod Security restricted
        # (kwok runs it as a stand-in) and never gets to do anything.
        assert release.deployment()["status"].get("readyReplicas") == 1
        env = release.operator_env()
        assert env["PORTICO_WATCH_NAMESPACES"] == (namespace if mode == "namespaced" else "")
        kubeconfig = release.kubeconfig()
        (user,) = yaml.safe_load(kubeconfig.read_text())["users"]
        assert set(user["user"]) == {"token"}, "a bound token, not the admin certificate"
        check_denials(plane, kubeconfig, namespace if mode == "namespaced" else None)

        since = now()
        op = Operator(plane, kubeconfig, tmp_path, **env)
        with exclusive(operator), running(op):
            custom_domain_portal_lifecycle(cluster, namespace, instance, dns, op)
        log = op.log_text()
        refusals = [line for line in log.splitlines() if DENIED.search(line)]
        assert refusals == [], "\n".join(refusals[:20])

        writes = audit(plane, release.user, since)
        assert writes, "the chart's account made no writes?"
        forbidden = [
            describe(w)
            for w in writes
            if (w.get("annotations") or {}).get("authorization.k8s.io/decision") != "allow"
        ]
        assert forbidden == [], forbidden
        made = sorted({describe(w) for w in writes})
        print(f"\n{mode}: writes by {release.user}: {made}")
        # The operator writes a Portal's status subresource, never the Portal itself.
        portal_writes = [m for m in made if re.search(r" portico\.dev/portals\b", m)]
        assert portal_writes == ["patch portico.dev/portals/status"], portal_writes
        if mode == "namespaced":
            # Nothing outside the watched namespace (cluster-scoped status aside), but the
            # operator's own objects in its own namespace (the claim reservations).
            touched = {(w.get("objectRef") or {}).get("namespace") for w in writes}
            spread = touched - {namespace, None}
            assert spread <= {release.namespace}, spread
            own = {
                f"{w['objectRef'].get('resource')}/{w['objectRef'].get('name')}"
                for w in writes
                if (w.get("objectRef") or {}).get("namespace") == release.namespace
            }
            assert all(
                o == "configmaps/portico-reservations" or o.startswith("leases/") for o in own
            ), own


# --- 3: Pod Security restricted admits the portals' pods ------------------------------------


def test_restricted_namespace_admits_runtime_and_job_pods(
    cluster: Cluster, namespace: str, instance: str
) -> None:
    plane = cluster.plane
    plane.kubectl("label", "namespace", namespace, RESTRICTED)
    # Enforcement is on: a pod without the restricted settings is refused.
    rogue = plane.kubectl(
        "run", "rogue", "-n", namespace, "--image=busybox", "--dry-run=server", check=False
    )
    assert rogue.returncode != 0 and "violates PodSecurity" in rogue.stderr, rogue.stderr
    cluster.apply(
        portal(
            "strict",
            namespace,
            instance,
            type="Production",
            runtime={"replicas": 2},
            additionalLanguages=["de-DE", "fr-FR"],
        )
    )
    cluster.wait_phase(namespace, "strict", "Ready", timeout=120)
    pods = cluster.items("pods", namespace, "portico.dev/portal=strict")
    owners = sorted(
        (
            p["metadata"]["ownerReferences"][0]["kind"],
            p["metadata"]["labels"].get("app.kubernetes.io/component", ""),
        )
        for p in pods
    )
    assert owners.count(("ReplicaSet", "runtime")) == 2, owners
    assert ("Job", "provisioning") in owners and ("Job", "translations") in owners, owners
    for pod in pods:
        spec = pod["spec"]
        assert spec["securityContext"]["runAsNonRoot"] is True, pod["metadata"]["name"]
        assert spec.get("automountServiceAccountToken") is False, pod["metadata"]["name"]
    # No controller was refused a pod.
    refused = [
        f"{e['involvedObject']['kind']}/{e['involvedObject']['name']}: {e['message']}"
        for e in cluster.items("events", namespace)
        if e.get("reason") == "FailedCreate"
    ]
    assert refused == [], refused
    for kind in ("replicasets", "jobs"):
        assert cluster.items(kind, namespace, "portico.dev/portal=strict")


# --- 4: GitOps field ownership -----------------------------------------------------------


def leaves(value: Any, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Paths of every leaf field of VALUE (lists of scalars count as one leaf, as in SSA)."""
    if isinstance(value, dict) and value:
        for key, item in value.items():
            yield from leaves(item, (*prefix, key))
    elif isinstance(value, list) and any(isinstance(i, dict) for i in value):
        yield prefix  # associative lists: ownership is per item; the list is enough here
    else:
        yield prefix


def owns(fields: dict[str, Any], path: tuple[str, ...]) -> bool:
    node: Any = fields
    for key in path:
        node = node.get(f"f:{key}") if isinstance(node, dict) else None
        if node is None:
            return False
    return True


def test_gitops_manager_keeps_the_spec_and_reapply_is_a_no_op(
    cluster: Cluster, namespace: str, instance: str, operator: Operator
) -> None:
    plane = cluster.plane
    doc = portal(
        "gitops",
        namespace,
        instance,
        type="Production",
        additionalLanguages=["de-DE"],
        runtime={"replicas": 2},
        authentication={"localSignIn": True, "registration": "InvitationOnly"},
    )
    body = yaml.safe_dump(doc)

    def apply() -> str:
        return plane.kubectl(
            "apply", "--server-side", f"--field-manager={GITOPS_MANAGER}", "-f", "-", input=body
        ).stdout

    apply()
    ready = cluster.wait_phase(namespace, "gitops", "Ready", timeout=120)
    assert health(typed(ready, "Portal"))["status"] == "Healthy"
    version = stable_resource_version(cluster, namespace, "gitops")
    obj = json.loads(
        plane.kubectl(
            "get", "portal", "gitops", "-n", namespace, "-o", "json", "--show-managed-fields"
        ).stdout
    )
    managed = obj["metadata"]["managedFields"]
    (gitops,) = [m for m in managed if m["manager"] == GITOPS_MANAGER]
    assert gitops["operation"] == "Apply" and "subresource" not in gitops
    for path in leaves(doc["spec"], ("spec",)):
        assert owns(gitops["fieldsV1"], path), f"{GITOPS_MANAGER} lost {'.'.join(path)}"
    others = [m for m in managed if m["manager"] != GITOPS_MANAGER]
    assert others, "the operator wrote no status?"
    for entry in others:
        # The operator's only entry: the status subresource, with nothing but status in it.
        assert entry.get("subresource") == "status", entry
        assert set(entry["fieldsV1"]) == {"f:status"}, entry
    # Defaults filled in by the API server are nobody's; nothing else owns a spec field.
    assert not any("f:spec" in m["fieldsV1"] for m in others)

    # A re-apply of the same manifest changes nothing: no write, no new generation.
    out = apply()
    assert "serverside-applied" in out, out
    again = cluster.portal(namespace, "gitops")
    assert again["metadata"]["resourceVersion"] == version
    assert again["metadata"]["generation"] == obj["metadata"]["generation"] == 1


# --- 5: Argo CD health over real objects ---------------------------------------------------


def test_argocd_health_of_real_portals_and_instances(
    cluster: Cluster, namespace: str, instance: str, dns: AuthoritativeDNS
) -> None:
    zone = f"{namespace}.test"
    dns.set_zone(zone, [])
    data, _ = make_pfx(f"www.{zone}", "pw")
    cluster.apply(pfx_secret("site-pfx", namespace, data, "pw"))
    cluster.apply(
        portal("healthy", namespace, instance),
        portal("orphan", namespace, "no-such-instance"),
        portal("waiting", namespace, instance, customDomain=custom(f"www.{zone}")),
        portal("resting", namespace, instance, paused=True),
    )
    cluster.wait_phase(namespace, "healthy", "Ready")
    cluster.wait_phase(namespace, "orphan", "Failed", "InstanceNotFound")
    cluster.wait_phase(namespace, "waiting", "Configuring", "CNAMEMissing")
    cluster.wait_phase(namespace, "resting", "Paused")
    got = {
        name: argo(cluster, "Portal", name, namespace)
        for name in ("healthy", "orphan", "waiting", "resting")
    }
    assert got["healthy"]["status"] == "Healthy", got
    assert got["healthy"]["message"].startswith("https://healthy-"), got
    assert got["orphan"]["status"] == "Degraded", got
    assert got["orphan"]["message"].startswith("InstanceNotFound: "), got
    assert "no-such-instance" in got["orphan"]["message"], got
    assert got["waiting"]["status"] == "Progressing", got
    assert got["waiting"]["message"].startswith("CNAMEMissing: Please add a CNAME"), got
    assert got["resting"]["status"] == "Suspended", got

    assert argo(cluster, "PortalInstance", instance)["status"] == "Healthy"
    # An instance whose credentials Secret is missing needs a person: Degraded.
    broken = f"crm-broken-{uuid.uuid4().hex[:6]}"
    cluster.apply(
        {
            "apiVersion": "portico.dev/v1alpha1",
            "kind": "PortalInstance",
            "metadata": {"name": broken},
            "spec": {
                "url": "https://crm.example.net",
                "credentialsSecretRef": {"namespace": OPERATOR_NAMESPACE, "name": "missing"},
                "languages": ["en-US"],
                "administrators": ["jay@contoso.com"],
            },
        }
    )
    try:
        wait_for(
            "the broken instance's Ready condition",
            lambda: cluster.condition(cluster.get("portalinstance", broken) or {}, "Ready"),
        )
        verdict = argo(cluster, "PortalInstance", broken)
        assert verdict["status"] == "Degraded", verdict
        assert verdict["message"].startswith("CredentialsNotFound: "), verdict
    finally:
        cluster.plane.kubectl("delete", "portalinstance", broken, "--wait=false", check=False)
