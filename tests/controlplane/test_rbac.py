"""RBAC as small as the design allows (issue 19, part 9), on the real API server.

- Secrets are watched by label: a portal referencing a Secret nobody labelled
  `portico.dev/secret-for` says so by name (SecretNotLabelled) instead of Portico
  watching every Secret; labelling it is enough for the portal to continue.
- Namespaced mode with the chart's own ServiceAccount: the operator never sees (no
  status, no children) nor may touch a portal outside its namespaces, while a portal
  inside converges.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from portico.core.names import SECRET_LABEL
from tests.support.chart import (
    DENIED,
    chart_values,
    children,
    exclusive,
    installed,
    running,
)
from tests.support.controlplane import OPERATOR_NAMESPACE, Cluster, Operator, wait_for
from tests.support.dnsserver import AuthoritativeDNS
from tests.support.portals import portal, secret

IDP = [
    {
        "name": "corp",
        "issuer": "https://login.example",
        "clientId": "c",
        "clientSecretRef": {"name": "idp", "key": "clientSecret"},
    }
]


def unlabelled(name: str, namespace: str, **data: str) -> dict[str, Any]:
    body = secret(name, namespace, **data)
    del body["metadata"]["labels"]
    return body


def test_an_unlabelled_secret_is_named_and_labelling_it_is_enough(
    cluster: Cluster, namespace: str, instance: str
) -> None:
    cluster.apply(unlabelled("idp", namespace, clientSecret="s3cret"))
    cluster.apply(portal("web", namespace, instance, authentication={"identityProviders": IDP}))
    failed = cluster.wait_phase(namespace, "web", "Failed", "SecretNotLabelled")
    ready = cluster.condition(failed, "Ready")
    assert f"label secret idp {SECRET_LABEL}=web" in ready["message"], ready["message"]
    cluster.plane.kubectl("label", "secret", "idp", "-n", namespace, f"{SECRET_LABEL}=web")
    cluster.wait_phase(namespace, "web", "Ready")


def test_namespaced_mode_cannot_see_or_touch_another_namespace(
    cluster: Cluster,
    namespace: str,
    other_namespace: str,
    instance: str,
    dns: AuthoritativeDNS,
    operator: Operator,
    tmp_path: Path,
) -> None:
    values = chart_values(
        dns, watchNamespaces=[namespace], instanceCredentialsNamespaces=[OPERATOR_NAMESPACE]
    )
    with installed(cluster.plane, values, tmp_path, "portico-rbac") as release:
        env = release.operator_env()
        assert env["PORTICO_WATCH_NAMESPACES"] == namespace
        kubeconfig = release.kubeconfig()
        # The account itself: nothing in the other namespace, not even a read.
        for args in (
            ("get", "portals", "-n", other_namespace),
            ("get", "secrets", "-n", other_namespace),
            ("get", "deployments", "-n", other_namespace),
            ("patch", "portal", "outside", "-n", other_namespace, "--subresource=status",
             "--type=merge", "-p", '{"status": {"phase": "Ready"}}'),
        ):  # fmt: skip
            result = cluster.plane.kubectl(*args, check=False, kubeconfig_path=kubeconfig)
            assert result.returncode != 0 and "forbidden" in result.stderr.lower(), args
        op = Operator(cluster.plane, kubeconfig, tmp_path, **env)
        with exclusive(operator), running(op):
            cluster.apply(portal("outside", other_namespace, instance))
            cluster.apply(portal("inside", namespace, instance))
            cluster.wait_phase(namespace, "inside", "Ready")
            # Give a watch that should not exist time to act, then look.
            time.sleep(5)
            outside = cluster.portal(other_namespace, "outside")
            assert "status" not in outside or not outside["status"], outside.get("status")
            assert children(cluster, other_namespace, "outside") == []
        refusals = [line for line in op.log_text().splitlines() if DENIED.search(line)]
        assert refusals == [], "\n".join(refusals[:20])
    # Back with the shared cluster-wide operator, the outside portal converges: it was
    # only ever out of the namespaced operator's sight.
    wait_for(
        "the cluster-wide operator to reach the outside portal",
        lambda: (cluster.portal(other_namespace, "outside").get("status") or {}).get("phase"),
        timeout=90,
    )
