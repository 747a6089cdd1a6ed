"""Static tests of charts/portico: lint, render, schemas, RBAC, Pod Security, CRDs, docs.

Helm comes from the `portico dev` binaries (KUBEBUILDER_ASSETS or the build cache).
Without it the helm tests skip with the reason, or fail when
PORTICO_REQUIRE_CONTROLPLANE=1; the pure-Python checks always run.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from portico.settings import Settings
from portico_dev import BinariesMissing
from portico_dev import binaries as devbinaries

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "portico"
CI_VALUES = sorted(CHART.glob("ci/*-values.yaml"))
RELEASE_NS = "portico-system"
SCHEMA = json.loads((CHART / "values.schema.json").read_text())
DEFAULTS = yaml.safe_load((CHART / "values.yaml").read_text())
# Kinds the Kubernetes schemas do not know; checked by the tests that render them.
CUSTOM_KINDS = {"ServiceMonitor"}
ROLE_KINDS = ("ClusterRole", "Role")
# Settings the chart derives rather than exposes as a value of the same name.
# Off in the operator (nothing to point it at), on in the chart.
CHART_ON = {"portal_network_policy", "network_policy_ingress_namespaces"}
DERIVED_SETTINGS = {
    "leader_election",
    "leader_election_namespace",
    "instance_credentials_namespaces",  # the release namespace, not a fixed default
    "host_policy",  # the host policy's name, from baseDomain
    "release",  # the release's namespace and name
}


# --- helm -------------------------------------------------------------------


@pytest.fixture(scope="module")
def helm() -> Path:
    try:
        return devbinaries.locate(("helm",))["helm"]
    except BinariesMissing as exc:
        reason = f"helm is not built: {exc}"
        if os.environ.get("PORTICO_REQUIRE_CONTROLPLANE") == "1":
            pytest.fail(f"{reason} (PORTICO_REQUIRE_CONTROLPLANE=1)", pytrace=False)
        pytest.skip(reason)


def run_helm(helm: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [str(helm), *args], capture_output=True, text=True, timeout=120, check=False
    )
    if check and proc.returncode != 0:
        pytest.fail(f"helm {' '.join(args)} failed:\n{proc.stderr}", pytrace=False)
    return proc


def render(helm: Path, *args: str, crds: bool = False) -> list[dict[str, Any]]:
    cmd = ["template", "portico", str(CHART), "--namespace", RELEASE_NS, *args]
    if crds:
        cmd.append("--include-crds")
    return [d for d in yaml.safe_load_all(run_helm(helm, *cmd).stdout) if d]


def values_args(path: Path | None) -> list[str]:
    return ["--values", str(path)] if path else []


VALUES_CASES = [None, *CI_VALUES]
VALUES_IDS = ["defaults", *(p.name.removesuffix("-values.yaml") for p in CI_VALUES)]


@pytest.fixture(scope="module", params=VALUES_CASES, ids=VALUES_IDS)
def rendered(request: pytest.FixtureRequest, helm: Path) -> list[dict[str, Any]]:
    return render(helm, *values_args(request.param), crds=True)


def kube_version() -> str:
    return devbinaries.versions()["kubernetes"].lstrip("v").rsplit(".", 1)[0] + ".0"


def pod_specs(objs: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    for obj in objs:
        spec = obj.get("spec") or {}
        if obj["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
            yield f"{obj['kind']}/{obj['metadata']['name']}", spec["template"]["spec"]
        elif obj["kind"] == "CronJob":
            yield obj["metadata"]["name"], spec["jobTemplate"]["spec"]["template"]["spec"]
        elif obj["kind"] == "Pod":
            yield obj["metadata"]["name"], spec


def component(obj: dict[str, Any]) -> str:
    return str(obj["metadata"].get("labels", {}).get("app.kubernetes.io/component", ""))


def operator_objects(objs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The operator's own objects (the page server's are `component: pages`)."""
    return [o for o in objs if component(o) != "pages"]


def deployment(objs: list[dict[str, Any]]) -> dict[str, Any]:
    (dep,) = [o for o in operator_objects(objs) if o["kind"] == "Deployment"]
    return dep


def env_of(objs: list[dict[str, Any]]) -> dict[str, str]:
    container = deployment(objs)["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e.get("value", "") for e in container["env"]}


def rules(objs: list[dict[str, Any]], pages: bool = False) -> set[tuple[str, str, frozenset[str]]]:
    """The operator's RBAC rules (PAGES: the page server's instead)."""
    out = set()
    for obj in objs:
        if (component(obj) == "pages") != pages:
            continue
        if obj["kind"] in ROLE_KINDS:
            for rule in obj["rules"]:
                for group in rule["apiGroups"]:
                    for resource in rule["resources"]:
                        out.add((group, resource, frozenset(rule["verbs"])))
    return out


# --- lint and render ---------------------------------------------------------


@pytest.mark.parametrize("values", VALUES_CASES, ids=VALUES_IDS)
def test_lint_strict(helm: Path, values: Path | None) -> None:
    proc = run_helm(helm, "lint", "--strict", str(CHART), *values_args(values), check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 chart(s) failed" in proc.stdout


def test_rendered_objects_match_kubernetes_schemas(rendered: list[dict[str, Any]]) -> None:
    version = kube_version()
    for obj in rendered:
        name = f"{obj['kind']}/{obj['metadata']['name']}"
        if obj["kind"] in CUSTOM_KINDS:
            assert obj["apiVersion"] and obj["metadata"]["name"], name
            continue
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{name} does not match the Kubernetes {version} schema: {exc.message}")


def test_schema_validation_is_strict() -> None:
    # A misspelt field must fail, or the test above proves little.
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "x"},
        "spec": {"ports": [{"port": 80, "targetPrt": "http"}]},
    }
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(service, kube_version(), strict=True)


