"""The chart's ValidatingAdmissionPolicy on the real API server: hosts under the base
domain belong to Portico, so only the operator's ServiceAccount (and the chart's own
page-server Ingresses, in the release namespace) may route them — with Ingresses or,
once the Gateway API CRDs are installed, with HTTPRoutes, GRPCRoutes and TLSRoutes.
And the policy is the base domain's claim: a second release with the same base domain
cannot be installed, and its operator refuses to start."""

from __future__ import annotations

import contextlib
import json
import subprocess
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest

from portico_dev import ControlPlane
from tests.support.chart import CHART, Release, installed
from tests.support.controlplane import Operator, wait_for
from tests.support.gateway_api import ROUTE_CRDS, route_crds

TEMPLATE = "templates/hostpolicy.yaml"
REFUSED = "belong to Portico"


def render_policy(
    plane: ControlPlane, release: str, namespace: str, base: str, home: Path, *extra: str
) -> str:
    """The policy exactly as `helm install` would create it (the chart's own template)."""
    cmd = [str(plane.bins["helm"]), "template", release, str(CHART), "--namespace", namespace]
    cmd += ["--set", f"baseDomain={base}", "--show-only", TEMPLATE, *extra]
    env = {"PATH": "/usr/bin:/bin", "HOME": str(home)}
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False, env=env)
    assert result.returncode == 0, result.stderr
    return result.stdout


def ingress(name: str, host: str) -> str:
    return json.dumps(
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "Ingress",
            "metadata": {"name": name},
            "spec": {
                "rules": [
                    {
                        "host": host,
                        "http": {
                            "paths": [
                                {
                                    "path": "/",
                                    "pathType": "Prefix",
                                    "backend": {"service": {"name": "web", "port": {"number": 80}}},
                                }
                            ]
                        },
                    }
                ]
            },
        }
    )


def tls_ingress(name: str, host: str) -> str:
    """An Ingress that claims the host only in its TLS section (a certificate grab)."""
    doc = json.loads(ingress(name, "elsewhere.example.net"))
    doc["spec"]["tls"] = [{"hosts": [host], "secretName": "stolen"}]
    return json.dumps(doc)


def route(kind: str, name: str, host: str) -> str:
    """A Gateway API route for HOST (HTTPRoute, GRPCRoute: v1; TLSRoute: v1alpha2)."""
    version = "v1alpha2" if kind == "TLSRoute" else "v1"
    port = 443 if kind == "TLSRoute" else 80
    return json.dumps(
        {
            "apiVersion": f"gateway.networking.k8s.io/{version}",
            "kind": kind,
            "metadata": {"name": name},
            "spec": {
                "parentRefs": [{"name": "shared"}],
                "hostnames": [host],
                "rules": [{"backendRefs": [{"name": "web", "port": port}]}],
            },
        }
    )


def create_as(
    plane: ControlPlane, user: str, namespace: str, manifest: str, *extra: str
) -> subprocess.CompletedProcess[str]:
    """Create MANIFEST as USER (as the test's own admin when USER is empty)."""
    who = [f"--as={user}"] if user else []
    return plane.kubectl(
        *who, "create", "-n", namespace, "-f", "-", *extra, input=manifest, check=False
    )


def may_edit(plane: ControlPlane, namespace: str, account: str, user: str = "") -> None:
    """ACCOUNT (a ServiceAccount created here) or USER gets `edit` in NAMESPACE."""
    subject = f"--user={user}" if user else f"--serviceaccount={namespace}:{account}"
    if not user:
        plane.kubectl("create", "serviceaccount", account, "-n", namespace)
    plane.kubectl(
        "create", "rolebinding", f"{account}-edit", "-n", namespace, "--clusterrole=edit", subject
    )


def wait_for_admission(
    plane: ControlPlane, user: str, namespace: str, manifest: str, admitted: bool
) -> None:
    """The API server loads a new policy (and unloads a deleted one) asynchronously:
    probe with server-side dry runs (admission runs on them too) until MANIFEST is
    refused, or admitted again (so no later test meets a deleted policy)."""
    wait_for(
        f"the policy to {'be unloaded' if admitted else 'refuse'}",
        lambda: (
            (create_as(plane, user, namespace, manifest, "--dry-run=server").returncode == 0)
            == admitted
        ),
        60,
    )


def new_base() -> tuple[str, str]:
    """A base domain and release of the test's own: the policy is cluster-scoped and must
    not refuse other tests' Ingresses on the shared control plane."""
    return f"hp-{uuid.uuid4().hex[:6]}.portico.test", f"hp{uuid.uuid4().hex[:4]}"


