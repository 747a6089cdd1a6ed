"""PortalInvitation end to end: the real API server, the operator as a process, a real SMTP
server on loopback (aiosmtpd, tests/support/mailserver.py) and the stand-in instance over HTTP.

The e-mail's link carries a code that redeems at the instance; the status follows
(Sent -> Redeemed); delivery None writes the link Secret; revoked and expired show in
`kubectl get`; a mail server that refuses or is down is DeliveryFailed, then Sent once it
is back. Every code seen is handed to test_zz_no_secrets, which looks for it in the
operator's log and every Event of the run.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from portico.core.names import SECRET_LABEL
from tests.support import badinput
from tests.support.argocd import health
from tests.support.controlplane import (
    BASE_DOMAIN,
    OPERATOR_NAMESPACE,
    SEEN_CODES,
    Cluster,
    Operator,
    wait_for,
)
from tests.support.mailserver import MailServer
from tests.support.runtime import TOKEN, running_instance

LINK = re.compile(r"https://\S+/register\?invitation=([A-Za-z0-9_-]+)")


@pytest.fixture(scope="module")
def crm_url() -> Iterator[str]:
    """The stand-in instance on loopback: the operator registers and reads invitations there."""
    with running_instance() as (url, _):
        yield url


@pytest.fixture
def portal(cluster: Cluster, namespace: str, crm_url: str) -> Iterator[str]:
    """A Portal in NAMESPACE linked to an instance whose URL is the stand-in."""
    instance = f"inv-crm-{uuid.uuid4().hex[:6]}"
    cluster.apply(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": f"{instance}-credentials",
                "namespace": OPERATOR_NAMESPACE,
                "labels": {SECRET_LABEL: "portico"},
            },
            "stringData": {"token": TOKEN},
        },
        {
            "apiVersion": "portico.dev/v1alpha1",
            "kind": "PortalInstance",
            "metadata": {"name": instance},
            "spec": {
                "url": crm_url,
                "credentialsSecretRef": {
                    "namespace": OPERATOR_NAMESPACE,
                    "name": f"{instance}-credentials",
                },
                "languages": ["en-US", "de-DE"],
                "administrators": ["jay@contoso.com"],
                "allowedNamespaces": {"from": "All"},
                "insecure": True,
            },
        },
        {
            "apiVersion": "portico.dev/v1alpha1",
            "kind": "Portal",
            "metadata": {"name": "support", "namespace": namespace},
            "spec": {
                "displayName": "Contoso Support",
                "subdomain": f"support-{namespace}"[:63].rstrip("-"),
                "instanceRef": {"name": instance},
                "language": "de-DE",
                "administrator": "jay@contoso.com",
                "audience": "Customer",
                "template": "CustomerSelfService",
            },
        },
    )
    yield "support"
    cluster.plane.kubectl("delete", "portalinstance", instance, "--wait=false", check=False)


def invitation(name: str, namespace: str, email: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "portico.dev/v1alpha1",
        "kind": "PortalInvitation",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "portalRef": {"name": "support"},
            "contact": {"email": email, "firstName": "Ann", "lastName": "Lee"},
            "webRoles": ["Customers"],
            **spec,
        },
    }


def call(url: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url + path, data=data, method=method)
    request.add_header("Authorization", f"Bearer {TOKEN}")
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            raw = answer.read()
            return answer.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as err:
        raw = err.read()
        return err.code, json.loads(raw) if raw else None


def get(cluster: Cluster, namespace: str, name: str) -> dict[str, Any]:
    obj = cluster.get("portalinvitation", name, namespace)
    assert obj is not None, f"invitation {namespace}/{name} is gone"
    return obj


def wait_state(
    cluster: Cluster, namespace: str, name: str, state: str, timeout: float = 60.0
) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        obj = get(cluster, namespace, name)
        return obj if (obj.get("status") or {}).get("state") == state else None

    try:
        return wait_for(f"invitation {name} to be {state}", probe, timeout)
    except AssertionError as err:
        status = json.dumps(get(cluster, namespace, name).get("status"), indent=1)
        raise AssertionError(f"{err}\nstatus: {status}") from None


def code_from(text: str, namespace: str) -> str:
    found = LINK.search(text)
    assert found, f"no link in {text!r}"
    code = found.group(1)
    SEEN_CODES.append(code)
    assert len(base64.urlsafe_b64decode(code + "=" * (-len(code) % 4))) >= 32
    return code


def portal_path(namespace: str) -> str:
    return f"/portico/v1/portals/{namespace}/support"


def assert_code_kept_secret(cluster: Cluster, operator: Operator, code: str) -> None:
    """The code exists only in its e-mail and its link Secret: never in the operator's log,
    an Event, an invitation's status or a ConfigMap, in any namespace."""
    plane = cluster.plane
    invitations = plane.kubectl("get", "portalinvitations", "-A", "-o", "json").stdout
    configmaps = plane.kubectl("get", "configmaps", "-A", "-o", "json").stdout
    events = plane.kubectl("get", "events", "-A", "-o", "json").stdout
    text = operator.log_text() + invitations + configmaps + events
    assert code not in text, "an invitation code leaked"