def test_every_rendered_object_is_labelled_and_namespaced_right(
    rendered: list[dict[str, Any]],
) -> None:
    cluster_scoped = {
        "ClusterRole",
        "ClusterRoleBinding",
        "CustomResourceDefinition",
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
    }
    for obj in rendered:
        name = f"{obj['kind']}/{obj['metadata']['name']}"
        expected = "portico-pages" if component(obj) == "pages" else "portico"
        assert obj["metadata"]["labels"]["app.kubernetes.io/name"] == expected, name
        if obj["kind"] in cluster_scoped:
            assert "namespace" not in obj["metadata"], name
        else:
            assert obj["metadata"].get("namespace"), name


# --- RBAC --------------------------------------------------------------------


def test_rbac_has_no_wildcards_or_escalation(rendered: list[dict[str, Any]]) -> None:
    for obj in rendered:
        if obj["kind"] not in ROLE_KINDS:
            continue
        assert "aggregationRule" not in obj
        for rule in obj["rules"]:
            for key in ("apiGroups", "resources", "verbs", "resourceNames", "nonResourceURLs"):
                assert not any("*" in item for item in rule.get(key, [])), (obj, rule)
            assert not {"escalate", "bind", "impersonate"} & set(rule["verbs"]), rule
    for obj in rendered:
        if obj["kind"] in ("ClusterRoleBinding", "RoleBinding"):
            assert obj["roleRef"]["name"] not in ("cluster-admin", "admin", "edit"), obj


def test_bindings_name_the_charts_service_account(rendered: list[dict[str, Any]]) -> None:
    rendered = operator_objects(rendered)
    (sa,) = [o for o in rendered if o["kind"] == "ServiceAccount"]
    roles = {(o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]) for o in rendered}
    bindings = [o for o in rendered if o["kind"] in ("ClusterRoleBinding", "RoleBinding")]
    assert bindings
    for binding in bindings:
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": sa["metadata"]["name"], "namespace": RELEASE_NS}
        ]
        ref = binding["roleRef"]
        ns = binding["metadata"].get("namespace") if ref["kind"] == "Role" else None
        assert (ref["kind"], ns, ref["name"]) in roles, binding
    dep = deployment(rendered)
    assert dep["spec"]["template"]["spec"]["serviceAccountName"] == sa["metadata"]["name"]


def test_namespaced_mode_uses_roles_in_the_watched_namespaces(helm: Path) -> None:
    objs = operator_objects(render(helm, "--values", str(CHART / "ci" / "namespaced-values.yaml")))
    watched = {"team-a", "team-b"}
    (cluster_role,) = [o for o in objs if o["kind"] == "ClusterRole"]
    cluster_resources = {r for rule in cluster_role["rules"] for r in rule["resources"]}
    assert cluster_resources == {
        "portalinstances",
        "portalinstances/status",
        "namespaces",
        "customresourcedefinitions",
        "validatingadmissionpolicies",  # the host policy, read by name at start
    }
    roles = {
        (o["metadata"]["namespace"], o["metadata"]["name"]): o for o in objs if o["kind"] == "Role"
    }
    for ns in watched:
        role = roles[(ns, "portico")]
        assert {"portals", "secrets", "deployments"} <= {
            r for rule in role["rules"] for r in rule["resources"]
        }
    # Credentials: read-only Secrets where PortalInstance credentials live.
    for ns in ("portico-system", "crm-secrets"):
        assert rules([roles[(ns, "portico-credentials")]]) == {("", "secrets", frozenset({"get"}))}
    # Kopf posts no Events (the operator's own go to the Portals' namespaces).
    assert (RELEASE_NS, "portico-events") not in roles
    assert env_of(objs)["PORTICO_WATCH_NAMESPACES"] == "team-a,team-b"


# Kinds whose objects live in namespaces: none of them may be granted cluster-wide in
# namespaced mode.
NAMESPACED_RESOURCES = {
    "portals", "portals/status", "portalinvitations", "portalinvitations/status",
    "configmaps", "services", "secrets", "pods", "deployments", "jobs", "ingresses",
    "endpointslices", "events", "leases", "certificates",
}  # fmt: skip


