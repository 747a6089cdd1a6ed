"""Which lifecycle notifications are due (pure), and the record that makes each one once.

A notification is an Event on the Portal and, when the operator has a channel (e-mail
to the portal's administrator, a signed webhook), the same message delivered there.
`status.notifications` is the record, one entry per slot (below), written in the same
status write as the Event: an occurrence whose key the record already holds is never
due again, whatever restarts or leader changes happen meanwhile. Each channel's state
in the entry is the outbox (controller/notify.py delivers it):

- Queued: due, not handed over yet (delivered after a restart too: the record decides);
- Sending: being handed over; found so by another process (a restart or a new leader
  while it was in flight), it may or may not have gone out, and is not sent twice;
- Sent: handed over; Uncertain: was left Sending by a process that stopped.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any

from portico.core import names

EXPIRING_SOON = "TrialExpiringSoon"
EXPIRED = "TrialExpired"
CONVERTED = "TrialConverted"
STOPPED = "Stopped"
STARTED = "Started"
CERTIFICATE = "CertificateExpiringSoon"
# Days before a trial's end at which TrialExpiringSoon is due, longest first.
TRIAL_NOTICE_DAYS = (7, 1)

QUEUED, SENDING, SENT, UNCERTAIN = "Queued", "Sending", "Sent", "Uncertain"
CHANNELS = ("email", "webhook")
STATUS_KEY = "notifications"


@dataclass(frozen=True)
class Notice:
    slot: str  # the record's key: one entry per slot, the latest occurrence
    reason: str  # the Event's reason
    key: str  # this occurrence: a slot notifies again only for a new key
    type: str  # Normal or Warning
    message: str


def trial_slot(days: int) -> str:
    return f"{EXPIRING_SOON}-{days}d"


def _days(seconds: float) -> str:
    hours = seconds / 3600
    if hours >= 48:
        return f"in {round(hours / 24)} days"
    if hours >= 2:
        return f"in {round(hours)} hours"
    return f"in {max(1, round(seconds / 60))} minute(s)"


def due(
    *,
    portal: str,
    trial: bool,
    expiry: datetime.datetime | None,
    now: datetime.datetime,
    old: Mapping[str, Any],
    new: Mapping[str, Any],
    generation: int,
    running: bool,
) -> list[Notice]:
    """The notices this plan newly makes: OLD and NEW are the portal's status before and
    as decided (phase, trialExpiresAt, conditions, certificate); RUNNING: spec.state."""
    record = old.get(STATUS_KEY) or {}
    was, phase = old.get("phase"), new.get("phase")
    found: list[Notice] = []
    if trial and expiry is not None and now < expiry:
        crossed = [d for d in TRIAL_NOTICE_DAYS if now >= expiry - datetime.timedelta(days=d)]
        if crossed:  # only the nearest threshold: a later one supersedes an earlier one
            days = min(crossed)
            left = (expiry - now).total_seconds()
            found.append(
                Notice(
                    trial_slot(days),
                    EXPIRING_SOON,
                    names.iso(expiry),
                    "Warning",
                    f"the trial of portal {portal} expires {_days(left)} (at "
                    f"{names.iso(expiry)}); after that its runtime is scaled to zero until "
                    "spec.type is set to Production",
                )
            )
    if phase == "Expired" and was != "Expired" and expiry is not None:
        found.append(
            Notice(
                EXPIRED,
                EXPIRED,
                names.iso(expiry),
                "Warning",
                f"the trial of portal {portal} expired at {names.iso(expiry)}: its runtime "
                "is scaled to zero; set spec.type to Production to bring it back",
            )
        )
    if not trial and old.get("trialExpiresAt"):
        found.append(
            Notice(
                CONVERTED,
                CONVERTED,
                str(old["trialExpiresAt"]),
                "Normal",
                f"portal {portal} was converted from Trial to Production: it no longer expires",
            )
        )
    if phase == STOPPED and was != STOPPED:
        found.append(
            Notice(
                STOPPED,
                STOPPED,
                str(generation),
                "Normal",
                f"portal {portal} was stopped (spec.state Stopped): its runtime is scaled to "
                "zero and its URL shows the stopped page",
            )
        )
    if was == STOPPED and phase != STOPPED and running:
        found.append(
            Notice(
                STARTED,
                STARTED,
                str(generation),
                "Normal",
                f"portal {portal} was started again (spec.state Running)",
            )
        )
    certificate = new.get("certificate") or {}
    expiring = next(
        (c for c in new.get("conditions") or () if c.get("reason") == CERTIFICATE), None
    )
    if expiring and certificate.get("notAfter"):
        found.append(
            Notice(
                CERTIFICATE,
                CERTIFICATE,
                str(certificate["notAfter"]),
                "Warning",
                expiring["message"],
            )
        )
    return [n for n in found if (record.get(n.slot) or {}).get("key") != n.key]


def next_in(trial: bool, expiry: datetime.datetime | None, now: datetime.datetime) -> float | None:
    """Seconds until the next TrialExpiringSoon threshold (a reconcile comes back then)."""
    if not trial or expiry is None:
        return None
    ahead = [(expiry - datetime.timedelta(days=d) - now).total_seconds() for d in TRIAL_NOTICE_DAYS]
    waits = [w for w in ahead if w > 0]
    return min(waits) + 1 if waits else None


def record(
    new: dict[str, Any],
    old: Mapping[str, Any],
    notices: list[Notice],
    messages: Mapping[str, str],
    channels: tuple[str, ...],
    stamp: str,
) -> None:
    """NEW's record: OLD's, with an entry for each notice (MESSAGES: the Event's own words
    by reason, where the plan has an Event of that reason), queued on CHANNELS."""
    kept = dict(old.get(STATUS_KEY) or {})
    for n in notices:
        entry: dict[str, Any] = {
            "reason": n.reason,
            "key": n.key,
            "at": stamp,
            "type": n.type,
            "message": messages.get(n.reason, n.message)[:1024],
        }
        entry.update(dict.fromkeys(channels, QUEUED))
        kept[n.slot] = entry
    if kept:
        new[STATUS_KEY] = kept


def queued(status: Mapping[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """(slot, channel, entry) of every channel still to hand over, or left Sending."""
    out = []
    for slot, entry in (status.get(STATUS_KEY) or {}).items():
        for channel in CHANNELS:
            if entry.get(channel) in (QUEUED, SENDING):
                out.append((slot, channel, entry))
    return out


# ---- what is sent (pure): the e-mail, the webhook's body and its signature ----------

SIGNATURE_HEADER = "Portico-Signature"
DELIVERY_HEADER = "Portico-Delivery"


def delivery_id(uid: str, slot: str, entry: Mapping[str, Any]) -> str:
    """The same for every attempt of one notification: receivers drop repeats by it."""
    return f"{uid}/{slot}/{entry.get('key', '')}"


def compose_mail(
    *, entry: Mapping[str, Any], portal: str, display_name: str, to: str, sender: str, url: str
) -> EmailMessage:
    message = EmailMessage()
    message["Subject"] = f"[{display_name}] {entry['reason']}"
    message["From"] = sender
    message["To"] = to
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
    lines = [
        "Hello,",
        f"{entry['message']}.",
        f"Portal: {portal} ({url})",
        f"Event: {entry['reason']} at {entry['at']}",
        "You receive this message as the portal's administrator (spec.administrator).",
    ]
    message.set_content("\n\n".join(lines) + "\n")
    return message


def webhook_body(
    *,
    entry: Mapping[str, Any],
    namespace: str,
    portal: str,
    uid: str,
    slot: str,
    administrator: str,
    url: str,
) -> bytes:
    body = {
        "id": delivery_id(uid, slot, entry),
        "reason": entry["reason"],
        "type": entry.get("type", "Normal"),
        "message": entry["message"],
        "at": entry["at"],
        "portal": {"namespace": namespace, "name": portal, "uid": uid, "url": url},
        "administrator": administrator,
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def signature(key: bytes, timestamp: int, body: bytes) -> str:
    """The Portico-Signature header: `t=<unix seconds>,v1=<hex HMAC-SHA256 of
    "<t>." + body>` (the timestamp is signed, so a receiver can refuse old replays)."""
    mac = hmac.new(key, str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify(key: bytes, header: str, body: bytes, now: int, tolerance: int = 300) -> bool:
    """What a receiver does (docs/user-guide.md, "Notifications"); used by the tests."""
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    try:
        timestamp = int(parts.get("t", ""))
    except ValueError:
        return False
    expected = signature(key, timestamp, body).split("v1=", 1)[1]
    return abs(now - timestamp) <= tolerance and hmac.compare_digest(expected, parts.get("v1", ""))
