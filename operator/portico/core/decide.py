"""Decide (pure): what was observed → the children to write and delete, the status, the Events.

`decide(observed, settings, now)` never reads or writes anything; the same
inputs give the same plan. Ownership, withdrawal and truthful status are
properties of this one function:

- a child whose name is held by an object this portal does not control is
  never written or deleted (`ChildConflict`);
- a portal that loses an entitlement (`reasons.WITHDRAWN`) keeps nothing it
  may no longer have: credentials, runtime, routing;
- every owned child the plan does not want is deleted, whatever its kind.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field, replace
from typing import Any

from portico.core import (
    access,
    custom_domain,
    entitlement,
    features,
    maintenance,
    names,
    notifications,
    pacing,
    progress,
    references,
    rename,
    render,
    routing,
    session_keys,
    site,
    token,
)
from portico.core.children import Changes, Write, changes, desired_children, up_to_date, with_hash
from portico.core.conditions import Condition, false, reason_of, summarize, to_status, true
from portico.core.observed import Key, Observed
from portico.core.reasons import RECONCILE_ERROR, RECONCILE_SUCCESS, WITHDRAWN, Failure
from portico.core.runtime import await_routing, runtime_condition
from portico.settings import Settings

EXPIRING = "CertificateExpiringSoon"
# Echoes the portico.dev/rotate-session-keys value the session keys answer.
ROTATION_STATUS = "lastHandledSessionKeysRotation"


@dataclass(frozen=True)
class Event:
    type: str  # Normal or Warning
    reason: str
    message: str


@dataclass(frozen=True)
class Plan:
    phase: str
    status: dict[str, Any]
    writes: tuple[Write, ...] = ()
    deletes: tuple[Key, ...] = ()
    events: tuple[Event, ...] = ()
    # Come back after this many seconds even if nothing happens (trial expiry).
    requeue_after: float | None = None
    # The custom domain's DNS is not settled: look again with backoff.
    dns_pending: bool = False
    certificate_expiry: float | None = None
    skipped: tuple[Key, ...] = field(default=())
    # Ask the instance for a portal token of this lifetime (seconds; 0: none) and put it
    # into the instance Secret being written; then revoke these token ids.
    mint_token: int = 0
    revoke_tokens: tuple[str, ...] = ()


def _base_status(o: Observed, settings: Settings, now: datetime.datetime) -> dict[str, Any]:
    portal, status = o.portal, o.status
    new: dict[str, Any] = {
        "observedGeneration": o.generation,
        "url": render.default_url(portal, settings),
        "features": features.features(portal.template),
        "solutions": features.solutions(portal.template),
    }
    for key in ("provisioning", "translations", "certificate", "customDomainUrl", "customDomain"):
        if key in status:
            new[key] = status[key]
    if recheck := portal.annotations.get(names.RECHECK):
        new["lastHandledReconcileAt"] = recheck
    elif "lastHandledReconcileAt" in status:
        new["lastHandledReconcileAt"] = status["lastHandledReconcileAt"]
    for key in ("lastHandledRestart", "lastHandledSiteRestart", ROTATION_STATUS):
        if key in status:
            new[key] = status[key]
    if expiry := trial_expiry(o, settings):
        new["trialExpiresAt"] = names.iso(expiry)
    return new


def trial_expiry(o: Observed, settings: Settings) -> datetime.datetime | None:
    if o.portal.type != "Trial" or o.created is None:
        return None
    return o.created + datetime.timedelta(days=settings.trial_days)


@dataclass
class _Run:
    """What provisioning decides: the facts for rendering, the status, the conditions."""

    facts: render.Facts
    keep: set[Key]
    conditions: list[Condition]
    status: dict[str, Any]
    token: token.TokenPlan | None = None
    keys: session_keys.SessionKeys | None = None


def _provision(
    o: Observed,
    settings: Settings,
    now: datetime.datetime,
    expired: bool,
    domain: custom_domain.Assessment,
) -> _Run:
    stamp = names.iso(now)
    portal, status = o.portal, o.status
    assert o.instance is not None
    out: dict[str, Any] = {}
    conditions: list[Condition] = []
    restart = portal.annotations.get(names.RESTART, "")
    spec = progress.provisioning_spec(o.obj.get("spec") or {})
    attempt = progress.attempt_for(dict(status), o.generation, restart, stamp, spec)
    job_name = names.provision_job_name(portal.name, attempt.number)
    prerequisite = references.check_prerequisites(portal, o.instance)
    job = o.child("Job", job_name)
    attempt = progress.observe_attempt(attempt, dict(job) if job else None, stamp)
    if job is None and not attempt.finished and not prerequisite:
        # This plan creates the Job, before status is written: it runs from here on.
        attempt = replace(attempt, state="Running")
    if said := o.job_failures.get(job_name):
        attempt = replace(attempt, failure=f"{attempt.failure} (the job said: {said})")
    if prerequisite:
        # Nothing starts until the instance has it; the attempt begins once it does.
        conditions.append(
            false("SolutionsInstalled", prerequisite[0].reason, prerequisite[0].message)
        )
    else:
        out["provisioning"] = attempt.status(job_name)
        if attempt.restart:
            out["lastHandledRestart"] = attempt.restart
        conditions.append(progress.solutions_condition(attempt, job_name))

    translations = None
    keep: set[Key] = {("Job", job_name), ("Secret", domain.tls_secret)}
    if portal.additional_languages or status.get("translations"):
        run = int((status.get("translations") or {}).get("run", 0))
        current = o.child("Job", names.translations_job_name(portal.name, run))
        translations = progress.translations_for(
            dict(status),
            portal.additional_languages,
            portal.annotations.get(names.REFRESH_TRANSLATIONS, ""),
            dict(current) if current else None,
            provisioned=attempt.state == "Succeeded",
        )
        t_job = names.translations_job_name(portal.name, translations.run)
        out["translations"] = translations.status(t_job)
        if translations.run:
            keep.add(("Job", t_job))
        if portal.additional_languages:
            conditions.append(progress.translations_condition(translations, t_job))

    # An expired trial runs nothing and keeps no token (scaled to zero); a stopped site
    # keeps its token (everything but the runtime's pods stays).
    held = None
    if not expired:
        secret = o.child("Secret", names.instance_secret_name(portal.name))
        ttl = settings.instance_token_ttl_seconds
        held = token.plan(secret, o.instance, o.credentials, now, ttl)
    keys: session_keys.SessionKeys | None = _session_keys(o)
    if expired and keys and keys.change == "created":
        keys = None  # like a withdrawn portal: keys kept, none made for a runtime at zero
    if keys and keys.handled:
        out[ROTATION_STATUS] = keys.handled
    facts = render.Facts(
        attempt=attempt.number,
        provision=not prerequisite and not attempt.finished,
        expired=expired,
        stopped=portal.state == site.STOPPED,
        site_restart=portal.annotations.get(names.RESTART_SITE, ""),
        secrets_checksum=entitlement.secrets_checksum(o),
        translations_run=translations.run if translations and translations.active else 0,
        translations_languages=translations.languages if translations else (),
        instance_credentials=held.data if held else None,
        instance_secret_annotations=held.annotations if held else None,
        custom_host_ready=domain.serve,
        custom_tls_secret=domain.tls_secret,
        tls_data=domain.tls_data,
        issue_certificate=domain.issue,
        session_keys=keys,
        # Like the token: an expired trial keeps no copy of the mail login.
        mail_login=None if expired else mail_login(o, settings),
    )
    return _Run(facts, keep, conditions, out, held, keys)


def mail_login(o: Observed, settings: Settings) -> dict[str, str] | None:
    """The operator's mail login for runtimes, as `<portal>-mail` holds it (base64), when it
    is configured and its Secret has both keys (else the runtime sends without a login,
    and a server that wants one fails the provisioning check, naming the mail server)."""
    view = o.mail_credentials
    if not settings.mail_portal_credentials_secret or view is None:
        return None
    if not {"username", "password"} <= set(view.data):
        return None
    return {"username": view.data["username"], "password": view.data["password"]}


def _conflict(keys: tuple[Key, ...], portal: str) -> Condition:
    listed = ", ".join(f"{kind} {name}" for kind, name in keys)
    return false(
        "Ready",
        Failure.CHILD_CONFLICT,
        f"{listed} already exists and is not managed by this portal, so Portico leaves it "
        f"untouched; delete or rename that object, or give the Portal another name than {portal}",
    )


def decide(o: Observed, settings: Settings, now: datetime.datetime) -> Plan:
    """The plan for one portal: the only place its status is computed."""
    stamp = names.iso(now)
    portal, status = o.portal, o.status
    new = _base_status(o, settings, now)
    previous = list(status.get("conditions") or ())
    expiry = trial_expiry(o, settings)
    expired = bool(expiry and now >= expiry)
    requeue = (expiry - now).total_seconds() + 1 if expiry and not expired else None
    if (notice := notifications.next_in(portal.type == "Trial", expiry, now)) is not None:
        requeue = min(requeue or notice, notice)  # the next TrialExpiringSoon threshold
    link = entitlement.link_problems(o, settings)
    blocker = entitlement.subdomain_blocker(o)
    withdrawn = any(p.reason in WITHDRAWN for p in link) or blocker is not None
    for reserved in (o.subdomain_reserved, o.host_reserved):
        if reserved is not None:  # come back when the reservation ends
            wait = (names.parse_time(reserved.until) - now).total_seconds() + 1
            requeue = min(requeue or wait, wait)
    moved = rename.decide(
        portal.subdomain, status, settings.base_domain, now, settings.rename_grace_seconds
    )
    rename.write(new, moved)
    if moved.release_in is not None:  # come back when a previous subdomain is released
        requeue = min(requeue or moved.release_in, moved.release_in)
    if portal.paused and not (withdrawn or expired):
        # Paused stops changes; a lost entitlement or an expired trial still withdraws
        # (below), so pausing never keeps credentials or routing a portal may not have.
        phase, ready = summarize([], paused=True)
        kept = [c for c in previous if c.get("type") != "Ready"]
        new["conditions"] = kept + to_status([ready], previous, o.generation, stamp)
        return _finish(o, settings, now, new, phase, ready, Changes(), requeue)
    conditions: list[Condition] = []
    if link:
        message = "; ".join(p.message for p in link)
        conditions.append(false("InstanceLinked", link[0].reason, message))
    else:
        conditions.append(
            true("InstanceLinked", "Linked", f"linked to PortalInstance {portal.instance}")
        )
    if portal.state == site.DEPROVISIONED:
        return _deprovisioned(o, settings, new, conditions, now, requeue)
    site.released_status(new, status, stamp, False, holds=not withdrawn)
    if blocker is not None and blocker.reason == Failure.SUBDOMAIN_TAKEN:
        note = site.reactivation_note(status) + _rename_note(moved)
        blocker = replace(blocker, message=blocker.message + note)

    domain = custom_domain.Assessment()
    run: _Run | None = None
    # None: change nothing (a reference a person must fix; the old runtime keeps serving).
    desired: list[dict[str, Any]] | None = None
    keep: set[Key] = set()
    if withdrawn or portal.paused:  # paused here: expired, so the runtime goes too
        # An unentitled portal holds no name: no routing, no page on the shared domain.
        entitled = not any(p.reason in entitlement.UNENTITLED for p in link)
        desired, keep = _withdrawn(o, settings, routed=blocker is None and entitled)
        new.pop("customDomainUrl", None)
    elif not link:
        domain = custom_domain.assess(
            portal,
            settings,
            status,
            o.host_owner,
            o.dns,
            o.certificate,
            o.child("Certificate", names.runtime_name(portal.name)),
            now,
            o.host_reserved,
            o.ownership,
            o.dns_seen,
        )
        run = _provision(o, settings, now, expired, domain)
        if run.token and run.token.renew_in is not None:
            requeue = min(requeue or run.token.renew_in, run.token.renew_in)
        new.update(run.status)
        desired, keep = desired_children(portal, o.instance, settings, run.facts), run.keep
        conditions += run.conditions + domain.conditions
        analytics, runtime_problems = entitlement.mounted_secrets(o)
        if runtime_problems:
            p = runtime_problems[0]
            conditions.append(Condition("RuntimeAvailable", "False", p.reason, p.message))
        else:
            conditions.append(_runtime(o, desired))
        if portal.state == site.STOPPED:
            conditions = [
                _stopped_runtime(o) if c.type == "RuntimeAvailable" else c for c in conditions
            ]
        conditions += analytics
        if allow := access.condition(portal, settings):
            conditions.append(allow)
        _record_domain(new, portal.custom_domain is not None, domain)
        if mode := _maintenance(o):
            conditions.append(mode.condition)
            new["maintenance"] = mode.status
            if mode.page is not None:
                desired.append(with_hash(maintenance.config_map(portal, mode.page)))
    conflicts = [k for k in _keys(desired or ()) if k in o.foreign]
    if conflicts:
        blocker = blocker or _conflict(tuple(conflicts), portal.name)
    # What the portal is, the Service's routing aside: that decides where the Service points.
    phase, ready = _summarize(portal, conditions, expired, blocker)
    diff = Changes()
    if desired is not None:
        if desired:
            # Paused reaches here only with an expired trial: its runtime goes too.
            up = not withdrawn and not portal.paused and routing.runtime_up(o.children, portal.name)
            desired = routing.route(desired, phase, up, ready.reason, "maintenance" in new)
            if waiting := await_routing(phase, conditions, desired, o.endpoints, portal.name):
                conditions = [waiting if c.type == waiting.type else c for c in conditions]
                phase, ready = _summarize(portal, conditions, expired, blocker)
        diff = changes(desired, o.children, o.foreign, keep)
    if phase == "Ready" and "maintenance" in new:
        ready = true(
            "Ready",
            "Ready",
            "the portal is provisioned and its runtime serves; maintenance mode is on: "
            "visitors get the maintenance page",
        )
    if phase == "Ready" and (restart := portal.annotations.get(names.RESTART_SITE)):
        # Ready waited for the rolled-out pods alone to be routed: the new pods serve.
        new["lastHandledSiteRestart"] = restart
    synced = true("Synced", RECONCILE_SUCCESS, "the last reconcile succeeded")
    new["conditions"] = to_status([ready, *conditions, synced], previous, o.generation, stamp)
    plan = _finish(o, settings, now, new, phase, ready, diff, requeue)
    taken = blocker is not None and blocker.reason == Failure.SUBDOMAIN_TAKEN
    if not taken and (renamed := _renamed_event(o, settings, moved)):
        plan = replace(plan, events=(*plan.events, renamed))
    removed = [f"{k} {n}" for k, n in diff.deletes]
    instance_secret = names.instance_secret_name(portal.name)
    held_token = "token" in ((o.child("Secret", instance_secret) or {}).get("data") or {})
    if withdrawn and held_token and ("Secret", instance_secret) not in diff.deletes:
        removed.insert(0, f"the token in Secret {instance_secret}")
    if (withdrawn or portal.paused) and removed:
        said = ", ".join(removed)
        withdrawal = Event("Warning", "Withdrawn", f"{ready.reason}: removed {said}")
        plan = replace(plan, events=(*plan.events, withdrawal))
    plan = replace(plan, dns_pending=domain.dns_pending, certificate_expiry=domain.expires_in)
    plan = _tokens(o, settings, plan, run.token if run else None)
    if run and run.keys:
        plan = _rotated(o, plan, run.keys)
    return _paced(o, plan, settings.status_hold_seconds, now)


def _rename_note(moved: rename.Outcome) -> str:
    """Appended to SubdomainTaken for a renamed portal: its old names are still its own."""
    if not moved.previous:
        return ""
    held = ", ".join(f"{p.subdomain} (until {p.releases_at})" for p in moved.previous)
    return (
        f"; this portal still holds its previous subdomain(s) {held}: set spec.subdomain "
        "back to one of them to serve there again"
    )


def _renamed_event(o: Observed, settings: Settings, moved: rename.Outcome) -> Event | None:
    """A Normal Event when this plan completes a rename (its status moves status.url)."""
    old = rename.current(o.status, settings.base_domain)
    if not rename.moving(o.portal.subdomain, o.status, settings.base_domain):
        return None
    until = next((p.releases_at for p in moved.previous if p.subdomain == old), "")
    where = render.default_url(o.portal, settings)
    message = f"the portal's address is now {where} (renamed from {old})"
    if until:
        message += f"; the old address redirects to it until {until}, then it is released"
    return Event("Normal", "Renamed", message)


def _summarize(
    portal: Any, conditions: list[Condition], expired: bool, blocker: Condition | None
) -> tuple[str, Condition]:
    """The phase, Stopped for a stopped site that is neither expired nor failing."""
    phase, ready = summarize(conditions, expired=expired, blocker=blocker)
    if portal.state == site.STOPPED and phase in ("Ready", "Configuring"):
        return site.STOPPED, site.stopped()
    return phase, ready


def _maintenance(o: Observed) -> maintenance.Decision | None:
    """Maintenance applies to a running site only (a stopped one shows the stopped page)."""
    if o.portal.state != site.RUNNING:
        return None
    return maintenance.decide(o.portal, o.maintenance_source)


def _stopped_runtime(o: Observed) -> Condition:
    deployment = o.child("Deployment", names.runtime_name(o.portal.name)) or {}
    left = int((deployment.get("status") or {}).get("replicas", 0))
    message = "spec.state is Stopped: the runtime is scaled to zero"
    if left:
        message += f" ({left} pod(s) still stopping)"
    return false("RuntimeAvailable", site.STOPPED, message)


def _deprovisioned(
    o: Observed,
    settings: Settings,
    new: dict[str, Any],
    conditions: list[Condition],
    now: datetime.datetime,
    requeue: float | None,
) -> Plan:
    """The host released: only the configuration and the certificate stay (core/site.py);
    the instance Secret goes, so its token is revoked."""
    stamp = names.iso(now)
    portal = o.portal
    facts = render.Facts(provision=False)
    wanted = site.kept(portal.name)
    desired = [
        m
        for m in desired_children(portal, o.instance, settings, facts)
        if (m["kind"], m["metadata"]["name"]) in wanted
    ]
    diff = changes(desired, o.children, o.foreign, wanted)
    new.pop("customDomainUrl", None)
    rename.write(new, rename.Outcome(portal.subdomain, (), "", None))  # it holds no name
    site.released_status(new, o.status, stamp, True, holds=False)
    ready = site.deprovisioned()
    synced = true("Synced", RECONCILE_SUCCESS, "the last reconcile succeeded")
    previous = list(o.status.get("conditions") or ())
    new["conditions"] = to_status([ready, *conditions, synced], previous, o.generation, stamp)
    plan = _finish(o, settings, now, new, site.DEPROVISIONED, ready, diff, requeue)
    plan = _tokens(o, settings, plan, None)
    return _paced(o, plan, settings.status_hold_seconds, now)


def _paced(o: Observed, plan: Plan, hold_seconds: float, now: datetime.datetime) -> Plan:
    """PLAN with its status held back when it may wait (pacing.py), and a time to come back."""
    wait = pacing.held_for(
        o.status, plan.status, bool(plan.events), o.status_written, hold_seconds, now, o.configuring
    )
    if not wait:
        return plan
    return replace(plan, status=dict(o.status), requeue_after=min(plan.requeue_after or wait, wait))


def _tokens(o: Observed, settings: Settings, plan: Plan, held: token.TokenPlan | None) -> Plan:
    """Mint when the instance Secret is written without a token; revoke the token it held
    when it is withdrawn. A renewed token is not revoked: running pods see the new one
    only when the kubelet updates their mounted file, so the old one ends at its expiry
    (a third of its lifetime later at most). A token of another instance ends by expiry."""
    key = ("Secret", names.instance_secret_name(o.portal.name))
    written = next((w.manifest for w in plan.writes if w.key == key), None)
    minting = bool(held and held.mint and written is not None)
    old = token.revocable(o.child(*key), o.instance)
    # Withdrawn: the Secret deleted, or rewritten with the session keys alone.
    dropped = key in plan.deletes or (
        not minting and written is not None and "token" not in (written.get("data") or {})
    )
    revoke = (old,) if old and dropped else ()
    ttl = settings.instance_token_ttl_seconds if minting else 0
    return replace(plan, mint_token=ttl, revoke_tokens=revoke)


def _rotated(o: Observed, plan: Plan, keys: session_keys.SessionKeys) -> Plan:
    """An Event when this plan writes rotated session keys (it names the token, no key)."""
    key = ("Secret", names.instance_secret_name(o.portal.name))
    if keys.change != "rotated" or not any(w.key == key for w in plan.writes):
        return plan
    event = Event(
        "Normal",
        "SessionKeysRotated",
        f"Secret {key[1]} has a new session key ({names.ROTATE_SESSION_KEYS}="
        f"{keys.handled}); sessions signed with the previous key stay valid until the "
        "next rotation",
    )
    return replace(plan, events=(*plan.events, event))


def _keys(manifests: Any) -> list[Key]:
    return [(m["kind"], m["metadata"]["name"]) for m in manifests]


def _runtime(o: Observed, desired: list[dict[str, Any]]) -> Condition:
    """RuntimeAvailable, knowing whether this plan writes a new Deployment spec."""
    key = ("Deployment", names.runtime_name(o.portal.name))
    manifest = next(m for m in desired if (m["kind"], m["metadata"]["name"]) == key)
    current = o.child(*key)
    return runtime_condition(current, not up_to_date(manifest, current))


def _withdrawn(
    o: Observed, settings: Settings, routed: bool
) -> tuple[list[dict[str, Any]], set[Key]]:
    """What a portal that lost an entitlement keeps: its configuration, its own certificate
    and, for a URL it still owns, its Service — no credentials, no runtime, no Jobs, and no
    Ingress, so its hosts show the page server's page."""
    # Its own certificate; and its session keys, so sessions outlive a lapse: the
    # instance Secret keeps them alone, its token gone (and revoked: _tokens).
    keep = {("Secret", names.tls_secret_name(o.portal.name))}
    keys = _session_keys(o)
    facts = render.Facts(provision=False, session_keys=None if keys.change == "created" else keys)
    kept = {("Secret", names.instance_secret_name(o.portal.name))}
    if routed:
        kept |= {
            ("ConfigMap", names.config_name(o.portal.name)),
            ("NetworkPolicy", names.network_policy_name(o.portal.name)),
            ("Service", names.runtime_name(o.portal.name)),
        }
    else:  # the subdomain is another portal's: no routing at all
        keep.add(("ConfigMap", names.config_name(o.portal.name)))
    children = desired_children(o.portal, o.instance, settings, facts)
    return [m for m in children if (m["kind"], m["metadata"]["name"]) in kept], keep