@pytest.mark.parametrize("key", ["watchNamespaces", "namespaces"])
def test_namespaced_rbac_is_exactly_namespaced(helm: Path, key: str) -> None:
    """Every namespaced permission is a Role in a watched namespace, the release namespace
    (its own Lease and reservations ConfigMap, by name) or a credentials namespace (get
    Secrets); the ClusterRole holds only what the CRDs make cluster-wide. `namespaces` is
    the deprecated name of watchNamespaces and renders the same."""
    objs = render(
        helm,
        *("--set", f"{key}={{team-a,team-b}}", "--set", "replicas=2"),
        *("--set", "instanceCredentialsNamespaces={crm-secrets}"),
        *("--set", "certManager.enabled=true"),
    )  # fmt: skip
    # The operator's; the page server's (portico-pages) only reads, cluster-wide by design
    # (docs/install.md, permissions of the page server).
    (cluster_role,) = [
        o for o in objs if o["kind"] == "ClusterRole" and o["metadata"]["name"] == "portico"
    ]
    granted = {r for rule in cluster_role["rules"] for r in rule["resources"]}
    assert not granted & NAMESPACED_RESOURCES, granted & NAMESPACED_RESOURCES
    bound = [o["roleRef"]["name"] for o in objs if o["kind"] == "ClusterRoleBinding"]
    assert sorted(bound) == ["portico", "portico-pages"], bound
    where: dict[str, set[str]] = {}
    for obj in objs:
        if obj["kind"] == "Role":
            where.setdefault(obj["metadata"]["namespace"], set()).add(obj["metadata"]["name"])
    assert where == {
        "team-a": {"portico"},
        "team-b": {"portico"},
        RELEASE_NS: {"portico-reservations", "portico-leader-election"},
        "crm-secrets": {"portico-credentials"},
    }
    roles = {
        (o["metadata"]["namespace"], o["metadata"]["name"]): o for o in objs if o["kind"] == "Role"
    }
    for name in ("portico-reservations", "portico-leader-election"):
        for rule in roles[(RELEASE_NS, name)]["rules"]:  # by name, or create only
            assert rule.get("resourceNames") or rule["verbs"] == ["create"], rule
    bindings = [o for o in objs if o["kind"] == "RoleBinding"]
    assert {(b["metadata"]["namespace"], b["roleRef"]["name"]) for b in bindings} == set(roles)
    assert env_of(objs)["PORTICO_WATCH_NAMESPACES"] == "team-a,team-b"


def test_cluster_wide_mode_has_one_cluster_role_and_no_roles(helm: Path) -> None:
    objs = operator_objects(render(helm))
    assert [o["kind"] for o in objs if o["kind"] in ROLE_KINDS] == ["ClusterRole"]
    assert env_of(objs)["PORTICO_WATCH_NAMESPACES"] == ""


def test_cert_manager_rule_only_when_enabled(helm: Path) -> None:
    assert not any(g == "cert-manager.io" for g, _, _ in rules(render(helm)))
    enabled = rules(render(helm, "--set", "certManager.enabled=true"))
    assert ("cert-manager.io", "certificates", frozenset(MANAGE)) in enabled


# --- host policy (ValidatingAdmissionPolicy) -----------------------------------


