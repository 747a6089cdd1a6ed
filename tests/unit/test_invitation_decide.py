"""The invitation's decisions, without a cluster: states, expiry, delivery rounds, undo."""

from __future__ import annotations

import copy
import dataclasses
import datetime
from typing import Any

from portico.api import crds, model, validation
from portico.core import names
from portico.core.invitation import (
    Delivery,
    Observed,
    Redemption,
    Remote,
    decide,
    expires_after,
    registration,
    sending_marker,
)

NOW = datetime.datetime(2030, 1, 10, 12, 0, tzinfo=datetime.UTC)
HASH = "sha256:" + "ab" * 32
PORTAL = model.parse_portal(
    {
        "metadata": {"name": "contoso", "namespace": "support", "uid": "p-1"},
        "spec": {
            "displayName": "Contoso",
            "subdomain": "contoso",
            "instanceRef": {"name": "crm"},
            "language": "de-DE",
            "administrator": "jay@contoso.com",
            "audience": "Customer",
            "template": "CustomerSelfService",
        },
    }
)


def invitation(spec: dict[str, Any] | None = None, **meta: Any) -> dict[str, Any]:
    obj = {
        "apiVersion": "portico.dev/v1alpha1",
        "kind": "PortalInvitation",
        "metadata": {
            "name": "ann",
            "namespace": "support",
            "uid": "i-1",
            "generation": 1,
            "creationTimestamp": "2030-01-10T00:00:00Z",
            "finalizers": [names.INVITATION_FINALIZER],
            **meta,
        },
        "spec": {
            "portalRef": {"name": "contoso"},
            "contact": {"email": "ann@example.com", "firstName": "Ann"},
            **(spec or {}),
        },
    }
    return obj


def observed(obj: dict[str, Any], status: dict[str, Any] | None = None, **fields: Any) -> Observed:
    obj = copy.deepcopy(obj)
    if status is not None:
        obj["status"] = status
    schema = crds.schema_for("PortalInvitation")
    inv = model.parse_invitation(validation.apply_defaults(schema, copy.deepcopy(obj)))
    base: dict[str, Any] = {
        "obj": obj,
        "invitation": inv,
        "portal": PORTAL,
        "instance_found": True,
        "credentials_found": True,
        "link_hash": HASH,
        "remote": Remote(registration(inv, HASH)),
        "mail_configured": True,
    }
    return Observed(**{**base, **fields})


def run(o: Observed, now: datetime.datetime = NOW) -> Any:
    return decide(o, now, poll_seconds=30.0, retry_base=5.0)


def test_a_new_invitation_first_gets_its_code_then_registers_only_the_hash() -> None:
    o = observed(invitation(), link_hash=None, remote=None)
    assert run(o).make_link
    plan = run(dataclasses.replace(o, link_hash=HASH))
    assert plan.register is not None and plan.register["codeHash"] == HASH
    assert set(plan.register) == {
        "codeHash", "type", "maxRedemptions", "expiresAt", "webRoles", "contact", "revoked",
    }  # fmt: skip
    assert plan.send == ""  # the first round
    assert plan.status["state"] == "Pending"


def test_expiry_defaults_to_seven_days_and_reads_days_hours_minutes() -> None:
    assert expires_after(None) == datetime.timedelta(days=7)
    assert expires_after("1d12h") == datetime.timedelta(days=1, hours=12)
    assert expires_after("90m") == datetime.timedelta(minutes=90)
    plan = run(observed(invitation()))
    assert plan.status["expiresAt"] == "2030-01-17T00:00:00Z"
    at = run(observed(invitation({"expiresAt": "2030-02-01T00:00:00Z"})))
    assert at.status["expiresAt"] == "2030-02-01T00:00:00Z"


