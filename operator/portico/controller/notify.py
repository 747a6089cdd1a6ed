"""Delivering the notifications decide recorded (core/notifications.py): an edge, off the
reconcile path.

The outbox holds portal keys, never messages: each message waits in its Portal's
`status.notifications` (Queued), written with its Event, so it outlives this process.
Deliveries run one at a time in a thread of their own; a mail server or webhook that
is down delays them (retried per portal with backoff, 5 s doubling to 10 min) and never
a reconcile. Only the leader delivers: every mark below is a fenced status write.

Once per occurrence: a channel is marked Sending (written) after the server answered
and before the message goes; Sent after. A process that finds a Sending mark it did
not make (it restarted, or the leader changed mid-send) marks it Uncertain and does not
send again; a refusal (an error answer) puts it back to Queued.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import copy
import http.client
import logging
import ssl
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from portico.controller import metrics
from portico.controller.act import Writer
from portico.controller.kube import ApiError
from portico.controller.mail import MailError, login_from, send
from portico.controller.store import Store
from portico.core import notifications as n
from portico.domain.backoff import recheck_delay
from portico.settings import Settings

log = logging.getLogger("portico.notify")
Key = tuple[str, str]
# (portal, slot, channel, occurrence)
Mark = tuple[Key, str, str, str]


class WebhookError(Exception):
    """REFUSED: the receiver answered with an error, so it did not take the message."""

    def __init__(self, message: str, refused: bool = True) -> None:
        super().__init__(message)
        self.refused = refused


class Replaced(Exception):
    """The entry now holds a newer occurrence (or the portal is gone): not this one's."""