def host_policy(objs: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
    (policy,) = [o for o in objs if o["kind"] == "ValidatingAdmissionPolicy"]
    (binding,) = [o for o in objs if o["kind"] == "ValidatingAdmissionPolicyBinding"]
    return policy, binding


def test_host_policy_guards_the_base_domain_for_the_operator(helm: Path) -> None:
    policy, binding = host_policy(render(helm, "--set", "baseDomain=portals.acme.io"))
    # One per base domain in the cluster: the name is the base domain's claim.
    assert policy["metadata"]["name"] == "portico-hosts.portals.acme.io"
    assert policy["metadata"]["annotations"]["portico.dev/release"] == f"{RELEASE_NS}/portico"
    assert binding["spec"] == {
        "policyName": policy["metadata"]["name"],
        "validationActions": ["Deny"],
    }
    spec = policy["spec"]
    assert spec["failurePolicy"] == "Fail"
    ingresses, routes = spec["matchConstraints"]["resourceRules"]
    assert ingresses["resources"] == ["ingresses"]
    assert set(ingresses["operations"]) == {"CREATE", "UPDATE"}
    assert routes["apiGroups"] == ["gateway.networking.k8s.io"]
    assert routes["resources"] == ["httproutes", "grpcroutes", "tlsroutes"]
    assert set(routes["operations"]) == {"CREATE", "UPDATE"}
    exempt = {c["name"]: c["expression"] for c in spec["matchConditions"]}
    assert f"system:serviceaccount:{RELEASE_NS}:portico" in exempt["not-the-operator"]
    chart_own = exempt["not-the-charts-own-ingresses"]
    assert f"request.namespace == '{RELEASE_NS}'" in chart_own
    # The page server's Ingresses (templates/pages.yaml): `<fullname>-pages[-catch-all]`.
    assert '["portico-pages","portico-pages-catch-all"]' in chart_own
    assert {"name": "base", "expression": "'portals.acme.io'"} in spec["variables"]
    (check,) = spec["validations"]
    hosts = {v["name"]: v["expression"] for v in spec["variables"]}
    assert "object.spec.rules" in hosts["ruleHosts"] and "object.spec.tls" in hosts["tlsHosts"]
    assert "object.spec.hostnames" in hosts["routeHosts"]
    for name in ("ruleHosts", "tlsHosts", "routeHosts"):
        assert f"variables.{name}" in check["expression"]
    assert "Hosts under portals.acme.io belong to Portico" in check["message"]


def test_the_operator_checks_its_claim_on_the_base_domain(helm: Path) -> None:
    objs = render(helm, "--set", "baseDomain=portals.acme.io")
    env = env_of(objs)
    assert env["PORTICO_HOST_POLICY"] == "portico-hosts.portals.acme.io"
    assert env["PORTICO_RELEASE"] == f"{RELEASE_NS}/portico"
    assert (
        "admissionregistration.k8s.io",
        "validatingadmissionpolicies",
        frozenset({"get"}),
    ) in rules(objs)
    (claim,) = [
        r
        for o in objs
        if o["kind"] == "ClusterRole"
        for r in o["rules"]
        if "validatingadmissionpolicies" in r["resources"]
    ]
    assert claim["resourceNames"] == ["portico-hosts.portals.acme.io"]
    off = render(helm, "--set", "hostPolicy.enabled=false")
    assert env_of(off)["PORTICO_HOST_POLICY"] == ""
    assert not [r for r in rules(off) if r[1] == "validatingadmissionpolicies"]


def test_host_less_rules_are_refused_only_when_asked(helm: Path) -> None:
    policy, _ = host_policy(render(helm))
    assert len(policy["spec"]["validations"]) == 1
    assert "hostless" not in {v["name"] for v in policy["spec"]["variables"]}
    policy, _ = host_policy(render(helm, "--set", "hostPolicy.refuseHostless=true"))
    variables = {v["name"]: v["expression"] for v in policy["spec"]["variables"]}
    assert "object.spec.defaultBackend" in variables["hostless"]
    assert "object.spec.hostnames" in variables["hostless"]
    _, hostless = policy["spec"]["validations"]
    assert hostless["expression"] == "!variables.hostless"
    assert "hostPolicy.refuseHostless" in hostless["message"]


def test_host_policy_allowed_users_and_toggle(helm: Path) -> None:
    user = "system:serviceaccount:cert-manager:cert-manager"
    policy, _ = host_policy(render(helm, "--set-json", f'hostPolicy.allowedUsers=["{user}"]'))
    assert user in policy["spec"]["matchConditions"][0]["expression"]
    off = render(helm, "--set", "hostPolicy.enabled=false")
    assert not [o for o in off if o["kind"].startswith("ValidatingAdmissionPolicy")]


def test_allowed_issuers_are_the_configured_issuer_and_the_list(helm: Path) -> None:
    assert env_of(render(helm))["PORTICO_ALLOWED_ISSUERS"] == "", "none by default"
    objs = render(
        helm,
        *("--set", "certManager.enabled=true", "--set", "certManager.issuer.name=letsencrypt"),
        *("--set", "certManager.issuer.kind=ClusterIssuer"),
        *(
            "--set",
            "certManager.allowedIssuers={Issuer/*,ClusterIssuer.awspca.cert-manager.io/pca}",
        ),
    )
    entries = env_of(objs)["PORTICO_ALLOWED_ISSUERS"]
    assert entries == "ClusterIssuer/letsencrypt,Issuer/*,ClusterIssuer.awspca.cert-manager.io/pca"
    assert Settings.from_env({"PORTICO_ALLOWED_ISSUERS": entries}).allowed_issuers


def test_ingress_controller_traefik_brings_the_403_page_middleware_and_its_rbac(
    helm: Path,
) -> None:
    """ingressController=traefik: the operator may manage Middlewares (a portal's IP
    allow-list) and the page server's errors Middleware turns a refusal into its 403 page."""
    plain = render(helm)
    assert env_of(plain)["PORTICO_INGRESS_CONTROLLER"] == ""
    assert env_of(plain)["PORTICO_PAGES_ERROR_MIDDLEWARE"] == ""
    assert not [o for o in plain if o["kind"] == "Middleware"]
    objs = render(helm, "--set", "ingressController=traefik")
    env = env_of(objs)
    (middleware,) = [o for o in objs if o["kind"] == "Middleware"]
    name, namespace = middleware["metadata"]["name"], middleware["metadata"]["namespace"]
    assert env["PORTICO_PAGES_ERROR_MIDDLEWARE"] == f"{namespace}/{name}"
    assert Settings.from_env(env).ingress_controller == "traefik"
    errors = middleware["spec"]["errors"]
    assert errors["status"] == ["418"] and errors["statusRewrites"] == {"418": 403}
    pages = [o for o in objs if o["kind"] == "Service" and o["metadata"]["name"].endswith("pages")]
    assert errors["service"]["name"] == pages[0]["metadata"]["name"]
    rules = [r for o in objs if o["kind"] in ROLE_KINDS for r in o["rules"]]
    assert any("traefik.io" in r["apiGroups"] and "middlewares" in r["resources"] for r in rules)


def test_default_certificate_is_the_controllers_not_a_copy_per_namespace(helm: Path) -> None:
    """defaultTLSSecret turns the default hosts' TLS entries on (no secretName) and, with
    defaultTLSStore=traefik, becomes Traefik's default certificate in the release namespace."""
    objs = render(helm)
    assert env_of(objs)["PORTICO_DEFAULT_HOST_TLS"] == "false"
    assert not [o for o in objs if o["kind"] == "TLSStore"]
    nginx = render(helm, "--set", "defaultTLSSecret=portals-wildcard")
    assert env_of(nginx)["PORTICO_DEFAULT_HOST_TLS"] == "true"
    assert not [o for o in nginx if o["kind"] == "TLSStore"], "ingress-nginx: your flag"
    traefik = render(
        helm, "--set", "defaultTLSSecret=portals-wildcard", "--set", "defaultTLSStore=traefik"
    )
    (store,) = [o for o in traefik if o["kind"] == "TLSStore"]
    assert (store["apiVersion"], store["metadata"]["name"]) == ("traefik.io/v1alpha1", "default")
    assert store["metadata"]["namespace"] == RELEASE_NS
    assert store["spec"] == {"defaultCertificate": {"secretName": "portals-wildcard"}}


# Server-side apply is patch (and create when it creates); no update.
MANAGE = {"get", "list", "watch", "create", "patch", "delete"}


# --- Pod Security restricted ---------------------------------------------------


def restricted_violations(spec: dict[str, Any]) -> list[str]:
    """The Pod Security Standards' restricted profile, as the API server checks it."""
    problems = []
    pod_sc = spec.get("securityContext") or {}
    for flag in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(flag):
            problems.append(f"{flag} is set")
    allowed_volumes = {
        "configMap",
        "csi",
        "downwardAPI",
        "emptyDir",
        "ephemeral",
        "persistentVolumeClaim",
        "projected",
        "secret",
    }
    for volume in spec.get("volumes", []):
        kinds = set(volume) - {"name"}
        if not kinds <= allowed_volumes:
            problems.append(f"volume {volume['name']} uses {kinds - allowed_volumes}")
    pod_seccomp = (pod_sc.get("seccompProfile") or {}).get("type")
    for c in [*spec.get("initContainers", []), *spec["containers"]]:
        sc = c.get("securityContext") or {}
        where = f"container {c['name']}"
        if sc.get("privileged"):
            problems.append(f"{where}: privileged")
        if sc.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{where}: allowPrivilegeEscalation must be false")
        if not (sc.get("runAsNonRoot") or pod_sc.get("runAsNonRoot")):
            problems.append(f"{where}: runAsNonRoot must be true")
        if sc.get("runAsUser", pod_sc.get("runAsUser")) == 0:
            problems.append(f"{where}: runAsUser 0")
        if (sc.get("capabilities") or {}).get("drop") != ["ALL"]:
            problems.append(f"{where}: capabilities must drop ALL")
        if set((sc.get("capabilities") or {}).get("add", [])) - {"NET_BIND_SERVICE"}:
            problems.append(f"{where}: adds capabilities")
        seccomp = (sc.get("seccompProfile") or {}).get("type", pod_seccomp)
        if seccomp not in ("RuntimeDefault", "Localhost"):
            problems.append(f"{where}: seccompProfile must be RuntimeDefault")
        # Not part of the profile, but the chart promises it.
        if sc.get("readOnlyRootFilesystem") is not True:
            problems.append(f"{where}: readOnlyRootFilesystem must be true")
        if any(p.get("hostPort") for p in c.get("ports", [])):
            problems.append(f"{where}: hostPort")
    return problems


def test_every_pod_is_restricted(rendered: list[dict[str, Any]]) -> None:
    specs = list(pod_specs(rendered))
    assert specs
    for name, spec in specs:
        assert restricted_violations(spec) == [], name
        mounts = {m["mountPath"] for c in spec["containers"] for m in c.get("volumeMounts", [])}
        assert "/tmp" in mounts, f"{name}: a read-only root needs a writable /tmp"


def test_the_checker_catches_a_root_pod() -> None:
    spec = {"containers": [{"name": "c", "securityContext": {"runAsUser": 0}}]}
    problems = restricted_violations(spec)
    assert any("allowPrivilegeEscalation" in p for p in problems)
    assert any("runAsUser 0" in p for p in problems)
    assert any("seccompProfile" in p for p in problems)


# --- settings and values -------------------------------------------------------


def test_every_operator_setting_reaches_the_container(helm: Path) -> None:
    env = env_of(render(helm))
    expected = {"PORTICO_" + f.name.upper() for f in dataclasses.fields(Settings)}
    missing = expected - set(env)
    assert not missing, f"Settings fields without a chart value: {sorted(missing)}"
    unknown = {k for k in env if k.startswith("PORTICO_")} - expected
    assert not unknown, f"variables the operator does not read: {sorted(unknown)}"
    # And the defaults agree with the operator's own, so the chart changes nothing silently.
    parsed = Settings.from_env(env)
    defaults = Settings()
    for f in dataclasses.fields(Settings):
        if f.name in {"base_domain", "log_format", *CHART_ON, *DERIVED_SETTINGS}:
            continue  # the chart's defaults on purpose (json logs in a cluster)
        assert getattr(parsed, f.name) == getattr(defaults, f.name), f.name
    assert parsed.log_format == "json"
    # The portal NetworkPolicy is on in the chart, pointed at an ingress controller.
    assert parsed.portal_network_policy
    assert parsed.network_policy_ingress_namespaces == (
        "kubernetes.io/metadata.name=ingress-nginx",
    )


def test_values_reach_the_environment(helm: Path) -> None:
    objs = render(helm, "--values", str(CHART / "ci" / "monitoring-values.yaml"))
    parsed = Settings.from_env(env_of(objs))
    assert parsed.dns_nameservers == ("10.0.0.10", "10.0.0.11:5353")
    assert parsed.dns_port == 5353
    assert parsed.dns_timeout == 2.5
    assert parsed.dns_authoritative is True
    assert parsed.dns_recheck_seconds == 2
    assert parsed.metrics_port == 9091
    assert parsed.health_port == 8082
    assert parsed.trial_days == 14
    assert parsed.runtime_image == "registry.example.com/portal-runtime:2.0"
    assert parsed.default_replicas == 2
    assert parsed.provision_backoff_limit == 3
    assert parsed.ingress_class == "nginx"
    assert parsed.resync_seconds == 120
    container = deployment(objs)["spec"]["template"]["spec"]["containers"][0]
    assert {p["name"]: p["containerPort"] for p in container["ports"]} == {
        "metrics": 9091,
        "health": 8082,
    }
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert container["command"] == ["portico"] and container["args"] == ["run"]
    (monitor,) = [o for o in objs if o["kind"] == "ServiceMonitor"]
    assert monitor["metadata"]["labels"]["release"] == "prometheus"
    (policy,) = [
        o for o in objs if o["kind"] == "NetworkPolicy" and o["metadata"]["name"] == "portico"
    ]
    egress_ports = {
        (p["port"], p["protocol"]) for rule in policy["spec"]["egress"] for p in rule["ports"]
    }
    assert {(6443, "TCP"), (53, "UDP"), (5353, "UDP"), (5353, "TCP")} <= egress_ports
    # Only the metrics port is open to other pods, and only to the listed peers: the
    # health port (/healthz) is reachable by the kubelet's probes alone.
    (ingress,) = policy["spec"]["ingress"]
    assert ingress["ports"] == [{"port": "metrics", "protocol": "TCP"}]
    assert ingress["from"] == [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
    ]
    # /metrics behind the API server's authentication: the setting, the two reviews the
    # operator may create, and the ServiceMonitor sending Prometheus's token.
    assert parsed.metrics_auth is True
    assert monitor["spec"]["endpoints"][0]["bearerTokenFile"].endswith("serviceaccount/token")
    assert {
        ("authentication.k8s.io", "tokenreviews"),
        ("authorization.k8s.io", "subjectaccessreviews"),
    } <= {(g, r) for g, r, v in rules(objs) if v == frozenset({"create"})}
    assert not any(g.startswith("authentication") for g, _, _ in rules(render(helm)))


LEASE_RULES = [
    {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]},
    {
        "apiGroups": ["coordination.k8s.io"],
        "resources": ["leases"],
        "resourceNames": ["portico-leader"],
        "verbs": ["get", "update"],
    },
]