def test_only_the_operator_routes_hosts_under_the_base_domain(
    control_plane: ControlPlane, namespace: str, tmp_path: Path
) -> None:
    plane = control_plane
    base, release = new_base()
    policy = render_policy(plane, release, namespace, base, tmp_path)
    operator = f"system:serviceaccount:{namespace}:{release}-portico"
    tenant = f"system:serviceaccount:{namespace}:tenant"
    for account in (f"{release}-portico", "tenant"):
        may_edit(plane, namespace, account)
    plane.kubectl("apply", "-f", "-", input=policy)
    try:
        squat = ingress("squat", f"squat.{base}")
        wait_for_admission(plane, tenant, namespace, squat, admitted=False)

        refused = create_as(plane, tenant, namespace, squat)
        assert refused.returncode != 0, f"squatting ingress was admitted: {refused.stdout}"
        assert REFUSED in refused.stderr, refused.stderr
        assert f"Hosts under {base}" in refused.stderr, refused.stderr

        for name, manifest in (
            ("apex", ingress("apex", base)),
            ("wildcard", ingress("wildcard", f"*.{base}")),
            ("tls-grab", tls_ingress("tls-grab", f"shop.{base}")),
        ):
            result = create_as(plane, tenant, namespace, manifest)
            assert result.returncode != 0, f"{name} was admitted: {result.stdout}"
            assert REFUSED in result.stderr, f"{name}: {result.stderr}"

        # Lookalikes are not under the base domain.
        unrelated = create_as(plane, tenant, namespace, ingress("own", f"shop.not{base}"))
        assert unrelated.returncode == 0, unrelated.stderr

        owned = create_as(plane, operator, namespace, ingress("portal", f"squat.{base}"))
        assert owned.returncode == 0, owned.stderr

        # An existing Ingress cannot be moved onto the base domain either.
        moved = plane.kubectl(
            f"--as={tenant}", "patch", "ingress", "own", "-n", namespace, "--type=json",
            "-p", json.dumps([{"op": "replace", "path": "/spec/rules/0/host",
                               "value": f"moved.{base}"}]),
            check=False,
        )  # fmt: skip
        assert moved.returncode != 0 and REFUSED in moved.stderr, moved.stderr + moved.stdout
    finally:
        plane.kubectl("delete", "-f", "-", "--wait=false", input=policy, check=False)


def test_the_charts_own_page_server_ingress_passes_only_in_the_release_namespace(
    control_plane: ControlPlane, namespace: str, other_namespace: str, tmp_path: Path
) -> None:
    """Whoever runs helm makes the page server's `*.<baseDomain>` Ingress: it passes by
    namespace and name, and that name anywhere else (or another name there) does not."""
    plane = control_plane
    base, release = new_base()
    policy = render_policy(plane, release, namespace, base, tmp_path)
    deployer = f"deployer-{uuid.uuid4().hex[:6]}"  # a person running helm, not the operator
    may_edit(plane, namespace, "deployer", user=deployer)
    may_edit(plane, other_namespace, "deployer", user=deployer)
    pages = f"{release}-portico-pages"
    plane.kubectl("apply", "-f", "-", input=policy)
    try:
        wait_for_admission(
            plane, deployer, namespace, ingress("probe", f"x.{base}"), admitted=False
        )
        own = create_as(plane, deployer, namespace, ingress(pages, f"*.{base}"))
        assert own.returncode == 0, own.stderr

        elsewhere = create_as(plane, deployer, other_namespace, ingress(pages, f"*.{base}"))
        assert elsewhere.returncode != 0 and REFUSED in elsewhere.stderr, elsewhere.stdout

        other_name = create_as(plane, deployer, namespace, ingress("pages2", f"*.{base}"))
        assert other_name.returncode != 0 and REFUSED in other_name.stderr, other_name.stdout
    finally:
        plane.kubectl("delete", "-f", "-", "--wait=false", input=policy, check=False)


def route_role(namespace: str) -> str:
    return json.dumps(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": "routes", "namespace": namespace},
            "rules": [
                {
                    "apiGroups": ["gateway.networking.k8s.io"],
                    "resources": ["httproutes", "grpcroutes", "tlsroutes"],
                    "verbs": ["get", "create", "update", "patch"],
                }
            ],
        }
    )


def may_route(plane: ControlPlane, namespace: str, *accounts: str) -> None:
    """The Gateway API route CRDs (pinned), and ACCOUNTS may write routes in NAMESPACE."""
    for path in route_crds():
        plane.kubectl("apply", "--server-side", "-f", str(path))
    for crd in ROUTE_CRDS:
        plane.kubectl("wait", "--for=condition=Established", f"crd/{crd}", "--timeout=60s")
    plane.kubectl("apply", "-f", "-", input=route_role(namespace))
    for account in accounts:
        plane.kubectl(
            "create", "rolebinding", f"{account}-routes", "-n", namespace, "--role=routes",
            f"--serviceaccount={namespace}:{account}",
        )  # fmt: skip


