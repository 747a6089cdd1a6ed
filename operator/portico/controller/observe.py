"""Observe: every read and lookup one reconcile needs, and nothing else.

Objects come from the watch-fed store; the API is asked only for what the
store cannot know (an object that is not Portico's, a Secret whose values were
not kept, a failed Job's pod). A DNS lookup is made when one is due, and a
certificate is converted once per Secret version.
"""

from __future__ import annotations

import asyncio
import copy
import datetime
import functools
import threading
import time
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from secrets import token_urlsafe
from typing import Any

from portico import certificates, domain
from portico.api import crds, validation
from portico.api.model import Portal, PortalInstance, parse_instance, parse_portal
from portico.certificates.isolation import CertificateWorkers
from portico.controller.certcache import CertificateCache
from portico.controller.index import Index
from portico.controller.kube import Kube
from portico.controller.store import Store, controller_uid
from portico.core import claims, custom_domain, entitlement, names
from portico.core.claims import Claimant, Reservation
from portico.core.observed import Key, Observed, SecretView
from portico.core.progress import job_state, termination_message
from portico.settings import Settings

# Looks by name kept at most (one per referrer and Secret the watch does not bring).
UNWATCHED_MAX = 10_000


def parse(obj: Mapping[str, Any]) -> Portal:
    """The stored object was admitted already; only the defaults need filling in."""
    schema = crds.schema_for("Portal")
    return parse_portal(validation.apply_defaults(schema, copy.deepcopy(dict(obj))))


@dataclass
class DnsSchedule:
    """When each portal's custom host is next looked up, and how many checks stayed unsettled."""

    due: dict[tuple[str, str], tuple[str, float, int]] = field(default_factory=dict)

    def is_due(self, key: tuple[str, str], host: str, now: float) -> bool:
        entry = self.due.get(key)
        return entry is None or entry[0] != host or now >= entry[1]

    def checked(self, key: tuple[str, str], host: str, settled: bool, settings: Settings) -> float:
        """Record a lookup; returns seconds until the next one."""
        entry = self.due.get(key)
        misses = 0 if settled else (entry[2] + 1 if entry and entry[0] == host else 1)
        delay = (
            settings.resync_seconds
            if settled
            else domain.recheck_delay(misses - 1, base=settings.dns_recheck_seconds)
        )
        self.due[key] = (host, time.monotonic() + delay, misses)
        return delay

    def next_in(self, key: tuple[str, str]) -> float | None:
        entry = self.due.get(key)
        return max(entry[1] - time.monotonic(), 0.0) if entry else None

    def forget(self, key: tuple[str, str]) -> None:
        self.due.pop(key, None)


