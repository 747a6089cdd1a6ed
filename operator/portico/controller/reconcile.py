"""One idempotent reconcile of a Portal: observe → check → desired children → apply → status.

Called for every reason (create, edit, child changed, instance changed,
timer); it never depends on why it was called.
"""

from __future__ import annotations

import datetime
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

from portico.api.model import Portal, parse_instance
from portico.controller import metrics
from portico.controller.act import Writer
from portico.controller.kube import Kube
from portico.controller.observe import Observed, observe
from portico.core import claims, custom_domain, features, progress, references, render
from portico.core.conditions import Condition, false, summarize, to_status, true
from portico.settings import Settings


@dataclass(frozen=True)
class Outcome:
    phase: str = ""
    writes: int = 0
    # Come back after this many seconds even if nothing happens (trial expiry).
    requeue_after: float | None = None
    # The custom domain's DNS is not settled: re-check with backoff.
    dns_pending: bool = False


def _iso(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_time(value: str) -> datetime.datetime:
    return datetime.datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.UTC)


def _secret_conditions(observed: Observed) -> tuple[list[Condition], list[Condition]]:
    """(AnalyticsConfigured, problems for the runtime) from the Secrets the spec mounts."""
    portal = observed.portal

    def missing(name: str, key: str, what: str) -> Condition | None:
        secret = observed.secrets.get(name)
        if secret is None:
            return false(
                "",
                "SecretNotFound",
                f"Secret {name} ({what}) does not exist in namespace "
                f"{portal.namespace}; create it with key {key}",
            )
        if key not in (secret.get("data") or {}):
            return false("", "SecretKeyMissing", f"Secret {name} ({what}) has no key {key}; add it")
        return None

    analytics: list[Condition] = []
    if ci := portal.customer_insights:
        problem = missing(ci.shared_key.name, ci.shared_key.key, "analytics shared key")
        analytics.append(
            Condition("AnalyticsConfigured", "False", problem.reason, problem.message)
            if problem
            else true("AnalyticsConfigured", "Configured", f"sending interactions to {ci.hub_uri}")
        )
    runtime = [
        p
        for idp in portal.authentication.identity_providers
        if (
            p := missing(
                idp.client_secret.name,
                idp.client_secret.key,
                f"client secret of identity provider {idp.name}",
            )
        )
    ]
    return analytics, runtime


def _secrets_checksum(observed: Observed) -> str:
    """Changes whenever a mounted Secret does, so the runtime rolls and reads the new value."""
    versions = sorted(
        f"{name}={(s or {}).get('metadata', {}).get('resourceVersion', '-')}"
        for name, s in observed.secrets.items()
        if name in {ref.name for ref in observed.portal.secret_refs}
    )
    if observed.credentials:
        versions.append(f"instance={observed.credentials['metadata'].get('resourceVersion')}")
    return hashlib.sha256("\n".join(versions).encode()).hexdigest()[:16]


def _runtime_condition(deployment: dict[str, Any] | None) -> Condition:
    for cond in ((deployment or {}).get("status") or {}).get("conditions") or ():
        if cond.get("type") == "Available":
            if cond.get("status") == "True":
                ready = (deployment or {}).get("status", {}).get("availableReplicas", 0)
                return true("RuntimeAvailable", "Available", f"{ready} replica(s) available")
            return false(
                "RuntimeAvailable",
                cond.get("reason") or "Unavailable",
                cond.get("message") or "the runtime is not available yet",
            )
    return false("RuntimeAvailable", "Deploying", "the runtime Deployment is starting")


def _trial_expiry(observed: Observed, settings: Settings) -> datetime.datetime | None:
    if observed.portal.type != "Trial":
        return None
    created = _parse_time(observed.obj["metadata"]["creationTimestamp"])
    return created + datetime.timedelta(days=settings.trial_days)


def _claim_blocker(
    portal_ref: str, subdomain: str, claimants: Iterable[claims.Claimant]
) -> Condition | None:
    owner = claims.owner(claimants, subdomain, "subdomain")
    if owner and owner.ref != portal_ref:
        return false(
            "Ready",
            "SubdomainTaken",
            f"subdomain {subdomain} is already used by portal {owner.ref}; choose another "
            "subdomain (create a new Portal) or delete that portal",
        )
    return None


