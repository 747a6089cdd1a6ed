"""spec.access.allowedSourceRanges on the real API server: the CRD's CEL CIDR rules refuse
bad ranges (v4 and v6), an operator set for Traefik makes and prunes the portal's
`<portal>-allowlist` Middleware (Traefik's CRDs installed, as docs/install.md asks), and
an operator set for no known controller says the list is not enforced."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import yaml

from portico.core import access, names
from portico_dev import ControlPlane, traefik
from tests.support import reliability as rel
from tests.support.controlplane import Cluster, Operator, new_namespace, wait_for
from tests.support.portals import portal

RANGES = ["203.0.113.0/24", "2001:db8::/32"]
STEP = 120


def _ranges(plane: ControlPlane, namespace: str, name: str, ranges: list[str]) -> None:
    plane.kubectl(
        "patch", "portal", name, "-n", namespace, "--type=merge",
        "-p", json.dumps({"spec": {"access": {"allowedSourceRanges": ranges}}}),
    )  # fmt: skip


def _condition(obj: dict, type_: str) -> dict | None:
    return next((c for c in obj["status"].get("conditions") or () if c["type"] == type_), None)


@pytest.fixture(scope="module")
def traefik_operator(
    own_control_plane: ControlPlane, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Operator]:
    plane = own_control_plane
    plane.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(traefik.crd_documents()))
    crds = [f"crd/{d['metadata']['name']}" for d in traefik.crd_documents()]
    plane.kubectl("wait", "--for=condition=Established", "--timeout=60s", *crds)
    op = rel.operator(
        plane,
        tmp_path_factory.mktemp("access"),
        "portico-access",
        PORTICO_INGRESS_CONTROLLER="traefik",
        PORTICO_PAGES_ERROR_MIDDLEWARE="portico-system/portico-pages-blocked",
    )
    op.start()
    try:
        yield op
    finally:
        op.stop()


def test_admission_refuses_bad_ranges_v4_and_v6(
    cluster: Cluster, namespace: str, instance: str
) -> None:
    for bad in ("203.0.113.7/24", "2001:db8::1/32", "2001:db8::/129", "203.0.113.7", "office"):
        body = portal("web", namespace, instance)
        body["spec"]["access"] = {"allowedSourceRanges": ["198.51.100.0/24", bad]}
        done = cluster.plane.kubectl("apply", "-f", "-", input=yaml.safe_dump(body), check=False)
        assert done.returncode != 0, bad
        assert "spec.access.allowedSourceRanges[1]" in done.stderr, done.stderr
        assert "CIDR range like 203.0.113.0/24" in done.stderr, done.stderr
    body = portal("web", namespace, instance)
    body["spec"]["access"] = {"allowedSourceRanges": [*RANGES, "::1/128", "0.0.0.0/0"]}
    cluster.apply(body)


def test_the_middleware_follows_the_list_and_goes_when_it_is_emptied(
    own_control_plane: ControlPlane, traefik_operator: Operator
) -> None:
    plane = own_control_plane
    cluster = Cluster(plane)
    ns = new_namespace(plane, "access")
    cluster.apply(portal("web", ns, rel.new_instance(cluster)))
    before = cluster.wait_phase(ns, "web", "Ready", timeout=STEP)
    middleware = names.allowlist_name("web")
    assert cluster.get("middleware.traefik.io", middleware, ns) is None  # no list, no child
    _ranges(plane, ns, "web", RANGES)

    def applied() -> dict | None:
        got = cluster.get("middleware.traefik.io", middleware, ns)
        ingress = cluster.get("ingress", "web", ns) or {}
        chain = (ingress["metadata"].get("annotations") or {}).get(access.TRAEFIK_MIDDLEWARES)
        return got if got and chain else None

    made = wait_for("the allow-list Middleware and its Ingress annotation", applied, timeout=STEP)
    assert made["spec"]["ipAllowList"] == {
        "sourceRange": RANGES,
        "rejectStatusCode": access.BLOCKED_STATUS,
    }
    owner = made["metadata"]["ownerReferences"][0]
    assert owner["uid"] == before["metadata"]["uid"] and owner["controller"] is True
    ingress = cluster.get("ingress", "web", ns)
    assert ingress is not None
    assert ingress["metadata"]["annotations"][access.TRAEFIK_MIDDLEWARES] == (
        f"portico-system-portico-pages-blocked@kubernetescrd,{ns}-{middleware}@kubernetescrd"
    )
    obj = cluster.wait_phase(ns, "web", "Ready", timeout=STEP)
    condition = _condition(obj, access.CONDITION)
    assert condition is not None and condition["reason"] == "Enforced"
    # A site operation: no provisioning attempt.
    assert obj["status"]["provisioning"]["attempt"] == before["status"]["provisioning"]["attempt"]
    # Deleted by hand, it is put back.
    plane.kubectl("delete", "middleware.traefik.io", middleware, "-n", ns)
    wait_for("the Middleware back", applied, timeout=STEP)
    _ranges(plane, ns, "web", [])
    wait_for(
        "the Middleware pruned",
        lambda: cluster.get("middleware.traefik.io", middleware, ns) is None,
        timeout=STEP,
    )

    def unannotated() -> bool:
        ingress = cluster.get("ingress", "web", ns) or {"metadata": {}}
        return access.TRAEFIK_MIDDLEWARES not in (ingress["metadata"].get("annotations") or {})

    wait_for("the Ingress without the chain", unannotated, timeout=STEP)
    obj = cluster.wait_phase(ns, "web", "Ready", timeout=STEP)
    assert _condition(obj, access.CONDITION) is None


def test_another_controller_says_the_list_is_not_enforced(
    cluster: Cluster, namespace: str, instance: str
) -> None:
    """The session's operator has no ingress controller setting (the chart's default)."""
    body = portal("web", namespace, instance)
    body["spec"]["access"] = {"allowedSourceRanges": RANGES}
    cluster.apply(body)
    obj = cluster.wait_phase(namespace, "web", "Ready", timeout=STEP)
    condition = _condition(obj, access.CONDITION)
    assert condition is not None and condition["status"] == "False"
    assert condition["reason"] == access.NOT_ENFORCED
    assert "NOT enforced" in condition["message"]
    wait_for(
        "the Warning Event",
        lambda: any(
            e.get("reason") == access.NOT_ENFORCED and e.get("type") == "Warning"
            for e in cluster.events(namespace, "web")
        ),
        timeout=STEP,
    )
    ingress = cluster.get("ingress", "web", namespace)
    assert ingress is not None
    assert not (ingress["metadata"].get("annotations") or {}).keys() & {
        access.TRAEFIK_MIDDLEWARES,
        access.NGINX_PREFIX + "allowlist-source-range",
    }
