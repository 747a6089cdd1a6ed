"""Decide for one PortalInvitation (pure): what to write to the instance, whether to make
the link or send it, and the whole new status.

The instance is the system of record for redemptions; the operator registers the
code's hash there, delivers the link, and reads the redemptions back. Delivery is at
most once per round (the first, and each new `spec.resend`): the status carries the
round in flight (`sending`) before the mail server gets the message, so a restart in
between reports `DeliveryUncertain` rather than sending twice.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from portico.api.model import Invitation, Portal
from portico.core import names
from portico.core.conditions import Condition, false, to_status, true

DEFAULT_EXPIRY = datetime.timedelta(days=7)
TERMINAL = frozenset({"Redeemed", "Expired", "Revoked"})
MAX_LISTED = 1000  # status.redemptions' maxItems in the CRD
_DURATION = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?$")


class Reason:
    PORTAL_NOT_FOUND = "PortalNotFound"
    INSTANCE_NOT_FOUND = "InstanceNotFound"
    CREDENTIALS_NOT_FOUND = "CredentialsNotFound"
    INSTANCE_UNAVAILABLE = "InstanceUnavailable"
    REGISTERING = "Registering"
    REGISTERED = "Registered"
    SENT = "Sent"
    LINK_WRITTEN = "LinkWritten"
    WAITING = "WaitingForRegistration"
    DELIVERY_FAILED = "DeliveryFailed"
    MAIL_NOT_CONFIGURED = "MailNotConfigured"
    DELIVERY_UNCERTAIN = "DeliveryUncertain"
    NOT_DELIVERED = "NotDelivered"  # revoked or expired before it was sent


@dataclass(frozen=True)
class Redemption:
    contact: str
    at: str


@dataclass(frozen=True)
class Remote:
    """The invitation as the instance has it (GET {PORTAL}/invitations/{uid})."""

    body: Mapping[str, Any]  # what a PUT would carry, as the instance echoes it
    redemptions: tuple[Redemption, ...] = ()

    @property
    def revoked(self) -> bool:
        return bool(self.body.get("revoked"))


@dataclass(frozen=True)
class Delivery:
    """What handing the message to the mail server did, in this reconcile."""

    round: str
    ok: bool
    message: str = ""  # the mail server's answer on failure (never the code)


@dataclass(frozen=True)
class Observed:
    obj: Mapping[str, Any]  # the PortalInvitation as stored: metadata and status
    invitation: Invitation
    portal: Portal | None = None
    instance_found: bool = False
    credentials_found: bool = False
    # SHA-256 of the code in the link Secret ("sha256:<hex>"); None: no link Secret yet.
    link_hash: str | None = None
    # None: not asked (or not registered yet, with remote_error empty).
    remote: Remote | None = None
    remote_error: str = ""  # the instance could not be asked, or refused
    mail_configured: bool = False
    delivery: Delivery | None = None

    @property
    def status(self) -> Mapping[str, Any]:
        status: Mapping[str, Any] = self.obj.get("status") or {}
        return status


@dataclass(frozen=True)
class Event:
    type: str
    reason: str
    message: str


@dataclass
class Plan:
    add_finalizer: bool = False
    remove_finalizer: bool = False
    make_link: bool = False
    register: dict[str, Any] | None = None  # the PUT body
    undo: tuple[str, ...] = ()  # contacts whose redemption is undone at the instance
    send: str | None = None  # the delivery round to e-mail now
    status: dict[str, Any] | None = None  # None: leave the status alone (deleting)
    events: list[Event] = field(default_factory=list)
    # None: nothing will change without an event (a terminal state): no polling.
    requeue_after: float | None = None


def expires_after(text: str | None) -> datetime.timedelta:
    match = _DURATION.match(text or "")
    if not text or not match:
        return DEFAULT_EXPIRY
    days, hours, minutes = (int(x or 0) for x in match.groups())
    return datetime.timedelta(days=days, hours=hours, minutes=minutes)


def expiry(invitation: Invitation) -> datetime.datetime:
    """When the code stops working: spec.expiresAt, else creation + expiresAfter (7d)."""
    if invitation.expires_at:
        return datetime.datetime.fromisoformat(invitation.expires_at.replace("Z", "+00:00"))
    created = (
        names.parse_time(invitation.created)
        if invitation.created
        else datetime.datetime.now(datetime.UTC)
    )
    return created + expires_after(invitation.expires_after)


def registration(invitation: Invitation, code_hash: str) -> dict[str, Any]:
    """The PUT body: everything the instance needs to judge a code, and only its hash."""
    contact = invitation.contact
    return {
        "codeHash": code_hash,
        "type": invitation.type,
        "maxRedemptions": invitation.max_redemptions if invitation.type == "Group" else 1,
        "expiresAt": names.iso(expiry(invitation)),
        "webRoles": sorted(invitation.web_roles),
        "contact": {
            "email": contact.email,
            "firstName": contact.first_name,
            "lastName": contact.last_name,
        }
        if contact
        else {},
        "revoked": invitation.revoked,
    }


def _differs(remote: Remote, wanted: Mapping[str, Any]) -> bool:
    have = dict(remote.body)
    have["webRoles"] = sorted(have.get("webRoles") or [])
    return any(have.get(k) != v for k, v in wanted.items())


def retry_delay(attempts: int, base: float) -> float:
    """Failed deliveries back off: BASE, doubling, at most ten minutes."""
    return float(min(base * 2 ** max(attempts - 1, 0), 600.0))


def decide(o: Observed, now: datetime.datetime, poll_seconds: float, retry_base: float) -> Plan:
    inv = o.invitation
    if inv.deleting:
        return _deleting(o)
    plan = Plan(add_finalizer=names.INVITATION_FINALIZER not in inv.finalizers)
    old = o.status
    status: dict[str, Any] = {
        "observedGeneration": inv.generation,
        "expiresAt": names.iso(expiry(inv)),
    }
    for key in ("sentAt", "lastHandledResend", "redemptions", "redeemed", "deliveryAttempts"):
        if key in old:
            status[key] = old[key]
    registered = _register(o, plan)
    redemptions = _redemptions(o, plan)
    if redemptions is not None:
        # The CRD lists at most MAX_LISTED (a status the API server refuses would stop all
        # reporting); the newest are kept, and `redeemed` counts them all.
        listed = redemptions[-MAX_LISTED:]
        status["redemptions"] = [{"contact": r.contact, "at": r.at} for r in listed]
        status["redeemed"] = len(redemptions)
    count = int(status.get("redeemed", 0))
    if inv.delivery == "None":
        status["linkSecret"] = names.invitation_link_name(inv.name)

    state = _state(inv, now, count, sent=bool(old.get("sentAt")))
    delivered = _deliver(o, plan, status, state, registered, now, retry_base)
    if state == "Pending" and status.get("sentAt"):
        state = "Sent"
    status["state"] = state
    status["conditions"] = to_status(
        [registered, delivered], old.get("conditions") or (), inv.generation, names.iso(now)
    )
    plan.status = status
    plan.events.extend(_events(old, status, registered, delivered, inv))
    if state not in TERMINAL:
        # Redemptions are read back while the code can still be used; expiry is a moment.
        # A missing portal or instance is looked at again at the same pace.
        until = (expiry(inv) - now).total_seconds()
        wait = retry_base if registered.reason == Reason.INSTANCE_UNAVAILABLE else poll_seconds
        plan.requeue_after = _sooner(plan.requeue_after, max(min(wait, until + 1), 1.0))
    return plan


def _sooner(a: float | None, b: float) -> float:
    return b if a is None else min(a, b)


def _register(o: Observed, plan: Plan) -> Condition:
    """Registered: the code's hash is with the instance, as the spec says (PUT when not)."""
    inv = o.invitation
    where = f"namespace {inv.namespace}"
    if o.portal is None:
        return false(
            "Registered",
            Reason.PORTAL_NOT_FOUND,
            f"Portal {inv.portal} does not exist in {where}; create it or fix spec.portalRef.name",
        )
    if not o.instance_found:
        return false(
            "Registered",
            Reason.INSTANCE_NOT_FOUND,
            f"PortalInstance {o.portal.instance} of portal {inv.portal} does not exist; "
            "the portal must link to an instance before it can invite anyone",
        )
    if not o.credentials_found:
        return false(
            "Registered",
            Reason.CREDENTIALS_NOT_FOUND,
            f"the credentials Secret of PortalInstance {o.portal.instance} does not exist; "
            "create it (see the PortalInstance's spec.credentialsSecretRef)",
        )
    if o.link_hash is None:
        plan.make_link = True
        return false("Registered", Reason.REGISTERING, "making the invitation's code")
    if o.remote_error:
        return false(
            "Registered",
            Reason.INSTANCE_UNAVAILABLE,
            f"the instance could not be asked: {o.remote_error}; retried with backoff",
        )
    wanted = registration(inv, o.link_hash)
    if o.remote is None or _differs(o.remote, wanted):
        plan.register = wanted
    return true("Registered", Reason.REGISTERED, "the code's hash is registered with the instance")