def test_gateway_api_routes_for_tenant_hosts_are_refused(
    control_plane: ControlPlane, namespace: str, tmp_path: Path
) -> None:
    plane = control_plane
    base, release = new_base()
    policy = render_policy(plane, release, namespace, base, tmp_path)
    operator = f"system:serviceaccount:{namespace}:{release}-portico"
    tenant = f"system:serviceaccount:{namespace}:tenant"
    served = plane.kubectl("get", "crd", ROUTE_CRDS[0], check=False).returncode == 0
    # The policy names the routes whether or not their CRDs exist: the API server takes
    # it (and refuses Ingresses with it) before they are installed.
    for account in (f"{release}-portico", "tenant"):
        may_edit(plane, namespace, account)
    plane.kubectl("apply", "-f", "-", input=policy)
    try:
        if not served:
            early = ingress("p", f"x.{base}")
            wait_for_admission(plane, tenant, namespace, early, admitted=False)
            result = create_as(plane, tenant, namespace, early, "--dry-run=server")
            assert result.returncode != 0 and REFUSED in result.stderr, result.stdout
        may_route(plane, namespace, f"{release}-portico", "tenant")

        squat = route("HTTPRoute", "squat", f"shop.{base}")
        wait_for_admission(plane, tenant, namespace, squat, admitted=False)
        refused = create_as(plane, tenant, namespace, squat)
        assert refused.returncode != 0, f"HTTPRoute for a tenant host admitted: {refused.stdout}"
        assert f"Hosts under {base}" in refused.stderr, refused.stderr

        for kind, host in (("GRPCRoute", f"api.{base}"), ("TLSRoute", f"*.{base}")):
            name = kind.lower()
            wait_for_admission(plane, tenant, namespace, route(kind, name, host), admitted=False)
            result = create_as(plane, tenant, namespace, route(kind, name, host))
            assert result.returncode != 0, f"{kind} for {host} admitted: {result.stdout}"
            assert REFUSED in result.stderr, f"{kind}: {result.stderr}"

        unrelated = create_as(plane, tenant, namespace, route("HTTPRoute", "own", "x.other.test"))
        assert unrelated.returncode == 0, unrelated.stderr
        moved = plane.kubectl(
            f"--as={tenant}", "patch", "httproute", "own", "-n", namespace, "--type=merge",
            "-p", json.dumps({"spec": {"hostnames": [f"moved.{base}"]}}), check=False,
        )  # fmt: skip
        assert moved.returncode != 0 and REFUSED in moved.stderr, moved.stderr + moved.stdout

        owned = create_as(plane, operator, namespace, route("HTTPRoute", "portal", f"shop.{base}"))
        assert owned.returncode == 0, owned.stderr
    finally:
        plane.kubectl("delete", "-f", "-", "--wait=false", input=policy, check=False)


def hostless(name: str) -> str:
    doc = json.loads(ingress(name, "x"))
    del doc["spec"]["rules"][0]["host"]
    return json.dumps(doc)


def default_backend(name: str) -> str:
    doc = json.loads(ingress(name, "x"))
    doc["spec"] = {"defaultBackend": {"service": {"name": "web", "port": {"number": 80}}}}
    return json.dumps(doc)


def every_host_route(name: str) -> str:
    doc = json.loads(route("HTTPRoute", name, "x"))
    del doc["spec"]["hostnames"]
    return json.dumps(doc)


def test_rules_without_a_host_are_refused_when_asked(
    control_plane: ControlPlane, namespace: str, other_namespace: str, tmp_path: Path
) -> None:
    """hostPolicy.refuseHostless: a host-less rule, a default backend or a route without
    hostnames matches the base domain's hosts too; the chart's catch-all still passes."""
    plane = control_plane
    base, release = new_base()
    policy = render_policy(
        plane, release, namespace, base, tmp_path, "--set", "hostPolicy.refuseHostless=true"
    )
    tenant = f"system:serviceaccount:{other_namespace}:tenant"
    may_edit(plane, other_namespace, "tenant")
    may_route(plane, other_namespace, "tenant")
    deployer = f"deployer-{uuid.uuid4().hex[:6]}"
    may_edit(plane, namespace, "deployer", user=deployer)
    plane.kubectl("apply", "-f", "-", input=policy)
    try:
        wait_for_admission(plane, tenant, other_namespace, hostless("any"), admitted=False)
        for name, manifest in (
            ("host-less rule", hostless("any")),
            ("default backend", default_backend("fallback")),
            ("route without hostnames", every_host_route("all")),
        ):
            result = create_as(plane, tenant, other_namespace, manifest)
            assert result.returncode != 0, f"{name} admitted: {result.stdout}"
            assert "A rule without a host" in result.stderr, f"{name}: {result.stderr}"
        named = create_as(plane, tenant, other_namespace, ingress("own", "shop.other.test"))
        assert named.returncode == 0, named.stderr
        routed = create_as(plane, tenant, other_namespace, route("HTTPRoute", "own", "x.test"))
        assert routed.returncode == 0, routed.stderr

        catch_all = f"{release}-portico-pages-catch-all"
        chart = create_as(plane, deployer, namespace, default_backend(catch_all))
        assert chart.returncode == 0, chart.stderr
    finally:
        plane.kubectl("delete", "-f", "-", "--wait=false", input=policy, check=False)
    # It refuses every host-less Ingress in the cluster, the next test's chart included.
    wait_for_admission(plane, tenant, other_namespace, hostless("any-again"), admitted=True)


