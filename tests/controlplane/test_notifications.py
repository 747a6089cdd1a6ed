"""Lifecycle notifications end to end: the real API server, the operator as a process, a real
SMTP server (tests/support/mailserver.py) and a real HTTP receiver (tests/support/webhook.py)
on loopback.

Each notification is an Event and, once, an e-mail to spec.administrator and a webhook
POST whose HMAC-SHA256 signature verifies with the key from the operator's Secret. A mail
server that is down delays the e-mail (retried) and blocks no reconcile; an operator
restart resends nothing and delivers what was still queued.
"""

from __future__ import annotations

import base64
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from portico.core import notifications as n
from tests.support.controlplane import OPERATOR_NAMESPACE, Cluster, Operator, wait_for
from tests.support.mailserver import MailServer
from tests.support.portals import portal
from tests.support.webhook import Receiver, running_receiver

# About 52 seconds: created inside the 1-day threshold, expired within the test.
TRIAL_DAYS = "0.0006"
KEY_SECRET = "portico-notification-key"
ADMIN = "ana@contoso.com"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as r:
        yield r


@pytest.fixture
def hmac_key(cluster: Cluster) -> bytes:
    key = secrets.token_bytes(32)
    cluster.apply(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": KEY_SECRET, "namespace": OPERATOR_NAMESPACE},
            "data": {"key": base64.b64encode(key).decode()},
        }
    )
    return key


@pytest.fixture
def notifier(
    cluster: Cluster,
    namespace: str,
    operator: Operator,
    mail_server: MailServer,
    receiver: Receiver,
    hmac_key: bytes,
    tmp_path: Path,
) -> Iterator[Operator]:
    """An operator of its own: a short trial and both channels (the shared one has neither)."""
    operator.stop()
    own = Operator(
        cluster.plane,
        operator.kubeconfig,
        tmp_path,
        PORTICO_WATCH_NAMESPACES=namespace,
        PORTICO_TRIAL_DAYS=TRIAL_DAYS,
        PORTICO_MAIL_HOST=mail_server.host,
        PORTICO_MAIL_PORT=str(mail_server.port),
        PORTICO_MAIL_FROM="portals@portico.test",
        PORTICO_MAIL_TLS="none",
        PORTICO_MAIL_TIMEOUT="3",
        PORTICO_NOTIFICATION_EMAIL="true",
        PORTICO_NOTIFICATION_WEBHOOK_URL=receiver.url,
        PORTICO_NOTIFICATION_WEBHOOK_SECRET=f"{OPERATOR_NAMESPACE}/{KEY_SECRET}",
        PORTICO_NOTIFICATION_RETRY_SECONDS="1",
    )
    try:
        own.start()
        yield own
    finally:
        own.stop()
        if mail_server._controller is None:
            mail_server.start()
        operator.start()


def mails(server: MailServer, portal_name: str) -> list[str]:
    """The reasons e-mailed about PORTAL_NAME (its display name is in the subject)."""
    tag = f"[Portal {portal_name}] "
    return [
        str(m.message["Subject"]).removeprefix(tag)
        for m in server.messages_to(ADMIN)
        if str(m.message["Subject"]).startswith(tag)
    ]


def wait_mail(server: MailServer, portal_name: str, reason: str, timeout: float = 60) -> None:
    wait_for(
        f"e-mail {reason} about {portal_name}",
        lambda: reason in mails(server, portal_name),
        timeout=timeout,
    )


def state(cluster: Cluster, namespace: str, name: str, value: str) -> None:
    cluster.plane.kubectl(
        "patch", "portal", name, "-n", namespace, "--type=merge",
        "-p", f'{{"spec": {{"state": "{value}"}}}}',
    )  # fmt: skip


def record(cluster: Cluster, namespace: str, name: str) -> dict[str, Any]:
    return dict(cluster.portal(namespace, name).get("status", {}).get("notifications") or {})


def assert_once_and_signed(receiver: Receiver, name: str, reasons: list[str], key: bytes) -> None:
    got = receiver.deliveries(name)
    assert sorted(d.json["reason"] for d in got) == sorted(reasons)
    assert len({d.headers[n.DELIVERY_HEADER] for d in got}) == len(got)
    for d in got:
        header = d.headers[n.SIGNATURE_HEADER]
        assert n.verify(key, header, d.body, now=int(time.time()), tolerance=600), header
        assert not n.verify(b"another key", header, d.body, now=int(time.time()))
        assert d.json["administrator"] == ADMIN


