"""No secret value reached a log line or an Event: this test's own, read and rotated here,
and every one the tier's other tests put into Secrets, whichever of them ran before it.

It runs alone or in any position: its own portal reads an instance's credentials, an
identity provider's client secret and an analytics shared key (the values a reconcile
copies into the portal's children) and gets session keys drawn by the operator, rotates
the analytics key, and only then reads the log.
"""

from __future__ import annotations

import base64
import json
import re
from typing import Any

from portico.core.names import SECRET_LABEL
from tests.support.controlplane import Cluster, Operator, wait_for

# Every secret value the tier's tests put into Secrets (see the tests that use them).
SECRETS = (
    "first-pfx-password-7",
    "second-pfx-password-9",
    "not-the-password",
    "do-not-log-this-oidc-secret",
    "first-key-value",
    "second-key-value",
    "instance-token",
)
OWN = ("leak-check-client-secret-31", "leak-check-key-one-47", "leak-check-key-two-53")
# A PEM block with its body (a message may well say "-----BEGIN CERTIFICATE-----" alone).
PEM_BODY = re.compile(r"-----BEGIN [A-Z ]+-----(\\n|\s)*[A-Za-z0-9+/]{40}")


def secret(name: str, namespace: str, **data: str) -> dict[str, Any]:
    encoded = {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace, "labels": {SECRET_LABEL: "portico"}},
        "data": encoded,
    }


def leaky_portal(namespace: str, instance: str) -> dict[str, Any]:
    idp = {
        "name": "corp",
        "issuer": "https://login.example",
        "clientId": "c",
        "clientSecretRef": {"name": "leak-idp", "key": "clientSecret"},
    }
    insights = {
        "hubUri": "https://hub.example.net",
        "policyName": "writer",
        "sharedKeySecretRef": {"name": "leak-hub", "key": "sharedKey"},
    }
    return {
        "apiVersion": "portico.dev/v1alpha1",
        "kind": "Portal",
        "metadata": {"name": "leak", "namespace": namespace},
        "spec": {
            "displayName": "Leak check",
            "subdomain": f"leak-{namespace}"[:63].rstrip("-"),
            "instanceRef": {"name": instance},
            "language": "en-US",
            "administrator": "jay@contoso.com",
            "audience": "Customer",
            "template": "CustomerSelfService",
            "authentication": {"identityProviders": [idp]},
            "analytics": {"customerInsights": insights},
        },
    }


def test_no_secret_in_any_log_line_or_event(
    cluster: Cluster, namespace: str, instance: str, operator: Operator
) -> None:
    client_secret, first_key, second_key = OWN
    cluster.apply(
        secret("leak-idp", namespace, clientSecret=client_secret),
        secret("leak-hub", namespace, sharedKey=first_key),
        leaky_portal(namespace, instance),
    )
    cluster.wait_phase(namespace, "leak", "Ready", timeout=120)

    def rollout() -> str:
        dep = cluster.get("deployment", "leak", namespace) or {}
        annotations = dep["spec"]["template"]["metadata"]["annotations"]
        return str(annotations["portico.dev/secrets-checksum"])

    before = rollout()
    cluster.apply(secret("leak-hub", namespace, sharedKey=second_key))
    wait_for("the Deployment to roll for the rotated key", lambda: rollout() != before)

    # The session key the operator drew for the portal (core/session_keys.py).
    session = cluster.get("secret", "leak-instance", namespace) or {}
    drawn = base64.b64decode((session.get("data") or {}).get("keys", "")).decode().split()
    assert drawn, "the operator made no session key"

    log = operator.log_text()
    assert "leak" in log, "the operator logged nothing of this test's portal"
    events = json.loads(cluster.plane.kubectl("get", "events", "-A", "-o", "json").stdout)
    text = log + json.dumps(events["items"])
    for value in (*OWN, *SECRETS, *drawn):
        for form in (value, base64.b64encode(value.encode()).decode()):
            assert form not in text, f"{value!r} leaked"
    assert not PEM_BODY.search(text), "a PEM body leaked"