def test_a_sent_invitation_is_polled_until_it_is_redeemed_then_left_alone() -> None:
    sent = {"sentAt": "2030-01-10T01:00:00Z", "lastHandledResend": "", "state": "Sent"}
    plan = run(observed(invitation(), sent))
    assert plan.send is None and plan.register is None
    assert plan.status["state"] == "Sent" and plan.requeue_after == 30.0
    redeemed = Remote(
        registration(observed(invitation()).invitation, HASH),
        (Redemption("contact-7", "2030-01-10T02:00:00Z"),),
    )
    plan = run(observed(invitation(), sent, remote=redeemed))
    assert plan.status["state"] == "Redeemed"
    assert plan.status["redemptions"] == [{"contact": "contact-7", "at": "2030-01-10T02:00:00Z"}]
    assert plan.status["redeemed"] == 1
    assert plan.requeue_after is None  # terminal: no more polling
    assert any(e.reason == "Redeemed" for e in plan.events)


def test_a_group_invitation_is_redeemed_at_its_maximum_and_never_when_unlimited() -> None:
    sent = {"sentAt": "2030-01-10T01:00:00Z", "lastHandledResend": "", "state": "Sent"}
    two = tuple(Redemption(f"c{n}", "2030-01-10T02:00:00Z") for n in range(2))
    for maximum, state in ((2, "Redeemed"), (3, "Sent"), (0, "Sent")):
        obj = invitation({"type": "Group", "maxRedemptions": maximum})
        o = observed(obj, sent)
        o = dataclasses.replace(o, remote=Remote(registration(o.invitation, HASH), two))
        assert run(o).status["state"] == state, maximum


def test_expired_and_revoked_show_and_revocation_reaches_the_instance() -> None:
    sent = {"sentAt": "2030-01-10T01:00:00Z", "lastHandledResend": "", "state": "Sent"}
    later = NOW + datetime.timedelta(days=8)
    plan = run(observed(invitation(), sent), later)
    assert plan.status["state"] == "Expired" and plan.requeue_after is None
    before = Remote(registration(observed(invitation()).invitation, HASH))
    plan = run(observed(invitation({"revoked": True}), sent, remote=before))
    assert plan.status["state"] == "Revoked"
    assert plan.register is not None and plan.register["revoked"] is True
    # Expiry is a moment the poll wakes up for.
    soon = run(observed(invitation({"expiresAt": "2030-01-10T12:00:10Z"}), sent))
    assert soon.requeue_after == 11.0


def test_resend_is_one_e_mail_per_token_echoed_in_status() -> None:
    sent = {"sentAt": "2030-01-10T01:00:00Z", "lastHandledResend": "", "state": "Sent"}
    o = observed(invitation({"resend": "monday"}), sent)
    assert run(o).send == "monday"
    done = run(dataclasses.replace(o, delivery=Delivery("monday", True)))
    assert done.status["lastHandledResend"] == "monday" and done.send is None
    assert done.status["sentAt"] == names.iso(NOW)
    handled = {**done.status}
    assert run(observed(invitation({"resend": "monday"}), handled)).send is None


def test_a_send_cut_short_by_a_restart_is_not_repeated() -> None:
    inflight = {"state": "Pending", "sending": sending_marker("")}
    plan = run(observed(invitation(), inflight))
    assert plan.send is None
    delivered = next(c for c in plan.status["conditions"] if c["type"] == "Delivered")
    assert (delivered["status"], delivered["reason"]) == ("Unknown", "DeliveryUncertain")
    assert "spec.resend" in delivered["message"]
    assert "sending" not in plan.status


def test_a_failed_delivery_names_the_server_answer_and_backs_off() -> None:
    o = observed(invitation(), {"state": "Pending"})
    failed = run(
        dataclasses.replace(o, delivery=Delivery("", False, "the mail server answered 550 no"))
    )
    delivered = next(c for c in failed.status["conditions"] if c["type"] == "Delivered")
    assert delivered["reason"] == "DeliveryFailed" and "550 no" in delivered["message"]
    assert failed.status["deliveryAttempts"] == 1 and failed.requeue_after == 5.0
    assert any(e.reason == "DeliveryFailed" and e.type == "Warning" for e in failed.events)
    # Within the backoff nothing is sent; after it, the next attempt goes out.
    waiting = run(observed(invitation(), failed.status), NOW + datetime.timedelta(seconds=2))
    assert waiting.send is None and waiting.requeue_after == 3.0
    assert waiting.events == []  # waiting out the backoff is no new Event
    again = run(observed(invitation(), failed.status), NOW + datetime.timedelta(seconds=6))
    assert again.send == ""
    second = run(
        dataclasses.replace(
            observed(invitation(), failed.status), delivery=Delivery("", False, "421 busy")
        ),
        NOW + datetime.timedelta(seconds=6),
    )
    assert second.status["deliveryAttempts"] == 2 and second.requeue_after == 10.0
    assert [e.reason for e in second.events] == ["DeliveryFailed"]