def test_each_notification_is_delivered_once_and_a_restart_resends_nothing(
    cluster: Cluster,
    namespace: str,
    instance: str,
    notifier: Operator,
    mail_server: MailServer,
    receiver: Receiver,
    hmac_key: bytes,
) -> None:
    cluster.apply(
        portal("trial", namespace, instance, type="Trial", administrator=ADMIN),
        portal("site", namespace, instance, type="Production", administrator=ADMIN),
    )
    # Created within a day of its end: the 1-day notice only (the 7-day one is past).
    wait_mail(mail_server, "trial", "TrialExpiringSoon")
    receiver.wait_for("trial", "TrialExpiringSoon")

    cluster.wait_phase(namespace, "site", "Ready")
    state(cluster, namespace, "site", "Stopped")
    wait_mail(mail_server, "site", "Stopped")
    cluster.wait_phase(namespace, "site", "Stopped")
    state(cluster, namespace, "site", "Running")
    wait_mail(mail_server, "site", "Started")
    receiver.wait_for("site", "Started")

    cluster.wait_phase(namespace, "trial", "Expired", timeout=120)
    wait_mail(mail_server, "trial", "TrialExpired")
    cluster.plane.kubectl(
        "patch", "portal", "trial", "-n", namespace, "--type=merge",
        "-p", '{"spec": {"type": "Production"}}',
    )  # fmt: skip
    wait_mail(mail_server, "trial", "TrialConverted")
    receiver.wait_for("trial", "TrialConverted")

    trial_reasons = ["TrialExpiringSoon", "TrialExpired", "TrialConverted"]

    def all_sent() -> bool:
        entries = [*record(cluster, namespace, "trial").values()]
        entries += record(cluster, namespace, "site").values()
        return len(entries) == 5 and all(
            e.get("email") == "Sent" and e.get("webhook") == "Sent" for e in entries
        )

    wait_for("every channel of every notification to be Sent", all_sent)
    assert sorted(record(cluster, namespace, "trial")) == [
        "TrialConverted", "TrialExpired", "TrialExpiringSoon-1d",
    ]  # fmt: skip
    events = [e["reason"] for e in cluster.events(namespace, "trial")]
    assert all(events.count(r) == 1 for r in trial_reasons), events
    site_events = [e["reason"] for e in cluster.events(namespace, "site")]
    assert site_events.count("Started") == 1, site_events
    [mail] = [m for m in mail_server.messages_to(ADMIN) if "TrialExpired" in m.message["Subject"]]
    assert "expired" in mail.text and "spec.type" in mail.text

    # A restart decides everything again from the record: nothing is sent twice.
    notifier.stop()
    notifier.start()
    time.sleep(15)  # a resync (10 s) after the first reconcile of each portal
    assert sorted(mails(mail_server, "trial")) == sorted(trial_reasons)
    assert sorted(mails(mail_server, "site")) == ["Started", "Stopped"]
    assert_once_and_signed(receiver, "trial", trial_reasons, hmac_key)
    assert_once_and_signed(receiver, "site", ["Stopped", "Started"], hmac_key)
    # The HMAC key is never logged nor put in an Event.
    for form in (hmac_key.hex(), base64.b64encode(hmac_key).decode()):
        assert form not in notifier.log_text()
        assert form not in str(cluster.events(namespace, "trial"))


def test_a_mail_server_that_is_down_delays_delivery_and_blocks_no_reconcile(
    cluster: Cluster,
    namespace: str,
    instance: str,
    notifier: Operator,
    mail_server: MailServer,
    receiver: Receiver,
) -> None:
    mail_server.stop()
    cluster.apply(portal("waiting", namespace, instance, type="Trial", administrator=ADMIN))
    receiver.wait_for("waiting", "TrialExpiringSoon")  # the webhook is up: it goes at once
    # Another portal reaches Ready meanwhile: delivery is off the reconcile path.
    cluster.apply(portal("other", namespace, instance, type="Production", administrator=ADMIN))
    cluster.wait_phase(namespace, "other", "Ready")
    entry = record(cluster, namespace, "waiting")["TrialExpiringSoon-1d"]
    assert entry["email"] == "Queued" and entry["webhook"] == "Sent"
    assert "could not be reached" in notifier.log_text()

    mail_server.start()
    wait_mail(mail_server, "waiting", "TrialExpiringSoon", timeout=90)
    wait_for(
        "the e-mail to be recorded Sent",
        lambda: record(cluster, namespace, "waiting")["TrialExpiringSoon-1d"]["email"] == "Sent",
    )

    # Queued across a restart: the record decides, and the new process delivers it.
    mail_server.stop()
    state(cluster, namespace, "other", "Stopped")

    def queued() -> bool:
        entry = record(cluster, namespace, "other").get("Stopped") or {}
        return entry.get("email") == "Queued" and entry.get("webhook") == "Sent"

    wait_for("Stopped to be queued for e-mail (and its webhook sent)", queued)
    notifier.stop()
    mail_server.start()
    notifier.start()
    wait_mail(mail_server, "other", "Stopped", timeout=90)
    time.sleep(5)
    assert mails(mail_server, "other") == ["Stopped"]
    assert [d.json["reason"] for d in receiver.deliveries("other")] == ["Stopped"]
    assert mails(mail_server, "waiting").count("TrialExpiringSoon") == 1