def reconcile(
    kube: Kube,
    writer: Writer,
    settings: Settings,
    claimants: Iterable[claims.Claimant],
    namespace: str,
    name: str,
    now: datetime.datetime | None = None,
) -> Outcome:
    """Bring one portal's children and status in line with its spec."""
    observed = observe(kube, namespace, name, settings.cert_manager)
    if observed is None:
        return Outcome()
    now = now or datetime.datetime.now(datetime.UTC)
    stamp = _iso(now)
    portal, obj, status = observed.portal, observed.obj, observed.status
    generation = int(obj["metadata"].get("generation", 1))
    annotations = portal.annotations
    new: dict[str, Any] = {
        "observedGeneration": generation,
        "url": render.default_url(portal, settings),
        "features": features.features(portal.template),
        "solutions": features.solutions(portal.template),
    }
    for key in ("provisioning", "translations", "certificate", "customDomainUrl"):
        if key in status:
            new[key] = status[key]
    if recheck := annotations.get(progress.RECHECK):
        new["lastHandledReconcileAt"] = recheck
    elif "lastHandledReconcileAt" in status:
        new["lastHandledReconcileAt"] = status["lastHandledReconcileAt"]
    if "lastHandledRestart" in status:
        new["lastHandledRestart"] = status["lastHandledRestart"]

    expiry = _trial_expiry(observed, settings)
    if expiry:
        new["trialExpiresAt"] = _iso(expiry)
    writes = 0
    conditions: list[Condition] = []
    blocker = _claim_blocker(f"{namespace}/{name}", portal.subdomain, claimants)

    if portal.paused:
        phase, ready = summarize([], paused=True)
        previous = [c for c in status.get("conditions") or () if c.get("type") != "Ready"]
        new["conditions"] = previous + to_status(
            [ready], status.get("conditions") or (), generation, stamp
        )
        return _finish(writer, observed, new, phase, ready, writes, None)

    link = references.check_hostname(portal, settings.base_domain) + references.check_instance_link(
        portal, observed.instance, observed.namespace_labels
    )
    if observed.instance and observed.credentials is None:
        ns, secret = observed.instance.credentials
        link.append(
            references.Problem(
                "CredentialsNotFound",
                f"the credentials Secret {ns}/{secret} of PortalInstance {observed.instance.name} "
                "does not exist; create it or fix the instance's spec.credentialsSecretRef",
            )
        )
    if link:
        conditions.append(
            false("InstanceLinked", link[0].reason, "; ".join(p.message for p in link))
        )
    else:
        conditions.append(
            true("InstanceLinked", "Linked", f"linked to PortalInstance {portal.instance}")
        )

    expired = bool(expiry and now >= expiry)
    requeue = (expiry - now).total_seconds() + 1 if expiry and not expired else None
    dns_pending = False
    if not link and not blocker and observed.instance:
        domain = custom_domain.assess(
            portal,
            settings,
            status,
            observed.secrets,
            observed.secrets.get(custom_domain.tls_secret_name(portal)),
            observed.child("Certificate", portal.name),
            claimants,
            now,
        )
        writes, more = _provision(writer, observed, settings, new, stamp, expired, domain)
        conditions += more + domain.conditions
        _record_domain(new, portal, domain)
        dns_pending = domain.dns_pending
    phase, ready = summarize(conditions, expired=expired, blocker=blocker)
    new["conditions"] = to_status(
        [ready, *conditions], status.get("conditions") or (), generation, stamp
    )
    outcome = _finish(writer, observed, new, phase, ready, writes, requeue)
    return replace(outcome, dns_pending=dns_pending)


def _record_domain(new: dict[str, Any], portal: Portal, domain: custom_domain.Assessment) -> None:
    """status.customDomainUrl and status.certificate follow the assessment (never key material)."""
    new.pop("customDomainUrl", None)
    if domain.serve and portal.custom_domain:
        new["customDomainUrl"] = f"https://{portal.custom_domain.hostname}"
    if domain.certificate_status:
        new["certificate"] = domain.certificate_status
    elif not portal.custom_domain:
        new.pop("certificate", None)
    if domain.expires_in is not None:
        metrics.CERTIFICATE_EXPIRY.labels(namespace=portal.namespace, portal=portal.name).set(
            domain.expires_in
        )