# --- two releases, one base domain -------------------------------------------------


def healthy(op: Operator) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{op.health_port}/healthz", timeout=1):
            return True
    except OSError:
        return False


def values(base: str) -> dict[str, Any]:
    return {"baseDomain": base, "logFormat": "text"}


def test_a_second_release_with_the_same_base_domain_refuses_to_start(
    control_plane: ControlPlane, other_namespace: str, tmp_path: Path
) -> None:
    plane = control_plane
    base, _ = new_base()
    claim = f"portico-hosts.{base}"
    with installed(plane, values(base), tmp_path, "portico-hpa") as first:
        # The second release, in a namespace of its own: helm cannot create the claim.
        second = Release(plane, f"portico-hpb-{uuid.uuid4().hex[:6]}", other_namespace, tmp_path)
        with pytest.raises(AssertionError) as refused:
            second.install(values(base))
        assert f'ValidatingAdmissionPolicy "{claim}"' in str(refused.value), refused.value
        assert "exists and cannot be imported" in str(refused.value), refused.value

        # Its operator (as a GitOps tool would still start it) refuses, says why, and
        # never answers /healthz (the pod's startup probe fails: never Ready).
        kubeconfig = plane.serviceaccount_kubeconfig(other_namespace, "second", duration="1h")
        binding = f"hp-second-{uuid.uuid4().hex[:6]}"
        plane.kubectl(
            "create", "clusterrolebinding", binding, "--clusterrole=cluster-admin",
            f"--serviceaccount={other_namespace}:second",
        )  # fmt: skip
        op = Operator(
            plane,
            kubeconfig,
            tmp_path / "second",
            PORTICO_BASE_DOMAIN=base,
            PORTICO_HOST_POLICY=claim,
            PORTICO_RELEASE=f"{other_namespace}/{second.name}",
            PORTICO_NAMESPACES=other_namespace,
            PORTICO_LEADER_ELECTION_NAMESPACE=other_namespace,
            PORTICO_INSTANCE_CREDENTIALS_NAMESPACES=other_namespace,
        )
        op.workdir.mkdir()
        op.spawn()
        try:
            line = (
                f"portico refuses to start: base domain {base} is held by release "
                f"{first.namespace}/{first.name}"
            )
            wait_for("the refusal in the operator's log", lambda: line in op.log_text(), 60)
            assert "Traceback" not in op.log_text()
            assert not healthy(op), "a refused operator answered /healthz"
            assert "caches synced" not in op.log_text()  # it read nothing else

            # The release holding the claim starts with the chart's own RBAC.
            env = {**first.operator_env(), "PORTICO_NAMESPACES": first.namespace}
            env["PORTICO_LEADER_ELECTION_NAMESPACE"] = first.namespace
            holder = Operator(plane, first.kubeconfig(), tmp_path / "first", **env)
            holder.workdir.mkdir()
            holder.start()
            try:
                assert "refuses to start" not in holder.log_text()
            finally:
                holder.stop()
            assert not healthy(op)
        except BaseException:
            op.stop()
            plane.kubectl("delete", "clusterrolebinding", binding, check=False)
            raise

    # The first release is gone: the second installs, and its waiting operator starts —
    # once the API server has dropped the first release's policy.
    wait_for_admission(plane, "", other_namespace, ingress("probe", f"probe.{base}"), admitted=True)
    try:
        with contextlib.suppress(AssertionError):  # a failed install's record, if helm kept one
            second.uninstall()
        second.install(values(base))
        try:
            wait_for("the second release's operator to start", lambda: healthy(op), 90)
            assert "portico started" in op.log_text()
        finally:
            second.uninstall()
    finally:
        op.stop()
        plane.kubectl("delete", "clusterrolebinding", binding, check=False)