@dataclass
class Outbox:
    settings: Settings
    store: Store
    writer: Writer
    waiting: dict[Key, float] = field(default_factory=dict)  # portal → loop time to try
    attempts: dict[Key, int] = field(default_factory=dict)
    mine: set[Mark] = field(default_factory=set)  # Sending marks this process wrote
    # A final state (Sent, Uncertain) decided here whose write failed: written next time.
    unwritten: dict[Mark, str] = field(default_factory=dict)
    wake: asyncio.Event = field(default_factory=asyncio.Event)

    def offer(self, key: Key) -> None:
        """After a reconcile (on the loop): the portal's record may have queued messages."""
        with self.store.lock:
            obj = self.store.portals.get(key)
        if obj is None or key in self.waiting or not n.queued(obj.get("status") or {}):
            return
        self.waiting[key] = 0.0
        self.wake.set()

    def forget(self, key: Key) -> None:
        self.waiting.pop(key, None)
        self.attempts.pop(key, None)

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        executor = ThreadPoolExecutor(1, "notify")
        try:
            while True:
                now = loop.time()
                ready = [k for k, at in self.waiting.items() if at <= now]
                if not ready:
                    timeout = min(self.waiting.values()) - now if self.waiting else None
                    self.wake.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self.wake.wait(), timeout)
                    continue
                for key in ready:
                    del self.waiting[key]
                    try:
                        left = await loop.run_in_executor(executor, self.deliver, key)
                    except Exception:  # a bug: logged, retried, and the outbox keeps running
                        log.exception("delivering the notifications of %s/%s failed", *key)
                        left = True
                    if not left:
                        self.attempts.pop(key, None)
                        continue
                    attempt = self.attempts.get(key, 0)
                    self.attempts[key] = attempt + 1
                    wait = recheck_delay(attempt, base=self.settings.notification_retry_seconds)
                    self.waiting.setdefault(key, loop.time() + wait)
        finally:
            executor.shutdown(wait=False, cancel_futures=True)

    # ---- in the delivery thread --------------------------------------------------

    def deliver(self, key: Key) -> bool:
        """Hand over what KEY's record has queued; True when something is left to retry."""
        with self.store.lock:
            obj = copy.deepcopy(self.store.portals.get(key))
        if obj is None:
            return False
        left = False
        for slot, channel, entry in n.queued(obj.get("status") or {}):
            mark: Mark = (key, slot, channel, str(entry.get("key", "")))
            try:
                left |= self._one(obj, mark, entry)
            except Replaced:
                continue
            except ApiError as err:  # a mark could not be written: try again later
                log.warning("notification %s of %s/%s: status not written: %s", slot, *key, err)
                left = True
        return left

    def _one(self, obj: dict[str, Any], mark: Mark, entry: dict[str, Any]) -> bool:
        key, slot, channel, _ = mark
        if mark in self.unwritten:  # decided; only its mark is missing
            self._final(mark, self.unwritten[mark])
            return False
        if entry.get(channel) == n.SENDING and mark not in self.mine:
            log.warning(
                "notification %s of %s/%s by %s: left in flight by an operator that stopped; "
                "it may have gone out and is not sent twice",
                slot,
                *key,
                channel,
            )
            metrics.NOTIFICATIONS.labels(channel=channel, result="uncertain").inc()
            self._final(mark, n.UNCERTAIN)
            return False

        def ready() -> None:
            self._mark(mark, n.SENDING)
            self.mine.add(mark)

        try:
            if channel == "email":
                self._email(obj, slot, entry, ready)
            else:
                self._webhook(obj, slot, entry, ready)
        except (MailError, WebhookError) as err:
            metrics.NOTIFICATIONS.labels(channel=channel, result="failed").inc()
            if mark not in self.mine:  # nothing went out: retried
                log.warning("notification %s of %s/%s not sent: %s", slot, *key, err)
                return True
            if err.refused:  # not taken: queued again (until written, still ours to send)
                log.warning("notification %s of %s/%s refused: %s (retried)", slot, *key, err)
                self._mark(mark, n.QUEUED)
                self.mine.discard(mark)
                return True
            log.warning(
                "notification %s of %s/%s by %s may or may not have gone out (%s); it is "
                "not sent twice",
                slot,
                *key,
                channel,
                err,
            )
            self._final(mark, n.UNCERTAIN)
            return False
        metrics.NOTIFICATIONS.labels(channel=channel, result="sent").inc()
        log.info("notification %s of %s/%s sent by %s", slot, *key, channel)
        self._final(mark, n.SENT)
        return False

    def _final(self, mark: Mark, state: str) -> None:
        """Write a state that ends the channel; kept until written, so never sent again."""
        self.unwritten[mark] = state
        self.mine.discard(mark)
        with contextlib.suppress(Replaced):  # a newer occurrence took the entry
            self._mark(mark, state)
        self.unwritten.pop(mark, None)

    def _mark(self, mark: Mark, state: str) -> None:
        """One fenced status write, onto the version of the Portal the store holds."""
        (namespace, name), slot, channel, occurrence = mark
        with self.store.lock:
            obj = copy.deepcopy(self.store.portals.get((namespace, name)))
        old = (obj or {}).get("status") or {}
        entry = (old.get(n.STATUS_KEY) or {}).get(slot) or {}
        if obj is None or str(entry.get("key", "")) != occurrence:
            raise Replaced()
        new = copy.deepcopy(old)
        new[n.STATUS_KEY][slot][channel] = state
        version = obj["metadata"].get("resourceVersion", "")
        result = self.writer.patch_status("Portal", namespace, name, old, new, version)
        if isinstance(result, dict) and "metadata" in result:
            with self.store.lock:
                self.store.put_portal(result, "answer")

    def _email(self, obj: dict[str, Any], slot: str, entry: dict[str, Any], ready: Any) -> None:
        spec, meta = obj.get("spec") or {}, obj["metadata"]
        s = self.settings
        message = n.compose_mail(
            entry=entry,
            portal=f"{meta['namespace']}/{meta['name']}",
            display_name=spec.get("displayName") or meta["name"],
            to=spec.get("administrator", ""),
            sender=s.mail_from,
            url=(obj.get("status") or {}).get("url", ""),
        )
        send(s, message, login_from(s, self.writer.kube), ready)

    def _webhook(self, obj: dict[str, Any], slot: str, entry: dict[str, Any], ready: Any) -> None:
        spec, meta = obj.get("spec") or {}, obj["metadata"]
        body = n.webhook_body(
            entry=entry,
            namespace=meta["namespace"],
            portal=meta["name"],
            uid=meta.get("uid", ""),
            slot=slot,
            administrator=spec.get("administrator", ""),
            url=(obj.get("status") or {}).get("url", ""),
        )
        headers = {
            "Content-Type": "application/json",
            n.SIGNATURE_HEADER: n.signature(self._webhook_key(), int(time.time()), body),
            n.DELIVERY_HEADER: n.delivery_id(meta.get("uid", ""), slot, entry),
            "User-Agent": "portico",
        }
        post(self.settings, body, headers, ready)

    def _webhook_key(self) -> bytes:
        ref = self.settings.notification_webhook_secret
        namespace, name = ref.split("/", 1)
        try:
            secret = self.writer.kube.get("Secret", namespace, name)
        except ApiError as err:
            raise WebhookError(f"cannot read the webhook key Secret {ref}: {err}") from None
        raw = ((secret or {}).get("data") or {}).get("key", "")
        if not raw:
            raise WebhookError(f"the webhook key Secret {ref} does not exist or has no key `key`")
        return base64.b64decode(raw)


def post(settings: Settings, body: bytes, headers: dict[str, str], ready: Any) -> None:
    """POST BODY to the webhook; READY runs once connected, before the request goes."""
    url = urllib.parse.urlsplit(settings.notification_webhook_url)
    where = f"the webhook at {url.scheme}://{url.netloc}"
    timeout = settings.notification_webhook_timeout
    conn: http.client.HTTPConnection
    if url.scheme == "https":
        conn = http.client.HTTPSConnection(
            url.netloc, timeout=timeout, context=ssl.create_default_context()
        )
    else:
        conn = http.client.HTTPConnection(url.netloc, timeout=timeout)
    try:
        try:
            conn.connect()
        except OSError as err:
            why = getattr(err, "strerror", None) or err.__class__.__name__
            raise WebhookError(f"{where} could not be reached ({why})") from None
        ready()
        try:
            path = url.path or "/"
            conn.request("POST", path + (f"?{url.query}" if url.query else ""), body, headers)
            answer = conn.getresponse()
            said = answer.read(200).decode(errors="replace")
        except (OSError, http.client.HTTPException) as err:
            why = getattr(err, "strerror", None) or err.__class__.__name__
            raise WebhookError(f"{where} did not answer ({why})", refused=False) from None
        if not 200 <= answer.status < 300:
            raise WebhookError(f"{where} answered {answer.status} {' '.join(said.split())[:200]}")
    finally:
        conn.close()