def test_an_e_mailed_code_redeems_at_the_instance_and_status_follows(
    cluster: Cluster,
    operator: Operator,
    namespace: str,
    portal: str,
    crm_url: str,
    mail_server: MailServer,
) -> None:
    email = f"ann-{namespace}@example.com"
    cluster.apply(invitation("ann", namespace, email))
    [mail] = mail_server.wait_for(email)
    assert mail.message["Subject"] == "Ihre Einladung zu Contoso Support"  # the portal's language
    assert mail.sender == "portals@portico.test"
    code = code_from(mail.text, namespace)
    subdomain = f"support-{namespace}"[:63].rstrip("-")
    assert f"https://{subdomain}.{BASE_DOMAIN}/register?invitation={code}" in mail.text

    sent = wait_state(cluster, namespace, "ann", "Sent")
    assert sent["status"]["sentAt"]
    assert cluster.condition(sent, "Delivered")["reason"] == "Sent"
    uid = sent["metadata"]["uid"]
    # The instance keeps only the hash of the code.
    status, registered = call(crm_url, "GET", f"{portal_path(namespace)}/invitations/{uid}")
    assert status == 200
    assert registered["codeHash"] == "sha256:" + hashlib.sha256(code.encode()).hexdigest()

    answer = call(
        crm_url,
        "POST",
        f"{portal_path(namespace)}/invitations/redeem",
        {"code": code, "contactId": "contact-ann"},
    )
    assert answer == (200, {"state": "Valid", "webRoles": ["Customers"]})
    redeemed = wait_state(cluster, namespace, "ann", "Redeemed")
    assert [r["contact"] for r in redeemed["status"]["redemptions"]] == ["contact-ann"]
    assert redeemed["status"]["redeemed"] == 1
    assert health(redeemed) == {"status": "Healthy", "message": "Redeemed"}
    table = cluster.plane.kubectl("get", "portalinvitations", "-n", namespace).stdout
    assert table.splitlines()[0].split() == [
        "NAME", "STATE", "PORTAL", "CONTACT", "REDEEMED", "EXPIRES",
    ]  # fmt: skip
    assert re.search(rf"^ann\s+Redeemed\s+support\s+{re.escape(email)}\s+1\s", table, re.M), table
    # A second person is refused: a Single invitation is used.
    second = call(
        crm_url,
        "POST",
        f"{portal_path(namespace)}/invitations/redeem",
        {"code": code, "contactId": "contact-bob"},
    )
    assert second == (409, {"reason": "Used"})
    assert code not in json.dumps(redeemed)
    assert len(mail_server.messages_to(email)) == 1
    assert_code_kept_secret(cluster, operator, code)


def test_delivery_none_writes_the_link_secret_owned_by_the_invitation(
    cluster: Cluster, namespace: str, portal: str, crm_url: str, mail_server: MailServer
) -> None:
    email = f"handover-{namespace}@example.com"
    cluster.apply(invitation("handover", namespace, email, delivery="None"))
    sent = wait_state(cluster, namespace, "handover", "Sent")
    assert sent["status"]["linkSecret"] == "handover-link"
    assert cluster.condition(sent, "Delivered")["reason"] == "LinkWritten"
    secret = cluster.get("secret", "handover-link", namespace)
    assert secret is not None
    [owner] = secret["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["uid"], owner["controller"]) == (
        "PortalInvitation",
        sent["metadata"]["uid"],
        True,
    )
    code = code_from(base64.b64decode(secret["data"]["link"]).decode(), namespace)
    check = call(crm_url, "POST", f"{portal_path(namespace)}/invitations/check", {"code": code})
    assert check == (200, {"state": "Valid", "webRoles": ["Customers"]})
    time.sleep(2)
    assert mail_server.messages_to(email) == [], "delivery None sent an e-mail"