def _redemptions(o: Observed, plan: Plan) -> tuple[Redemption, ...] | None:
    """What the instance counts, less the ones undone now; None when it was not asked."""
    if o.remote is None:
        return () if plan.register is not None and o.remote_error == "" else None
    undo = set(o.invitation.undo_redemptions)
    plan.undo = tuple(r.contact for r in o.remote.redemptions if r.contact in undo)
    return tuple(r for r in o.remote.redemptions if r.contact not in undo)


def _state(inv: Invitation, now: datetime.datetime, count: int, sent: bool) -> str:
    if inv.revoked:
        return "Revoked"
    if inv.max_redemptions and count >= inv.max_redemptions:
        return "Redeemed"  # Single: once; Group: its maximum (0: never all used)
    if now >= expiry(inv):
        return "Expired"
    return "Sent" if sent else "Pending"


def _deliver(
    o: Observed,
    plan: Plan,
    status: dict[str, Any],
    state: str,
    registered: Condition,
    now: datetime.datetime,
    retry_base: float,
) -> Condition:
    """Delivered: the link reached the mail server (Email) or its Secret (None)."""
    inv, old = o.invitation, o.status
    due = not old.get("sentAt") or (bool(inv.resend) and inv.resend != old.get("lastHandledResend"))
    previous = _condition(old, "Delivered")
    if state in ("Revoked", "Expired") and not old.get("sentAt"):
        return false("Delivered", Reason.NOT_DELIVERED, f"the invitation is {state.lower()}")
    if state in TERMINAL or not due:
        return previous or true("Delivered", Reason.SENT, "delivered")
    if not registered.ok:
        return false("Delivered", Reason.WAITING, "waiting until the code is registered")
    if inv.delivery == "None":
        status["sentAt"] = names.iso(now)
        status["lastHandledResend"] = inv.resend
        secret = names.invitation_link_name(inv.name)
        return true("Delivered", Reason.LINK_WRITTEN, f"the link is in Secret {secret} (key link)")
    if o.delivery is not None and o.delivery.round == inv.resend:
        return _delivered(o.delivery, inv, status, now, plan, retry_base)
    if old.get("sending") == sending_marker(inv.resend):
        # A send began and its end was never recorded: the operator stopped in between.
        status["lastHandledResend"] = inv.resend
        status.setdefault("sentAt", names.iso(now))
        return Condition(
            "Delivered",
            "Unknown",
            Reason.DELIVERY_UNCERTAIN,
            "the operator stopped while handing the e-mail to the mail server, so it may or "
            "may not have gone out; it is not sent twice. Set spec.resend to a new value to "
            "send it again",
        )
    attempts = int(old.get("deliveryAttempts", 0))
    if attempts and old.get("lastDeliveryAttempt"):
        wait = retry_delay(attempts, retry_base)
        left = (names.parse_time(old["lastDeliveryAttempt"]) - now).total_seconds() + wait
        if left > 0:  # backing off after a failure
            status["deliveryAttempts"] = attempts
            status["lastDeliveryAttempt"] = old["lastDeliveryAttempt"]
            plan.requeue_after = _sooner(plan.requeue_after, left)
            return previous or false("Delivered", Reason.WAITING, "waiting to retry")
    if not o.mail_configured:
        return false(
            "Delivered",
            Reason.MAIL_NOT_CONFIGURED,
            "the operator has no mail server (Helm value mail.host, PORTICO_MAIL_HOST); "
            "configure one, or set spec.delivery to None and hand over the link yourself",
        )
    plan.send = inv.resend
    return previous or false("Delivered", Reason.WAITING, "sending")


