"""RBAC as small as the design allows (issue 19, part 9), on the real API server.

- Secrets are watched by label: a portal referencing a Secret nobody labelled
  `portico.dev/secret-for` says so by name (SecretNotLabelled) instead of Portico
  watching every Secret; labelling it is enough for the portal to continue.
- Namespaced mode with the chart's own ServiceAccount: the operator never sees (no
  status, no children) nor may touch a portal outside its namespaces, while a portal
  inside converges.
- `/metrics` behind the API server's authentication (`metrics.authenticate`): the real
  API server's TokenReview and SubjectAccessReview decide, with the chart's RBAC.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
import uuid
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


def scrape(op: Operator, token: str | None) -> tuple[int, str]:
    request = urllib.request.Request(f"http://127.0.0.1:{op.metrics_port}/metrics")
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def check_metrics_auth(cluster: Cluster, op: Operator, namespace: str) -> None:
    """No token 401, a stranger's token 403, a token whose user may get /metrics 200."""
    plane = cluster.plane
    reader = f"metrics-reader-{uuid.uuid4().hex[:6]}"
    plane.kubectl("create", "serviceaccount", reader, "-n", namespace)
    plane.kubectl(
        "create", "clusterrole", reader, "--verb=get", "--non-resource-url=/metrics"
    )  # fmt: skip
    try:
        plane.kubectl(
            "create", "clusterrolebinding", reader, f"--clusterrole={reader}",
            f"--serviceaccount={namespace}:{reader}",
        )  # fmt: skip
        allowed = plane.kubectl("create", "token", reader, "-n", namespace).stdout.strip()
        stranger = plane.kubectl("create", "token", "default", "-n", namespace).stdout.strip()
        assert scrape(op, None)[0] == 401
        assert scrape(op, "not-a-token")[0] == 401
        assert scrape(op, stranger)[0] == 403
        code, text = scrape(op, allowed)
        assert code == 200 and "portico_" in text, (code, text[:200])
    finally:
        plane.kubectl("delete", "clusterrolebinding", reader, check=False)
        plane.kubectl("delete", "clusterrole", reader, check=False)


def test_namespaced_mode_cannot_see_or_touch_another_namespace_and_metrics_need_a_token(
    cluster: Cluster,
    namespace: str,
    other_namespace: str,
    instance: str,
    dns: AuthoritativeDNS,
    operator: Operator,
    tmp_path: Path,
) -> None:
    values = chart_values(
        dns,
        watchNamespaces=[namespace],
        instanceCredentialsNamespaces=[OPERATOR_NAMESPACE],
        metrics={"authenticate": True},
    )
    with installed(cluster.plane, values, tmp_path, "portico-rbac") as release:
        env = release.operator_env()
        assert env["PORTICO_WATCH_NAMESPACES"] == namespace
        assert env["PORTICO_METRICS_AUTH"] == "true"
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
            check_metrics_auth(cluster, op, namespace)
        refusals = [line for line in op.log_text().splitlines() if DENIED.search(line)]
        assert refusals == [], "\n".join(refusals[:20])
    # Back with the shared cluster-wide operator, the outside portal converges: it was
    # only ever out of the namespaced operator's sight.
    wait_for(
        "the cluster-wide operator to reach the outside portal",
        lambda: (cluster.portal(other_namespace, "outside").get("status") or {}).get("phase"),
        timeout=90,
    )