def test_replicas_turn_on_leader_election(helm: Path) -> None:
    single = operator_objects(render(helm))
    assert env_of(single)["PORTICO_LEADER_ELECTION"] == "false"
    assert deployment(single)["spec"]["strategy"]["type"] == "Recreate"
    assert not [o for o in single if o["kind"] == "PodDisruptionBudget"]
    assert not any(r == "leases" for _, r, _ in rules(single))

    for args in (
        ["--set", "replicas=3"],
        ["--values", str(CHART / "ci" / "ha-namespaced-values.yaml")],
    ):
        ha = operator_objects(render(helm, *args))
        env = env_of(ha)
        assert env["PORTICO_LEADER_ELECTION"] == "true"
        assert env["PORTICO_LEADER_ELECTION_NAMESPACE"] == RELEASE_NS
        container = deployment(ha)["spec"]["template"]["spec"]["containers"][0]
        (pod_name,) = [e for e in container["env"] if e["name"] == "POD_NAME"]
        assert pod_name["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}
        assert deployment(ha)["spec"]["strategy"]["type"] == "RollingUpdate"
        assert [o["spec"]["minAvailable"] for o in ha if o["kind"] == "PodDisruptionBudget"] == [1]
        # Exactly the Lease verbs, only in the release namespace, only for this Lease.
        leases = [o for o in ha if o["kind"] in ROLE_KINDS and "leases" in str(o["rules"])]
        assert [(o["kind"], o["metadata"]["namespace"]) for o in leases] == [("Role", RELEASE_NS)]
        assert leases[0]["metadata"]["name"] == "portico-leader-election"
        assert leases[0]["rules"] == LEASE_RULES
        assert not any(g == "kopf.dev" for g, _, _ in rules(ha))


def test_leader_election_timings_reach_the_operator(helm: Path) -> None:
    ha = render(helm, "--set", "replicas=2", "--set", "leaderElection.leaseDuration=30")
    settings = Settings.from_env(env_of(ha))
    assert settings.leader_election and settings.leader_election_namespace == RELEASE_NS
    assert settings.leader_election_lease_duration == 30
    assert settings.leader_election_renew_deadline == 10
    assert settings.leader_election_retry_period == 2


def test_no_kopf_peering_anywhere(helm: Path) -> None:
    objs = render(helm, "--set", "replicas=2", crds=True)
    assert not [o for o in objs if "kopf.dev" in json.dumps(o)]


BAD_VALUES = [
    (["--set", "logFormat=xml"], "logFormat", "json"),
    (["--set", "replicas=-1"], "replicas", "minimum"),
    (["--set", "replicas=0"], "replicas", "minimum"),
    (["--set", "trialDays=soon"], "trialDays", "integer"),
    (["--set", "baseDomain=Portals.Example.COM"], "baseDomain", "pattern"),
    (["--set", "metrics.port=70000"], "metrics/port", "maximum"),
    (["--set", "namespaces[0]=Team_A"], "namespaces", "pattern"),
    (["--set", "replica=2"], "replica", "additional properties"),
    (["--set", "metrics.port=8081"], "metrics.port and health.port must differ", ""),
]


@pytest.mark.parametrize(("args", "key", "reason"), BAD_VALUES, ids=[b[0][1] for b in BAD_VALUES])
def test_helm_rejects_bad_values_clearly(
    helm: Path, args: list[str], key: str, reason: str
) -> None:
    proc = run_helm(helm, "template", "portico", str(CHART), *args, check=False)
    assert proc.returncode != 0, f"helm accepted {args}"
    assert key in proc.stderr and reason in proc.stderr.lower(), proc.stderr


# --- values.schema.json without helm --------------------------------------------


def test_schema_accepts_defaults_and_every_ci_file() -> None:
    jsonschema.Draft7Validator.check_schema(SCHEMA)
    jsonschema.validate(DEFAULTS, SCHEMA)
    for path in CI_VALUES:
        jsonschema.validate(merge(DEFAULTS, yaml.safe_load(path.read_text()) or {}), SCHEMA)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"logFormat": "xml"}, "'xml' is not one of ['json', 'text']"),
        ({"replicas": -1}, "-1 is less than the minimum of 1"),
        ({"dns": {"timeout": 0}}, "less than or equal to the minimum of 0"),
        ({"image": {"pullPolicy": "Sometimes"}}, "'Sometimes' is not one of"),
        ({"replica": 2}, "'replica' was unexpected"),
        ({"hostPolicy": {"allowedUsers": ["x' || true || '"]}}, "does not match"),
        ({"baseDomain": "a" * 240}, "is too long"),
    ],
)
def test_schema_rejects_bad_values(override: dict[str, Any], message: str) -> None:
    with pytest.raises(jsonschema.ValidationError) as info:
        jsonschema.validate(merge(DEFAULTS, override), SCHEMA)
    assert message in info.value.message


