"""Last in the tier: no secret used anywhere in the run reached a log line or an Event."""

from __future__ import annotations

import json
import re

import pytest

from tests.controlplane.harness import SEEN_CODES, Cluster, Operator

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
# A PEM block with its body (a message may well say "-----BEGIN CERTIFICATE-----" alone).
PEM_BODY = re.compile(r"-----BEGIN [A-Z ]+-----(\\n|\s)*[A-Za-z0-9+/]{40}")


def test_no_secret_in_any_log_line_or_event(cluster: Cluster, operator: Operator) -> None:
    log = operator.log_text()
    assert log, "the operator logged nothing at all"
    events = json.loads(cluster.plane.kubectl("get", "events", "-A", "-o", "json").stdout)
    text = log + json.dumps(events["items"])
    for value in SECRETS:
        assert value not in text, f"{value!r} leaked"
    assert not PEM_BODY.search(text), "a PEM body leaked"


def test_no_invitation_code_in_logs_events_status_or_config(
    cluster: Cluster, operator: Operator
) -> None:
    """Each code exists only in its e-mail and its link Secret (test_invitations.py)."""
    if not SEEN_CODES:
        pytest.skip("no invitation test ran in this session: no code to look for")
    plane = cluster.plane
    invitations = plane.kubectl("get", "portalinvitations", "-A", "-o", "json").stdout
    configmaps = plane.kubectl("get", "configmaps", "-A", "-o", "json").stdout
    events = plane.kubectl("get", "events", "-A", "-o", "json").stdout
    text = operator.log_text() + invitations + configmaps + events
    for code in SEEN_CODES:
        assert code not in text, "an invitation code leaked"
