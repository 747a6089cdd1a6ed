"""One reconcile of a Portal: observe → decide → act, and a failure always reaches status.

Called for every reason (create, edit, child changed, instance changed,
timer); it never depends on why it was called.
"""

from __future__ import annotations

import base64
import datetime
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from portico.api.model import parse_instance
from portico.controller import metrics
from portico.controller.act import Conflict, Writer
from portico.controller.kube import ApiError
from portico.controller.memo import Answers, Fingerprint, Memo, fingerprint
from portico.controller.observe import Observer
from portico.controller.store import Store
from portico.controller.token_exchange import TokenExchangeFailed
from portico.core import entitlement
from portico.core.decide import Plan, decide, failed
from portico.core.instance_status import decide_instance
from portico.core.observed import Observed
from portico.settings import Settings

log = logging.getLogger("portico.reconcile")
# Client errors a retry will not fix: a person (or the platform team) must act.
PERMANENT = frozenset({400, 403, 404, 405, 413, 415, 422})
_PEM = re.compile(r"-----BEGIN [A-Z ]+-----.*?-----END [A-Z ]+-----", re.S)


@dataclass(frozen=True)
class Outcome:
    phase: str = ""
    writes: int = 0
    requeue_after: float | None = None
    dns_pending: bool = False
    certificate_expiry: float | None = None
    gone: bool = False
    # Why the reconcile failed (already in the portal's status); empty when it did not.
    error: str = ""


def redact(message: str, o: Observed | None) -> str:
    """The API server's words, without any value of a Secret the portal reads."""
    message = _PEM.sub("[redacted]", message)
    if o is None:
        return message
    views = [*o.secrets.values(), o.credentials]
    for view in views:
        for value in view.data.values() if view else ():
            for form in {value, base64.b64decode(value).decode(errors="ignore")}:
                if len(form) >= 4:
                    message = message.replace(form, "[redacted]")
    return message[:1000]


@dataclass
class Reconciler:
    settings: Settings
    store: Store
    observer: Observer
    writer: Writer
    memo: Memo = field(default_factory=Memo)

    def portal(self, namespace: str, name: str, now: datetime.datetime | None = None) -> Outcome:
        now = now or datetime.datetime.now(datetime.UTC)
        key = (namespace, name)
        # Taken before observing: a change that lands while this reconcile runs makes the
        # fingerprint after it differ, and then nothing is remembered (the event's own
        # reconcile must decide again).
        before = self._fingerprint(key)
        if (hit := self.memo.unchanged(key, before)) is not None:
            metrics.RECONCILES_UNCHANGED.inc()
            phase, due_in = hit
            return Outcome(phase, requeue_after=due_in)
        self.memo.forget(key)
        o: Observed | None = None
        plan: Plan | None = None
        answers = Answers(self.store)
        try:
            for _ in range(3):  # a conflict found while acting is decided on again, once per child
                o = self.observer.observe(namespace, name, now)
                if o is None:
                    return Outcome(gone=True)
                plan = decide(o, self.settings, now)
                try:
                    writes = self.writer.carry_out(plan, o, answers.written, answers.deleted)
                except Conflict as conflict:
                    self.observer.found_foreign((namespace, name), conflict.key)
                    continue
                self._remember(key, plan, before, answers)
                return Outcome(
                    plan.phase,
                    writes,
                    plan.requeue_after,
                    plan.dns_pending,
                    plan.certificate_expiry,
                )
            raise RuntimeError("children kept changing owner while being written")
        except ApiError as err:
            if err.status == 404 and o is not None and self._portal_gone(namespace, name):
                return Outcome(gone=True)
            return self._report(o, plan, str(err), err.status in PERMANENT, err, now)
        except TokenExchangeFailed as err:  # the message says why (and what to fix)
            return self._report(o, plan, str(err), err.permanent, err, now)
        except Exception as err:
            what = f"internal error ({type(err).__name__}); see the operator's log"
            return self._report(o, plan, what, False, err, now)

    def _fingerprint(
        self, key: tuple[str, str], answers: Answers | None = None
    ) -> Fingerprint | None:
        foreign = frozenset(self.observer.foreign.get(key, ()))
        return fingerprint(self.store, self.observer.index, foreign, *key, answers)

    def _remember(
        self, key: tuple[str, str], plan: Plan, before: Fingerprint | None, answers: Answers
    ) -> None:
        """The next reconcile with the inputs this one left, before a timer is due, would
        decide the same, so it is skipped (memo.py) — if nothing but our own writes moved
        while it ran."""
        with self.store.lock:  # both fingerprints from the same moment
            if before is None or self._fingerprint(key, answers) != before:
                return
            after = self._fingerprint(key)
        timers = [plan.requeue_after, self.observer.dns.next_in(key)]
        due = [t for t in timers if t is not None]
        self.memo.remember(key, after, plan.phase, min(due) if due else None)

    def _report(
        self,
        o: Observed | None,
        plan: Plan | None,
        message: str,
        permanent: bool,
        err: Exception,
        now: datetime.datetime,
    ) -> Outcome:
        metrics.RECONCILE_ERRORS.inc()
        if isinstance(err, ApiError):
            metrics.API_ERRORS.labels(status=str(err.status)).inc()
        where = f"{o.portal.namespace}/{o.portal.name}" if o else "a portal"
        # The API server's refusal is its own words (one line); anything else is a bug,
        # logged with its traceback (never into status or Events).
        trace = None if isinstance(err, ApiError | TokenExchangeFailed) else err
        log.error("reconcile of %s failed: %s", where, redact(str(err), o), exc_info=trace)
        if o is None:
            raise err
        report = failed(o, plan, redact(message, o), permanent, now)
        try:
            self.writer.finish(report, o, Answers(self.store).written)
        except Exception as unrecorded:  # retried with backoff all the same
            if isinstance(unrecorded, ApiError):
                metrics.API_ERRORS.labels(status=str(unrecorded.status)).inc()
            log.warning("could not record the failure of %s in its status: %s", where, unrecorded)
        return Outcome(report.phase, error=message)

    def _portal_gone(self, namespace: str, name: str) -> bool:
        if self.writer.kube.get("Portal", namespace, name) is None:
            self.store.forget_portal(namespace, name)
            return True
        return False

    def instance(self, name: str, portal_count: int) -> None:
        """PortalInstance status: how many portals link to it, and whether it is usable."""
        obj = self.store.instance(name)
        if obj is None:
            return
        instance = parse_instance(obj)
        refused = entitlement.credentials_problem(instance, self.settings)
        exists = refused is None and self.observer.credentials(instance) is not None
        now = datetime.datetime.now(datetime.UTC)
        new = decide_instance(obj, instance, exists, portal_count, now, refused)
        old = obj.get("status") or {}
        result = self.writer.patch_status("PortalInstance", None, name, old, new)
        if isinstance(result, dict) and "metadata" in result:
            self.store.put_instance(result, "answer")


def count_phases(phases: Iterable[str]) -> dict[str, int]:
    counts = dict.fromkeys(("Configuring", "Ready", "Failed", "Expired", "Paused"), 0)
    for phase in phases:
        counts[phase] = counts.get(phase, 0) + 1
    return counts