def test_every_default_value_is_described_by_the_schema() -> None:
    def walk(values: dict[str, Any], schema: dict[str, Any], path: str) -> None:
        props = schema.get("properties", {})
        for key, value in values.items():
            assert key in props, f"{path}{key} has no schema"
            if isinstance(value, dict) and props[key].get("properties"):
                walk(value, props[key], f"{path}{key}.")

    walk(DEFAULTS, SCHEMA, "")


def merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


# --- CRDs: one source of truth ------------------------------------------------


def test_chart_crds_are_links_to_the_repository_crds() -> None:
    for path in sorted((REPO / "crds").glob("*.yaml")):
        linked = CHART / "crds" / path.name
        assert linked.is_symlink(), f"{linked} must be a symlink to crds/{path.name}"
        assert linked.resolve() == path.resolve()
    # Nothing else: never a second copy of a Portico CRD.
    assert not [p for p in (CHART / "crds").iterdir() if not p.is_symlink()]


def test_helm_ships_the_repository_crds_byte_for_byte(helm: Path, tmp_path: Path) -> None:
    shown = run_helm(helm, "show", "crds", str(CHART)).stdout
    for path in sorted((REPO / "crds").glob("*.yaml")):
        assert path.read_text().strip() in shown, f"helm show crds lacks {path.name}"
    run_helm(helm, "package", str(CHART), "--destination", str(tmp_path))
    (package,) = tmp_path.glob("portico-*.tgz")
    with tarfile.open(package) as tar:
        for path in sorted((REPO / "crds").glob("*.yaml")):
            member = tar.extractfile(f"portico/crds/{path.name}")
            assert member is not None, f"the package lacks crds/{path.name}"
            assert member.read() == path.read_bytes(), f"packaged crds/{path.name} differs"