def _session_keys(o: Observed) -> session_keys.SessionKeys:
    """The session keys `<portal>-instance` is to hold (those of a release that kept them
    in `<portal>-session` carried over once, so an upgrade signs no one out)."""
    secret = o.child("Secret", names.instance_secret_name(o.portal.name))
    if not session_keys.held_keys(secret):
        secret = o.child("Secret", names.legacy_session_secret_name(o.portal.name)) or secret
    return session_keys.plan(secret, session_keys.requested(o.portal.annotations), o.session_key)


def _record_domain(new: dict[str, Any], has_domain: bool, domain: custom_domain.Assessment) -> None:
    """status.customDomain(Url) and status.certificate follow the assessment (no key material)."""
    new.pop("customDomainUrl", None)
    if domain.record:
        new["customDomain"] = domain.record
        if domain.serve:
            new["customDomainUrl"] = f"https://{domain.record['hostname']}"
    elif not has_domain:
        new.pop("customDomain", None)
    if domain.certificate_status:
        new["certificate"] = domain.certificate_status
    elif not has_domain:
        new.pop("certificate", None)


def _finish(
    o: Observed,
    settings: Settings,
    now: datetime.datetime,
    new: dict[str, Any],
    phase: str,
    ready: Condition,
    diff: Changes,
    requeue: float | None,
) -> Plan:
    new["phase"] = phase
    old = o.status
    events: list[Event] = []
    attempt = (new.get("provisioning") or {}).get("attempt")
    # Only a restart's attempt has a start Event: a new portal's first attempt and a spec
    # edit's begin with the apply (its time is the person's own), the attempt is in
    # status.provisioning, and its end has its Event. (One Event, Ready, for a new portal.)
    created = not old.get("phase")
    edited = old.get("observedGeneration") not in (None, new["observedGeneration"]) and bool(
        old.get("provisioning")
    )
    restarted = new.get("lastHandledRestart") != old.get("lastHandledRestart")
    started = attempt != (old.get("provisioning") or {}).get("attempt")
    if started and restarted:
        job = new["provisioning"]["job"]
        events.append(
            Event(
                "Normal",
                "ProvisioningStarted",
                f"provisioning attempt {attempt} started (Job {job})",
            )
        )
    before = {c.get("type"): c.get("reason") for c in old.get("conditions") or ()}
    # One Event per phase change, and per new reason while Failed; progress within
    # Configuring is in the conditions (a restart's attempt has its own Event; a new
    # portal's Configuring and a spec edit's return to it none: the apply is the cause).
    moved = old.get("phase") != phase
    if (moved and not ((events or edited or created) and phase == "Configuring")) or (
        phase == "Failed" and before.get("Ready") != ready.reason
    ):
        events.append(Event(*_event_for(phase, ready)))
    expiring = next((c for c in new["conditions"] if c["reason"] == EXPIRING), None)
    if expiring and before.get("CertificateReady") != EXPIRING:
        events.append(Event("Warning", EXPIRING, expiring["message"]))
    unguarded = next((c for c in new["conditions"] if c["reason"] == access.NOT_ENFORCED), None)
    if unguarded and before.get(access.CONDITION) != access.NOT_ENFORCED:
        events.append(Event("Warning", access.NOT_ENFORCED, unguarded["message"]))
    events += _notices(o, settings, now, new, events)
    return Plan(
        phase=phase,
        status=new,
        writes=diff.writes,
        deletes=diff.deletes,
        events=tuple(events),
        requeue_after=requeue,
        skipped=diff.skipped,
    )