def test_revoked_and_expired_show_in_kubectl_get(
    cluster: Cluster, namespace: str, portal: str, crm_url: str
) -> None:
    cluster.apply(
        invitation("late", namespace, f"late-{namespace}@example.com", delivery="None",
                   expiresAt="2020-01-01T00:00:00Z"),
        invitation("withdrawn", namespace, f"w-{namespace}@example.com", delivery="None"),
    )  # fmt: skip
    wait_state(cluster, namespace, "withdrawn", "Sent")
    secret = cluster.get("secret", "withdrawn-link", namespace)
    assert secret is not None
    code = code_from(base64.b64decode(secret["data"]["link"]).decode(), namespace)
    cluster.plane.kubectl(
        "patch", "portalinvitation", "withdrawn", "-n", namespace,
        "--type=merge", "-p", '{"spec": {"revoked": true}}',
    )  # fmt: skip
    wait_state(cluster, namespace, "withdrawn", "Revoked")
    wait_state(cluster, namespace, "late", "Expired")
    table = cluster.plane.kubectl("get", "portalinvitations", "-n", namespace).stdout
    assert re.search(r"^late\s+Expired\s", table, re.M), table
    assert re.search(r"^withdrawn\s+Revoked\s", table, re.M), table

    def revoked_at_instance() -> bool:
        answer = call(
            crm_url, "POST", f"{portal_path(namespace)}/invitations/check", {"code": code}
        )
        return answer == (410, {"reason": "Revoked"})

    wait_for("the instance to refuse the revoked code", revoked_at_instance, 30)
    # Argo CD's view of the same real objects (charts/portico/health/portalinvitation.lua).
    assert health(get(cluster, namespace, "withdrawn"))["status"] == "Healthy"
    assert health(get(cluster, namespace, "late"))["status"] == "Degraded"
    # Revocation is final: admission refuses to take it back.
    back = cluster.plane.kubectl(
        "patch", "portalinvitation", "withdrawn", "-n", namespace,
        "--type=merge", "-p", '{"spec": {"revoked": false}}', check=False,
    )  # fmt: skip
    assert back.returncode != 0 and "cannot be reinstated" in back.stderr


def test_delivery_failed_with_the_servers_answer_then_sent_when_it_is_back(
    cluster: Cluster, namespace: str, portal: str, mail_server: MailServer
) -> None:
    email = f"refused-{namespace}@example.com"
    mail_server.refuse[email] = "550 5.1.1 mailbox unavailable"
    try:
        cluster.apply(invitation("refused", namespace, email))

        def failed() -> dict[str, Any] | None:
            obj = get(cluster, namespace, "refused")
            c = cluster.condition(obj, "Delivered")
            return obj if c.get("reason") == "DeliveryFailed" else None

        obj = wait_for("DeliveryFailed", failed, 60)
        assert health(obj)["status"] == "Degraded"
        message = cluster.condition(obj, "Delivered")["message"]
        assert "550 5.1.1 mailbox unavailable" in message
        assert obj["status"]["state"] == "Pending"
        events = cluster.events(namespace, "refused")
        assert any(e["reason"] == "DeliveryFailed" and e["type"] == "Warning" for e in events)
        # Now the server itself is down: still DeliveryFailed, saying so.
        mail_server.stop()
        del mail_server.refuse[email]
        wait_for(
            "the down server in the message",
            lambda: (
                "could not be reached"
                in cluster.condition(get(cluster, namespace, "refused"), "Delivered").get(
                    "message", ""
                )
            ),
            60,
        )
    finally:
        mail_server.refuse.pop(email, None)
        if mail_server._controller is None:
            mail_server.start()
    sent = wait_state(cluster, namespace, "refused", "Sent", timeout=90)
    assert cluster.condition(sent, "Delivered")["reason"] == "Sent"
    assert "deliveryAttempts" not in sent["status"]
    [mail] = mail_server.wait_for(email)
    code_from(mail.text, namespace)