# --- docs and metadata -----------------------------------------------------------


def permission_table() -> set[tuple[str, str, frozenset[str], str]]:
    text = (REPO / "docs" / "install.md").read_text()
    section = text[text.index("## Permissions") :]
    rows = set()
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 6 or not cells[0].startswith("`"):
            continue
        groups = [g.strip("` ").replace('""', "") for g in cells[0].split(",")]
        resources = [r.strip("` ") for r in cells[1].split(",")]
        verbs = frozenset(v.strip() for v in cells[2].split(","))
        for group in groups:
            for resource in resources:
                rows.add((group, resource, verbs, cells[4]))
    return rows


def test_permission_table_matches_the_rendered_rbac(helm: Path) -> None:
    table = permission_table()
    assert table, "docs/install.md has no permission table"
    # Rules behind a value that is on by default are in the default render too.
    always = {
        (g, r, v) for g, r, v, when in table if when == "always" or when.endswith("(default on)")
    }
    assert rules(render(helm)) == always
    everything: set[tuple[str, str, frozenset[str]]] = set()
    for args in (
        ["--set", "replicas=2", "--set", "certManager.enabled=true"],
        ["--set", "metrics.authenticate=true"],
        ["--values", str(CHART / "ci" / "namespaced-values.yaml"), "--set", "replicas=2"],
    ):
        everything |= rules(render(helm, *args))
    assert everything == {(g, r, v) for g, r, v, when in table if when != "page server"}
    pages = {(g, r, v) for g, r, v, when in table if when == "page server"}
    assert rules(render(helm), pages=True) == pages