def _notices(
    o: Observed,
    settings: Settings,
    now: datetime.datetime,
    new: dict[str, Any],
    events: list[Event],
) -> list[Event]:
    """Record the notifications this plan makes due (core/notifications.py) in NEW, in the
    same status write as their Events; returns the Events the plan does not have yet."""
    trial = o.portal.type == "Trial"
    notices = notifications.due(
        portal=o.portal.name,
        trial=trial,
        expiry=trial_expiry(o, settings),
        now=now,
        old=o.status,
        new=new,
        generation=o.generation,
        running=o.portal.state == site.RUNNING,
    )
    said = {e.reason: e.message for e in events}
    notifications.record(new, o.status, notices, said, channels(settings), names.iso(now))
    return [Event(n.type, n.reason, n.message) for n in notices if n.reason not in said]


def channels(settings: Settings) -> tuple[str, ...]:
    """Where notifications go besides Events: the operator's settings say."""
    out = ("email",) if settings.notification_email else ()
    return out + (("webhook",) if settings.notification_webhook_url else ())


def _event_for(phase: str, ready: Condition) -> tuple[str, str, str]:
    if phase == "Ready":
        return "Normal", "Ready", ready.message
    if phase == "Failed":
        return "Warning", ready.reason, ready.message
    if phase == "Expired":
        return "Warning", "TrialExpired", ready.message
    return "Normal", phase if phase == "Paused" else ready.reason, ready.message