def _delivered(
    d: Delivery,
    inv: Invitation,
    status: dict[str, Any],
    now: datetime.datetime,
    plan: Plan,
    retry_base: float,
) -> Condition:
    if d.ok:
        status["sentAt"] = names.iso(now)
        status["lastHandledResend"] = inv.resend
        status.pop("deliveryAttempts", None)
        status.pop("lastDeliveryAttempt", None)
        email = inv.contact.email if inv.contact else ""
        return true("Delivered", Reason.SENT, f"the invitation was e-mailed to {email}")
    attempts = int(status.get("deliveryAttempts", 0)) + 1
    status["deliveryAttempts"] = attempts
    status["lastDeliveryAttempt"] = names.iso(now)
    delay = retry_delay(attempts, retry_base)
    plan.requeue_after = _sooner(plan.requeue_after, delay)
    return false(
        "Delivered",
        Reason.DELIVERY_FAILED,
        f"{d.message}; retried in {delay:.0f}s (attempt {attempts}). Check the operator's "
        "mail settings (mail.host, mail.port, mail.credentialsSecret) and the address",
    )


def sending_marker(round_: str) -> str:
    """status.sending while the message of ROUND is with the mail server ("" = the first)."""
    return "round:" + round_


def _condition(status: Mapping[str, Any], type_: str) -> Condition | None:
    for c in status.get("conditions") or ():
        if c.get("type") == type_:
            return Condition(
                type_, c.get("status", "Unknown"), c.get("reason", ""), c.get("message", "")
            )
    return None