def test_app_version_is_the_package_version() -> None:
    # The image tag defaults to appVersion; the Dockerfile builds this version.
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    pyproject = (REPO / "pyproject.toml").read_text()
    match = re.search(r'^version = "([^"]+)"', pyproject, re.MULTILINE)
    assert match and chart["appVersion"] == match.group(1)


def test_portal_pods_the_operator_renders_are_restricted_too() -> None:
    """Same check on the children `portico plan` prints for every example portal."""
    from click.testing import CliRunner

    from portico.cli import main

    examples = sorted(str(p) for p in (REPO / "examples").glob("*.yaml"))
    result = CliRunner().invoke(main, ["plan", *examples, "-o", "json"])
    assert result.exit_code == 0, result.output
    children = json.loads(result.stdout)
    specs = list(pod_specs(children))
    assert {name.split("/")[0] for name, _ in specs} == {"Deployment", "Job"}
    for name, spec in specs:
        assert restricted_violations(spec) == [], name


# --- the page server --------------------------------------------------------------


def pages_objects(objs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {f"{o['kind']}/{o['metadata']['name']}": o for o in objs if component(o) == "pages"}


def test_the_page_server_is_one_read_only_deployment_for_every_portal(helm: Path) -> None:
    objs = pages_objects(render(helm, "--set", "baseDomain=portals.example.net"))
    dep = objs["Deployment/portico-pages"]
    pod = dep["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["args"] == ["pages"]
    assert container["image"] == DEFAULTS["runtimeImage"]  # the runtime image's `pages`
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert pod["serviceAccountName"] == "portico-pages"
    # Its pods are never the operator's: the operator Deployment's selector misses them.
    operator = deployment(render(helm))["spec"]["selector"]["matchLabels"]
    assert not operator.items() <= dep["spec"]["template"]["metadata"]["labels"].items()
    # Read-only: get, list, watch of Portals, EndpointSlices and (maintenance pages)
    # ConfigMaps, nothing else.
    assert rules(list(objs.values()), pages=True) == {
        ("portico.dev", "portals", frozenset({"get", "list", "watch"})),
        ("discovery.k8s.io", "endpointslices", frozenset({"list", "watch"})),
        ("", "configmaps", frozenset({"list", "watch"})),
    }
    assert objs["PodDisruptionBudget/portico-pages"]["spec"]["minAvailable"] == 1
    wildcard = objs["Ingress/portico-pages"]
    (rule,) = wildcard["spec"]["rules"]
    assert rule["host"] == "*.portals.example.net"
    # Lowest priority for Traefik; ingress-nginx always prefers an exact host.
    assert wildcard["metadata"]["annotations"] == {
        "traefik.ingress.kubernetes.io/router.priority": "1"
    }
    catch_all = objs["Ingress/portico-pages-catch-all"]
    assert "rules" not in catch_all["spec"]
    assert catch_all["spec"]["defaultBackend"]["service"]["name"] == "portico-pages"


def test_the_page_server_settings(helm: Path) -> None:
    off = pages_objects(render(helm, "--set", "pages.catchAll=false", "--set", "pages.replicas=1"))
    assert "Ingress/portico-pages-catch-all" not in off
    assert "PodDisruptionBudget/portico-pages" not in off  # one pod: a PDB would block drains
    assert pages_objects(render(helm, "--set", "pages.enabled=false")) == {}
    own = pages_objects(render(helm, "--set", "pages.image=registry.example.com/pages:1"))
    (container,) = own["Deployment/portico-pages"]["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "registry.example.com/pages:1"