def failed(
    o: Observed, plan: Plan | None, error: str, permanent: bool, now: datetime.datetime
) -> Plan:
    """The status to write when a reconcile failed: Synced and Ready say so, in the server's words.

    A client error (forbidden, invalid) needs a person: Failed. A transient one is
    retried with backoff: Configuring.
    """
    stamp = names.iso(now)
    base = dict(plan.status) if plan else {**o.status, "observedGeneration": o.generation}
    prov = base.get("provisioning") or {}
    if prov.get("state") == "Running" and o.child("Job", prov.get("job", "")) is None:
        base["provisioning"] = {**prov, "state": "Pending"}  # its Job may not have been made
    previous = list(o.status.get("conditions") or ())
    kept = [
        Condition(c["type"], c["status"], c.get("reason", ""), c.get("message", ""))
        for c in base.get("conditions") or ()
        if c.get("type") not in ("Ready", "Synced")
    ]
    message = f"the last reconcile failed: {error}"
    ready = false("Ready", RECONCILE_ERROR, message)
    synced = false("Synced", RECONCILE_ERROR, error)
    base["conditions"] = to_status([ready, *kept, synced], previous, o.generation, stamp)
    base["phase"] = "Failed" if permanent else "Configuring"
    events: tuple[Event, ...] = ()
    if reason_of(o.status, "Synced") != RECONCILE_ERROR:
        events = (Event("Warning", RECONCILE_ERROR, error),)
    return Plan(phase=base["phase"], status=base, events=events)