def _provision(
    writer: Writer,
    observed: Observed,
    settings: Settings,
    new: dict[str, Any],
    stamp: str,
    expired: bool,
    domain: custom_domain.Assessment,
) -> tuple[int, list[Condition]]:
    """Render and apply the children; the aspect conditions that follow from them."""
    portal, status = observed.portal, observed.status
    assert observed.instance is not None
    conditions: list[Condition] = []
    restart = portal.annotations.get(progress.RESTART, "")
    attempt = progress.attempt_for(
        status, int(observed.obj["metadata"].get("generation", 1)), restart, stamp
    )
    job_name = render.provision_job_name(portal, attempt.number)
    prerequisite = references.check_prerequisites(portal, observed.instance)
    attempt = progress.observe_attempt(attempt, observed.child("Job", job_name), stamp)
    if said := observed.job_failures.get(job_name):
        attempt = replace(attempt, failure=f"{attempt.failure} (the job said: {said})")
    if prerequisite:
        # Nothing starts until the instance has it; the attempt begins once it does.
        new.pop("provisioning", None)
        if "provisioning" in status:
            new["provisioning"] = status["provisioning"]
    else:
        new["provisioning"] = attempt.status(job_name)
        if attempt.restart:
            new["lastHandledRestart"] = attempt.restart
    if prerequisite:
        conditions.append(
            false("SolutionsInstalled", prerequisite[0].reason, prerequisite[0].message)
        )
    else:
        conditions.append(progress.solutions_condition(attempt, job_name))

    translations = None
    if portal.additional_languages or status.get("translations"):
        translations = progress.translations_for(
            status,
            portal.additional_languages,
            portal.annotations.get(progress.REFRESH_TRANSLATIONS, ""),
            observed.child(
                "Job",
                render.translations_job_name(
                    portal, int((status.get("translations") or {}).get("run", 0))
                ),
            ),
            provisioned=attempt.state == "Succeeded",
        )
        t_job = render.translations_job_name(portal, translations.run)
        new["translations"] = translations.status(t_job)
        if portal.additional_languages:
            conditions.append(progress.translations_condition(translations, t_job))

    analytics, runtime_problems = _secret_conditions(observed)
    creds = (observed.credentials or {}).get("data") or {}
    facts = render.Facts(
        attempt=attempt.number,
        provision=not prerequisite and not attempt.finished,
        expired=expired,
        secrets_checksum=_secrets_checksum(observed),
        translations_run=translations.run if translations and translations.active else 0,
        translations_languages=translations.languages if translations else (),
        instance_credentials=creds,
        custom_host_ready=domain.serve,
        custom_tls_secret=domain.tls_secret,
        tls_data=domain.tls_data,
        issue_certificate=domain.issue,
    )
    desired = render.children(portal, observed.instance, settings, facts)
    # A rejected replacement never takes the last good certificate away.
    keep = {("Job", job_name), ("Secret", domain.tls_secret)}
    if translations and translations.run:
        keep.add(("Job", render.translations_job_name(portal, translations.run)))
    writes = writer.apply_children(desired, observed.children, keep)

    if runtime_problems:
        p = runtime_problems[0]
        conditions.append(Condition("RuntimeAvailable", "False", p.reason, p.message))
    else:
        conditions.append(_runtime_condition(observed.child("Deployment", portal.name)))
    conditions += analytics
    return writes, conditions


def _finish(
    writer: Writer,
    observed: Observed,
    new: dict[str, Any],
    phase: str,
    ready: Condition,
    writes: int,
    requeue: float | None,
) -> Outcome:
    new["phase"] = phase
    old = observed.status
    meta = observed.obj["metadata"]
    if writer.patch_status("Portal", meta["namespace"], meta["name"], old, new):
        writes += 1
    attempt = (new.get("provisioning") or {}).get("attempt")
    if attempt != (old.get("provisioning") or {}).get("attempt"):
        job = new["provisioning"]["job"]
        message = f"provisioning attempt {attempt} started (Job {job})"
        writer.event(observed.obj, "Normal", "ProvisioningStarted", message)
        writes += 1
    before = {c.get("type"): c.get("reason") for c in old.get("conditions") or ()}
    if old.get("phase") != phase or before.get("Ready") != ready.reason:
        writer.event(observed.obj, *_event_for(phase, ready))
        writes += 1
    expiring = next((c for c in new["conditions"] if c["reason"] == EXPIRING), None)
    if expiring and before.get("CertificateReady") != EXPIRING:
        writer.event(observed.obj, "Warning", EXPIRING, expiring["message"])
        writes += 1
    return Outcome(phase, writes, requeue)


EXPIRING = "CertificateExpiringSoon"


def _event_for(phase: str, ready: Condition) -> tuple[str, str, str]:
    if phase == "Ready":
        return "Normal", "Ready", ready.message
    if phase == "Failed":
        return "Warning", ready.reason, ready.message
    if phase == "Expired":
        return "Warning", "TrialExpired", ready.message
    return "Normal", phase if phase == "Paused" else ready.reason, ready.message


def reconcile_instance(kube: Kube, writer: Writer, name: str, portal_count: int) -> None:
    """PortalInstance status: how many portals link to it, and whether it is usable."""
    obj = kube.get("PortalInstance", None, name)
    if obj is None:
        return
    instance = parse_instance(obj)
    ns, secret = instance.credentials
    if kube.get("Secret", ns, secret) is None:
        ready = false(
            "Ready",
            "CredentialsNotFound",
            f"the credentials Secret {ns}/{secret} does not exist; create it",
        )
    else:
        ready = true("Ready", "Available", "portals can link to this instance")
    old = obj.get("status") or {}
    generation = int(obj["metadata"].get("generation", 1))
    stamp = _iso(datetime.datetime.now(datetime.UTC))
    new = {
        "observedGeneration": generation,
        "portalCount": portal_count,
        "conditions": to_status([ready], old.get("conditions") or (), generation, stamp),
    }
    writer.patch_status("PortalInstance", None, name, old, new)