@dataclass
class Observer:
    kube: Kube
    store: Store
    index: Index
    settings: Settings
    # The store's lock: the caches below change from reconcile threads and the event loop.
    lock: threading.RLock = field(default_factory=threading.RLock)
    dns: DnsSchedule = field(default_factory=DnsSchedule)
    # (namespace, portal) → children found to be someone else's; re-checked each time
    foreign: dict[tuple[str, str], set[Key]] = field(default_factory=dict)
    # Made from settings unless given (tests give their own).
    workers: CertificateWorkers | None = None
    cert_cache: CertificateCache | None = None
    _job_messages: dict[str, str] = field(default_factory=dict)
    # ("subdomain" | "host", value) → the reservation a deleted holder left for its namespace.
    reservations: dict[tuple[str, str], Reservation] = field(default_factory=dict)
    # Portals in Configuring as the operator last counted them (core/pacing.py).
    configuring: int = 0
    # Claim holders found gone (a DELETED event missed across a relist); the operator
    # forgets them on its own loop and wakes who waited.
    gone: set[tuple[str, str]] = field(default_factory=set)
    # (namespace, name, referrer) → (the referrer's version, what a read by name found):
    # referenced Secrets the watch does not bring (missing, or without names.SECRET_LABEL).
    # Per referrer, so two portals naming one such Secret do not undo each other's answer.
    unwatched: dict[tuple[str, str, Hashable], tuple[Hashable, SecretView | None]] = field(
        default_factory=dict
    )

    def take_gone(self) -> list[tuple[str, str]]:
        with self.lock:
            gone, self.gone = list(self.gone), set()
        return gone

    def found_foreign(self, key: tuple[str, str], child: Key) -> None:
        with self.lock:
            self.foreign.setdefault(key, set()).add(child)

    def __post_init__(self) -> None:
        s = self.settings
        if self.workers is None:
            self.workers = CertificateWorkers(
                s.certificate_workers, s.certificate_cpu_seconds, s.certificate_timeout_seconds
            )
        if self.cert_cache is None:
            self.cert_cache = CertificateCache(s.certificate_cache_size)

    def observe(self, namespace: str, name: str, now: datetime.datetime) -> Observed | None:
        obj = self.store.portals.get((namespace, name))
        if obj is None or obj["metadata"].get("deletionTimestamp"):
            return None
        if namespace in self.store.terminating:
            return None  # going with its namespace: nothing may be created there any more
        portal = parse(obj)
        instance_obj = self.store.instance(portal.instance)
        if instance_obj is None:  # not seen yet, or truly missing: the API decides
            instance_obj = self.kube.get("PortalInstance", None, portal.instance)
        instance = parse_instance(instance_obj) if instance_obj else None
        labels = None
        if instance and instance.allowed_from == "Selector":
            labels = self.store.namespace_labels.get(namespace)
            if labels is None:
                ns = self.kube.get("Namespace", None, namespace) or {}
                labels = dict((ns.get("metadata") or {}).get("labels") or {})
        # Never read from a namespace instances may not name (CredentialsNotAllowed).
        allowed = instance and not entitlement.credentials_problem(instance, self.settings)
        credentials = self.credentials(instance) if instance and allowed else None
        # A Secret the watch does not bring is looked at again only when the portal changes.
        meta = obj["metadata"]
        notes = meta.get("annotations") or {}
        since = (
            f"Portal/{namespace}/{name}",
            (
                portal.uid,
                meta.get("generation"),
                notes.get(names.RECHECK),
                notes.get(names.RESTART),
            ),
        )
        secrets = {s: self.referenced(namespace, s, since) for s in self.index_secrets(portal)}
        mail_ref = self.settings.mail_portal_credentials_secret
        mail = self.secret(*mail_ref.split("/")) if mail_ref else None
        children = self.store.owned(namespace, name, portal.uid)
        key = (namespace, name)
        stamp = names.iso(now)
        sub, sub_reserved = self.holder(
            self.index.subdomains.get(portal.subdomain), key, ("subdomain", portal.subdomain), stamp
        )
        host = portal.custom_domain.hostname if portal.custom_domain else ""
        owner, host_reserved = self.holder(
            self.index.hosts.get(host) if host else None, key, ("host", host), stamp
        )
        observed = Observed(
            obj=obj,
            portal=portal,
            instance=instance,
            namespace_labels=labels,
            secrets=secrets,
            credentials=credentials,
            mail_credentials=mail,
            children=children,
            foreign=frozenset(self._foreign(key, portal.uid)),
            job_failures=self._job_failures(namespace, children),
            subdomain_owner=sub.ref if sub else "",
            host_owner=owner.ref if owner else "",
            subdomain_reserved=sub_reserved,
            host_reserved=host_reserved,
            endpoints=self.store.endpoints(namespace, name),
            # 48 bytes from the OS's CSPRNG; decide keeps it only for new or rotated keys.
            session_key=token_urlsafe(48),
            maintenance_source=self._maintenance_page(portal),
            configuring=self.configuring,
        )
        if (
            portal.custom_domain
            and portal.state != "Deprovisioned"  # a released host is not looked up
            and observed.host_owner in ("", f"{namespace}/{name}")
        ):
            observed = self._domain(observed, secrets, now)
        if observed.certificate is None or observed.certificate.verdict is None:
            self.evict_certificate(key)  # nothing to judge now: its key is not kept
        return observed

    def _maintenance_page(self, portal: Portal) -> dict[str, Any] | None:
        """The owner's ConfigMap with the custom maintenance page: read by name, only while
        maintenance is on and names one (it is not Portico's, so no watch brings it)."""
        m = portal.maintenance
        if m is None or m.page is None or portal.state != "Running":
            return None
        return self.kube.get("ConfigMap", portal.namespace, m.page.name)

    def holder(
        self,
        claimants: Iterable[Claimant] | None,
        me: tuple[str, str],
        name: tuple[str, str] = ("", ""),
        now: str = "",
    ) -> tuple[Claimant | None, Reservation | None]:
        """The oldest claimant entitled to the name (judged from the store: no reads), and
        the reservation that keeps ME from it (a deleted holder's, in another namespace).

        A portal without an instance, in a namespace its instance does not allow, or
        with an image it does not allow, neither holds nor contends for a name.
        """
        entitled = [c for c in claimants or () if (c.namespace, c.name) == me or self.entitled(c)]
        reservation = self.reservations.get(name)
        allowed = claims.contenders(entitled, reservation, now)
        # A portal there that holds it is named as the owner instead.
        held_there = any(reservation and c.namespace == reservation.namespace for c in allowed)
        blocked = None
        if reservation and me[0] != reservation.namespace and not held_there:
            blocked = reservation if reservation.binds(entitled, now) else None
        first = allowed[0] if allowed else None
        return (self._live(first, me) if first else None), blocked

    def holds(self, key: tuple[str, str], name: tuple[str, str]) -> bool:
        """Whether the portal KEY holds NAME now, from the store alone (at its deletion)."""
        index = self.index.subdomains if name[0] == "subdomain" else self.index.hosts
        claimants = index.get(name[1]) or ()
        entitled = [c for c in claimants if self.entitled(c)]  # KEY too: still in the store
        stamp = names.iso(datetime.datetime.now(datetime.UTC))
        allowed = claims.contenders(entitled, self.reservations.get(name), stamp)
        return bool(allowed) and (allowed[0].namespace, allowed[0].name) == key

    def entitled(self, claimant: Claimant) -> bool:
        obj = self.store.portals.get((claimant.namespace, claimant.name))
        if obj is None:
            return False
        portal = parse(obj)
        found = self.store.instance(portal.instance)
        instance = parse_instance(found) if found else None
        labels = self.store.namespace_labels.get(claimant.namespace) or {}
        return entitlement.may_claim(portal, instance, labels, self.settings)

    def _live(self, claimant: Claimant | None, me: tuple[str, str]) -> Claimant | None:
        """A claim held by another portal counts only while that portal exists (one read)."""
        if claimant is None or (claimant.namespace, claimant.name) == me:
            return claimant
        if self.kube.get("Portal", claimant.namespace, claimant.name) is None:
            with self.lock:
                self.gone.add((claimant.namespace, claimant.name))
            return None
        return claimant

    def index_secrets(self, portal: Portal) -> list[str]:
        return self.index.secrets_of((portal.namespace, portal.name))

    def referenced(self, namespace: str, name: str, since: Hashable) -> SecretView | None:
        """A Secret a portal references in its own namespace.

        The watch brings only labelled Secrets (names.SECRET_LABEL). One it has not
        brought is missing or unlabelled: its metadata alone is read (never its data), and
        that answer is kept until SINCE, (referrer, version) with the portal's generation
        and re-check annotations as its version, changes: an unchanged portal costs no
        read. A label added later brings the Secret through the watch, which queues the
        portal.
        """
        if self.store.secret(namespace, name) is not None:
            return self.secret(namespace, name)
        cached = self._looked(namespace, name, since)
        if cached is not None:
            return cached[0]
        meta = self.kube.get_metadata("Secret", namespace, name)
        view = None
        if meta is not None:
            if names.SECRET_LABEL in (meta.get("labels") or {}):
                return self.secret(namespace, name, since)  # labelled: the watch is on its way
            version = str(meta.get("resourceVersion", ""))
            view = SecretView(name, version, frozenset(), labelled=False)
        self._remember(namespace, name, since, view)
        return view

    def _looked(
        self, namespace: str, name: str, since: Hashable
    ) -> tuple[SecretView | None] | None:
        """What a read by name found for this referrer at this version, if it was made."""
        referrer, version = since if isinstance(since, tuple) and since else (None, since)
        with self.lock:
            found = self.unwatched.get((namespace, name, referrer))
        return (found[1],) if found is not None and found[0] == version else None

    def _remember(
        self, namespace: str, name: str, since: Hashable, view: SecretView | None
    ) -> None:
        referrer, version = since if isinstance(since, tuple) and since else (None, since)
        with self.lock:
            if len(self.unwatched) >= UNWATCHED_MAX:  # referrers long gone: look again
                self.unwatched.clear()
            self.unwatched[(namespace, name, referrer)] = (version, view)

    def watched_secret(self, namespace: str, name: str) -> None:
        """The watch brought this Secret: an earlier look by name no longer holds."""
        with self.lock:
            for key in [k for k in self.unwatched if k[:2] == (namespace, name)]:
                del self.unwatched[key]

    def secret(self, namespace: str, name: str, since: Hashable = None) -> SecretView | None:
        """From the store when the watch brought it (its values read once if not kept).

        One the watch does not bring (a credentials namespace it does not watch, or no
        names.SECRET_LABEL) is read by name and that answer kept until SINCE changes (the
        referrer's generation and re-check annotation): no read at rest, and a change of
        the referrer looks again.
        """
        kept = self.store.secret(namespace, name)
        if kept is not None:
            if kept.data or not kept.keys:
                return kept
            obj = self.kube.get("Secret", namespace, name)
            if obj is None:
                return None
            self.store.put_secret(obj)
            return self.store.secret(namespace, name)
        cached = self._looked(namespace, name, since)
        if cached is not None:
            return cached[0]
        obj = self.kube.get("Secret", namespace, name)
        view = None
        if obj is not None:
            meta = obj["metadata"]
            labelled = names.SECRET_LABEL in (meta.get("labels") or {})
            if labelled and self.watches(namespace):
                self.store.put_secret(obj)  # the watch has it from here on
                return self.store.secret(namespace, name)
            data = obj.get("data") or {}
            version = str(meta.get("resourceVersion", ""))
            view = SecretView(name, version, frozenset(data), dict(data), labelled=labelled)
        self._remember(namespace, name, since, view)
        return view

    def watches(self, namespace: str) -> bool:
        """Whether the Secret watch covers NAMESPACE (every one in cluster-wide mode)."""
        watched = self.settings.watch_namespaces
        return not watched or namespace in watched

    def credentials(self, instance: PortalInstance) -> SecretView | None:
        """The instance's credentials Secret; read by name again only when the instance
        changes if the watch cannot bring it (docs/install.md, "Security model")."""
        obj = self.store.instance(instance.name) or {}
        meta = obj.get("metadata") or {}
        notes = meta.get("annotations") or {}
        since = (
            f"PortalInstance/{instance.name}",
            (meta.get("uid"), meta.get("generation"), notes.get(names.RECHECK)),
        )
        return self.secret(*instance.credentials, since=since)

    def _foreign(self, key: tuple[str, str], uid: str) -> set[Key]:
        """Children act found to be someone else's: still there, and still not ours?"""
        with self.lock:
            suspects = list(self.foreign.get(key, ()))
        found = set()
        for kind, name in suspects:
            obj = self.kube.get(kind, key[0], name)
            if obj is not None and controller_uid(obj) != uid:
                found.add((kind, name))
        with self.lock:
            if found:
                self.foreign[key] = found
            else:
                self.foreign.pop(key, None)
        return found

    def _job_failures(self, namespace: str, children: Mapping[Key, Any]) -> dict[str, str]:
        """What a failed Job's last pod said: read once per Job."""
        out = {}
        for (kind, job), child in children.items():
            if kind != "Job" or job_state(dict(child))[0] != "Failed":
                continue
            uid = child["metadata"].get("uid", job)
            message = self._job_messages.get(uid)
            if message is None:
                message = _pod_message(self.kube, namespace, job)
                with self.lock:
                    self._job_messages[uid] = message
            out[job] = message
        return out

    def _domain(
        self, o: Observed, secrets: dict[str, SecretView | None], now: datetime.datetime
    ) -> Observed:
        portal = o.portal
        assert portal.custom_domain is not None
        key = (portal.namespace, portal.name)
        host = domain.normalize_name(portal.custom_domain.hostname)
        want = custom_domain.target(portal, self.settings)
        record = o.status.get("customDomain")
        known = custom_domain.remembered(record, host, domain.normalize_name(want))
        value = custom_domain.expected_token(portal)
        proved = custom_domain.remembered_ownership(record, host, value)
        required = self.settings.domain_ownership == "Required"
        recheck = portal.annotations.get(names.RECHECK, "")
        asked = bool(recheck) and recheck != o.status.get("lastHandledReconcileAt")
        dns = owner = seen = None
        with self.lock:
            due = self.dns.is_due(key, host, time.monotonic())
        if known is None or proved is None or asked or due:
            # One lookup for both records, paced alike: the TXT costs no extra round.
            seen = asyncio.run(
                domain.observe(host, want, resolver_settings(self.settings), challenge=True)
            )
            dns = domain.judge(seen, want)
            owner = domain.ownership.judge(seen, value) if value else None
            merged = domain.merge_checks(known, dns)
            settled = merged.verified and not merged.warning
            if required and owner is not None:
                proof = domain.merge_checks(proved, owner)
                settled = settled and proof.verified and not proof.warning
            with self.lock:
                self.dns.checked(key, host, settled, self.settings)
        issued = (
            secrets.get(names.tls_secret_name(portal.name)) if portal.custom_domain.issuer else None
        )
        convert = functools.partial(self._convert, key)
        cert = custom_domain.certificate(portal, secrets, issued, convert)
        return Observed(
            **{**o.__dict__, "dns": dns, "ownership": owner, "dns_seen": seen, "certificate": cert}
        )

    def _convert(
        self, key: tuple[str, str], form: str, blob: bytes, secret: bytes | None, host: str
    ) -> certificates.CertificateVerdict:
        """Convert or validate once per content and host, out of process (see certcache)."""
        assert self.workers is not None and self.cert_cache is not None
        content = CertificateCache.content(form, blob, secret, host)
        cached = self.cert_cache.get(key, content)
        if cached is not None:
            return cached
        now = datetime.datetime.now(datetime.UTC)
        verdict = self.workers.check(form, blob, secret, host, now)
        self.cert_cache.put(key, content, verdict)
        return verdict

    def evict_certificate(self, key: tuple[str, str]) -> None:
        if self.cert_cache is not None:
            self.cert_cache.evict(key)

    def forget(self, key: tuple[str, str]) -> None:
        with self.lock:
            self.dns.forget(key)
            self.foreign.pop(key, None)
        self.evict_certificate(key)

    def close(self) -> None:
        if self.workers is not None:
            self.workers.close()


def resolver_settings(settings: Settings) -> domain.ResolverSettings:
    return domain.ResolverSettings(
        nameservers=settings.dns_nameservers,
        port=settings.dns_port,
        timeout=settings.dns_timeout,
        authoritative=settings.dns_authoritative,
    )


def _pod_message(kube: Kube, namespace: str, job: str) -> str:
    """What the Job's newest failed pod said when it ended (its termination message)."""
    return termination_message(kube.list("Pod", namespace, f"batch.kubernetes.io/job-name={job}"))