def _events(
    old: Mapping[str, Any],
    new: Mapping[str, Any],
    registered: Condition,
    delivered: Condition,
    inv: Invitation,
) -> list[Event]:
    events = []
    for c in (registered, delivered):
        before = _condition(old, c.type)
        changed = before is None or (before.status, before.reason) != (c.status, c.reason)
        if c.reason == Reason.DELIVERY_FAILED:
            # Every failed attempt is its own moment; waiting out the backoff is not.
            changed = new.get("deliveryAttempts") != old.get("deliveryAttempts")
        if changed and c.reason not in (Reason.REGISTERING, Reason.WAITING, Reason.REGISTERED):
            events.append(Event("Normal" if c.ok else "Warning", c.reason, c.message))
    if new.get("state") != old.get("state") and new.get("state") in TERMINAL:
        events.append(Event("Normal", str(new["state"]), f"the invitation is {new['state']}"))
    return events


def _deleting(o: Observed) -> Plan:
    """Deleted: the code stops working at the instance first, then the finalizer goes."""
    inv, plan = o.invitation, Plan()
    if names.INVITATION_FINALIZER not in inv.finalizers:
        return plan
    if o.portal is None or not o.instance_found or not o.credentials_found:
        plan.remove_finalizer = True  # nothing left to revoke at
        return plan
    if o.remote_error:
        plan.requeue_after = 5.0
        return plan
    if o.remote is not None and not o.remote.revoked:
        plan.register = {**dict(o.remote.body), "revoked": True}
    plan.remove_finalizer = True
    return plan
