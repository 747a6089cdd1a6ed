"""The chart's ValidatingAdmissionPolicy on the real API server: hosts under the base
domain belong to Portico, so only the operator's ServiceAccount may route them."""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from pathlib import Path

from portico_dev import ControlPlane
from tests.support.chart import CHART

TEMPLATE = "templates/hostpolicy.yaml"
REFUSED = "belong to Portico"


def render_policy(plane: ControlPlane, release: str, namespace: str, base: str, home: Path) -> str:
    """The policy exactly as `helm install` would create it (the chart's own template)."""
    cmd = [str(plane.bins["helm"]), "template", release, str(CHART), "--namespace", namespace]
    cmd += ["--set", f"baseDomain={base}", "--show-only", TEMPLATE]
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


def create_as(
    plane: ControlPlane, user: str, namespace: str, manifest: str, *extra: str
) -> subprocess.CompletedProcess[str]:
    return plane.kubectl(
        f"--as={user}", "create", "-n", namespace, "-f", "-", *extra, input=manifest, check=False
    )


def test_only_the_operator_routes_hosts_under_the_base_domain(
    control_plane: ControlPlane, namespace: str, tmp_path: Path
) -> None:
    plane = control_plane
    # A base domain and release of this test's own: the policy is cluster-scoped and
    # must not refuse other tests' Ingresses on the shared control plane.
    base = f"hp-{uuid.uuid4().hex[:6]}.portico.test"
    release = f"hp{uuid.uuid4().hex[:4]}"
    policy = render_policy(plane, release, namespace, base, tmp_path)
    operator = f"system:serviceaccount:{namespace}:{release}-portico"
    tenant = f"system:serviceaccount:{namespace}:tenant"
    for account in (f"{release}-portico", "tenant"):
        plane.kubectl("create", "serviceaccount", account, "-n", namespace)
        plane.kubectl(
            "create", "rolebinding", f"{account}-edit", "-n", namespace,
            "--clusterrole=edit", f"--serviceaccount={namespace}:{account}",
        )  # fmt: skip
    plane.kubectl("apply", "-f", "-", input=policy)
    try:
        # The API server loads a new policy asynchronously: probe with server-side
        # dry runs (admission runs on them too) until it refuses.
        squat = ingress("squat", f"squat.{base}")
        deadline = time.monotonic() + 60
        while True:
            probe = create_as(plane, tenant, namespace, squat, "--dry-run=server")
            if probe.returncode != 0 or time.monotonic() > deadline:
                break
            time.sleep(0.5)

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