def test_resend_sends_once_per_token_and_a_restart_sends_nothing_again(
    cluster: Cluster, namespace: str, portal: str, mail_server: MailServer, operator: Operator
) -> None:
    email = f"again-{namespace}@example.com"
    cluster.apply(invitation("again", namespace, email))
    [first] = mail_server.wait_for(email)
    wait_state(cluster, namespace, "again", "Sent")
    cluster.plane.kubectl(
        "patch", "portalinvitation", "again", "-n", namespace,
        "--type=merge", "-p", '{"spec": {"resend": "monday"}}',
    )  # fmt: skip
    second = mail_server.wait_for(email, count=2)[1]
    assert code_from(second.text, namespace) == code_from(first.text, namespace)  # the same code
    wait_for(
        "resend echoed",
        lambda: get(cluster, namespace, "again")["status"].get("lastHandledResend") == "monday",
        30,
    )
    operator.stop()
    operator.start()
    time.sleep(5)  # several polls of the restarted operator
    assert len(mail_server.messages_to(email)) == 2


def test_undo_removes_a_wrong_redemption_and_its_roles(
    cluster: Cluster, namespace: str, portal: str, crm_url: str, mail_server: MailServer
) -> None:
    email = f"undo-{namespace}@example.com"
    cluster.apply(invitation("undo", namespace, email))
    code = code_from(mail_server.wait_for(email)[0].text, namespace)
    path = portal_path(namespace)
    call(crm_url, "POST", f"{path}/invitations/redeem", {"code": code, "contactId": "wrong"})
    wait_state(cluster, namespace, "undo", "Redeemed")
    assert call(crm_url, "GET", f"{path}/invitations/roles?contact=wrong")[1] == {
        "webRoles": ["Customers"]
    }
    cluster.plane.kubectl(
        "patch", "portalinvitation", "undo", "-n", namespace,
        "--type=merge", "-p", '{"spec": {"undoRedemptions": ["wrong"]}}',
    )  # fmt: skip
    obj = wait_state(cluster, namespace, "undo", "Sent")
    assert obj["status"]["redemptions"] == []
    assert call(crm_url, "GET", f"{path}/invitations/roles?contact=wrong")[1] == {"webRoles": []}
    right = call(
        crm_url, "POST", f"{path}/invitations/redeem", {"code": code, "contactId": "right"}
    )
    assert right[0] == 200


def test_a_missing_portal_is_named_and_a_deleted_invitation_stops_working(
    cluster: Cluster, namespace: str, portal: str, crm_url: str
) -> None:
    orphan = invitation("orphan", namespace, f"o-{namespace}@example.com", delivery="None")
    orphan["spec"]["portalRef"] = {"name": "no-such-portal"}
    cluster.apply(
        orphan, invitation("gone", namespace, f"g-{namespace}@example.com", delivery="None")
    )

    def not_found() -> dict[str, Any] | None:
        c = cluster.condition(get(cluster, namespace, "orphan"), "Registered")
        return c if c.get("reason") == "PortalNotFound" else None

    condition = wait_for("PortalNotFound", not_found, 60)
    assert (
        "no-such-portal" in condition["message"] and "spec.portalRef.name" in condition["message"]
    )
    wait_state(cluster, namespace, "gone", "Sent")
    secret = cluster.get("secret", "gone-link", namespace)
    assert secret is not None
    code = code_from(base64.b64decode(secret["data"]["link"]).decode(), namespace)
    cluster.plane.kubectl("delete", "portalinvitation", "gone", "-n", namespace, "--timeout=60s")
    answer = call(crm_url, "POST", f"{portal_path(namespace)}/invitations/check", {"code": code})
    assert answer == (410, {"reason": "Revoked"})


@pytest.mark.parametrize("bad", badinput.INVITATIONS, ids=[b.name for b in badinput.INVITATIONS])
def test_each_bad_invitation_gets_its_reason_and_fix(
    cluster: Cluster,
    namespace: str,
    portal: str,
    mail_server: MailServer,
    bad: badinput.BadInvitation,
) -> None:
    email = f"{bad.name}-{namespace}@example.com"
    if bad.refuse:
        mail_server.refuse[email] = bad.refuse
    doc = invitation(bad.name, namespace, email)
    doc["spec"].update(bad.spec)
    try:
        cluster.apply(doc)

        def named() -> dict[str, Any] | None:
            obj = get(cluster, namespace, bad.name)
            c = cluster.condition(obj, bad.condition)
            state = (obj.get("status") or {}).get("state")
            return obj if c.get("reason") == bad.reason and state == bad.state else None

        obj = wait_for(f"{bad.reason} on {bad.name}", named, 60)
    finally:
        mail_server.refuse.pop(email, None)
    message = cluster.condition(obj, bad.condition)["message"]
    assert bad.fix in message, message
    assert "Traceback" not in json.dumps(obj["status"])