def test_delivery_none_writes_the_link_and_needs_no_mail_server() -> None:
    o = observed(invitation({"delivery": "None", "contact": None}), {}, mail_configured=False)
    plan = run(o)
    assert plan.send is None and plan.status["state"] == "Sent"
    assert plan.status["linkSecret"] == "ann-link"
    delivered = next(c for c in plan.status["conditions"] if c["type"] == "Delivered")
    assert delivered["reason"] == "LinkWritten"


def test_email_without_a_mail_server_says_how_to_fix_it() -> None:
    plan = run(observed(invitation(), {}, mail_configured=False))
    delivered = next(c for c in plan.status["conditions"] if c["type"] == "Delivered")
    assert delivered["reason"] == "MailNotConfigured" and "mail.host" in delivered["message"]
    assert plan.send is None


def test_undo_deletes_only_standing_redemptions_of_the_named_contacts() -> None:
    sent = {"sentAt": "2030-01-10T01:00:00Z", "lastHandledResend": "", "state": "Redeemed"}
    obj = invitation({"undoRedemptions": ["wrong-person", "never-redeemed"]})
    o = observed(obj, sent)
    o = dataclasses.replace(
        o,
        remote=Remote(
            registration(o.invitation, HASH), (Redemption("wrong-person", "2030-01-10T02:00:00Z"),)
        ),
    )
    plan = run(o)
    assert plan.undo == ("wrong-person",)
    assert plan.status["redemptions"] == [] and plan.status["state"] == "Sent"


def test_missing_portal_instance_or_credentials_each_have_a_reason() -> None:
    cases = {
        "PortalNotFound": {"portal": None},
        "InstanceNotFound": {"instance_found": False},
        "CredentialsNotFound": {"credentials_found": False},
        "InstanceUnavailable": {"remote": None, "remote_error": "connection refused"},
    }
    for reason, fields in cases.items():
        plan = run(observed(invitation(), {}, **fields))
        registered = next(c for c in plan.status["conditions"] if c["type"] == "Registered")
        assert registered["reason"] == reason and registered["status"] == "False"
        assert plan.register is None and plan.send is None
        assert plan.status["state"] == "Pending"


def test_deleting_revokes_at_the_instance_then_lets_go() -> None:
    obj = invitation(deletionTimestamp="2030-01-10T12:00:00Z")
    plan = run(observed(obj))
    assert plan.register is not None and plan.register["revoked"] is True
    assert plan.remove_finalizer and plan.status is None
    unreachable = run(observed(obj, remote=None, remote_error="refused"))
    assert not unreachable.remove_finalizer and unreachable.requeue_after
    gone = run(observed(obj, portal=None))
    assert gone.remove_finalizer and gone.register is None


def test_the_finalizer_is_added_first() -> None:
    obj = invitation()
    obj["metadata"]["finalizers"] = []
    assert run(observed(obj)).add_finalizer
    assert not run(observed(invitation())).add_finalizer


def test_a_large_group_lists_its_newest_redemptions_and_counts_them_all() -> None:
    sent = {"sentAt": "2030-01-10T01:00:00Z", "lastHandledResend": "", "state": "Sent"}
    many = tuple(Redemption(f"c{n}", "2030-01-10T02:00:00Z") for n in range(1500))
    o = observed(invitation({"type": "Group"}), sent)
    o = dataclasses.replace(o, remote=Remote(registration(o.invitation, HASH), many))
    status = run(o).status
    assert status["redeemed"] == 1500 and len(status["redemptions"]) == 1000
    assert status["redemptions"][-1]["contact"] == "c1499"
    schema = crds.schema_for("PortalInvitation")["properties"]["status"]["properties"]
    assert schema["redemptions"]["maxItems"] == 1000
