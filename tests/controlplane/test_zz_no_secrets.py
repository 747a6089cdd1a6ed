"""Last in the tier: no secret used anywhere in the run reached a log line or an Event."""

from __future__ import annotations

import json

from tests.controlplane.harness import Cluster, Operator

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
PEM_MARKERS = ("BEGIN PRIVATE KEY", "BEGIN RSA PRIVATE KEY", "BEGIN CERTIFICATE", "BEGIN ENCRYPTED")


def test_no_secret_in_any_log_line_or_event(cluster: Cluster, operator: Operator) -> None:
    log = operator.log_text()
    assert log, "the operator logged nothing at all"
    events = json.loads(cluster.plane.kubectl("get", "events", "-A", "-o", "json").stdout)
    text = log + json.dumps(events["items"])
    for value in SECRETS + PEM_MARKERS:
        assert value not in text, f"{value!r} leaked"
