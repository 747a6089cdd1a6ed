"""The running operator: watch events in, reconciles out.

Each event updates the store and the index, then queues the portals it
concerns. An event that changes nothing a decision reads (the operator's own
status patch, for one) queues nothing.

Threads (docs/architecture.md, "State and threads"): the event handlers run on the
event loop and hold the store's lock for the whole of an event, so a reconcile thread
sees an event's changes to the store and the index all or not at all. The queue is the
loop's alone: the priming thread hands its keys over with `call_soon_threadsafe`.
"""

from __future__ import annotations

import asyncio
import datetime
import functools
import logging
import math
from collections.abc import Callable, Hashable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Concatenate, ParamSpec, TypeVar

from portico.api.model import parse_instance
from portico.controller import metrics, token_exchange
from portico.controller.act import WRITES_PER_WORKER, Writer
from portico.controller.index import Index
from portico.controller.invitations import Invitations, parse_invitation_obj
from portico.controller.kube import ApiError, Kube
from portico.controller.leader import FencedKube, LeaderElector, while_leading
from portico.controller.notify import Outbox
from portico.controller.observe import Observer, parse
from portico.controller.queue import Again, WorkQueue
from portico.controller.reconcile import Reconciler, count_phases
from portico.controller.store import Store
from portico.core import base_domain, entitlement, names, rename, reservations, site, token
from portico.core.claims import Reservation
from portico.core.decide import channels
from portico.settings import Settings

log = logging.getLogger("portico")
T = TypeVar("T")
RESERVATIONS_KEY = ("Reservations",)
P = ParamSpec("P")


def _locked(
    handler: Callable[Concatenate[Operator, P], T],
) -> Callable[Concatenate[Operator, P], T]:
    """Run an event handler under the store's lock, whole."""

    def run(self: Operator, /, *args: P.args, **kwargs: P.kwargs) -> T:
        with self.store.lock:
            return handler(self, *args, **kwargs)

    return run


class ReconcileFailed(Exception):
    """The failure is in the portal's status already; the queue backs off."""


def _spec_view(body: dict[str, Any]) -> tuple[Any, ...]:
    """What of a Portal a decision reads, besides status: a status-only change queues nothing."""
    meta = body["metadata"]
    return (
        meta.get("generation"),
        meta.get("uid"),
        tuple(sorted((meta.get("annotations") or {}).items())),
        meta.get("deletionTimestamp"),
    )


@dataclass
class Operator:
    settings: Settings
    kube: Kube
    writer: Writer
    store: Store
    index: Index
    observer: Observer
    reconciler: Reconciler
    invitations: Invitations
    # Notifications to hand over (None: no channel configured, Events only).
    outbox: Outbox | None = None
    queue: WorkQueue = field(default_factory=WorkQueue)
    # (namespace, portal) → the invitations to it: a portal appearing wakes them.
    invited: dict[tuple[str, str], set[str]] = field(default_factory=dict)
    phases: dict[tuple[str, str], str] = field(default_factory=dict)
    priming: bool = False
    # The loop that owns the queue; set while priming from a thread.
    loop: asyncio.AbstractEventLoop | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    # With leader election: the queue runs (and writes go out) only while leading.
    elector: LeaderElector | None = None
    executor: ThreadPoolExecutor | None = None

    @classmethod
    def build(
        cls, settings: Settings, kube: Kube, elector: LeaderElector | None = None
    ) -> Operator:
        """Reads go straight to the API; every write through the fence when electing."""
        store = Store()
        index = Index(lock=store.lock)
        store.wants_data = index.wants_data
        if ref := settings.mail_portal_credentials_secret:
            namespace, name = ref.split("/")
            index.mail_secret = (namespace, name)
        observer = Observer(kube, store, index, settings, lock=store.lock)
        writes = WRITES_PER_WORKER * settings.reconcile_workers
        writer = Writer(FencedKube(kube, elector) if elector else kube, writes)
        reconciler = Reconciler(settings, store, observer, writer)
        invitations = Invitations(settings, store, observer, writer)
        outbox = Outbox(settings, store, writer) if channels(settings) else None
        return cls(
            settings,
            kube,
            writer,
            store,
            index,
            observer,
            reconciler,
            invitations,
            outbox,
            elector=elector,
        )

    async def prime(self, child_kinds: list[str]) -> None:
        """The initial list of everything decisions read, before the first reconcile.

        The lists run in a thread (they block); what they find is queued on this loop.
        """
        self.loop = asyncio.get_running_loop()
        self.priming = True
        try:
            await asyncio.to_thread(self._prime, child_kinds)
        finally:
            self.priming = False
            self.loop = None

    def _prime(self, child_kinds: list[str]) -> None:
        namespaces = self.settings.watch_namespaces or (None,)
        self.load_reservations()
        for body in self.kube.each("PortalInstance"):
            self.instance_event("", body)
        for body in self.kube.each("Namespace"):
            self.namespace_event("", body)
        for namespace in namespaces:
            for body in self.kube.each("Portal", namespace):
                self.portal_event("", body)
            for body in self.kube.each("PortalInvitation", namespace):
                self.invitation_event("", body)
        if "Certificate" in child_kinds and not self.kube.served("Certificate"):
            # Kopf starts the watch when the CRD appears, but may miss it while the API
            # server's discovery lags behind: then Certificates would look never issued.
            log.warning(
                "cert-manager support is on but the API server does not serve "
                "certificates.cert-manager.io: install cert-manager first, then restart Portico"
            )
        if "Middleware" in child_kinds and not self.kube.served("Middleware"):
            log.warning(
                "the ingress controller setting is traefik but the API server does not serve "
                "middlewares.traefik.io: IP allow-lists cannot be applied; install Traefik's "
                "CRDs (and turn on its kubernetescrd provider), then restart Portico"
            )
        for namespace in namespaces:
            for kind in child_kinds:
                selector = names.SECRET_SELECTOR if kind == "Secret" else names.MANAGED_SELECTOR
                for body in self.kube.each(kind, namespace, selector):
                    body.setdefault("kind", kind)
                    if kind == "Secret":
                        self.secret_event("", body)
                    else:
                        self.child_event(kind, "", body)
            for body in self.kube.each("EndpointSlice", namespace, names.MANAGED_SELECTOR):
                self.endpoints_event("", body)
        log.info(
            "caches synced: %d portals, %d instances",
            len(self.index.entries),
            len(self.store.instances),
        )

    def start(self) -> None:
        # Reconciles block on the API server: threads of their own, so they never starve
        # the elector's renewals or Kopf's own work in the loop's default executor.
        self.executor = ThreadPoolExecutor(self.settings.reconcile_workers, "reconcile")
        if self.elector is None:
            self.tasks.append(asyncio.create_task(self._run_queue()))
            if self.outbox is not None:
                self.tasks.append(asyncio.create_task(self.outbox.run()))
            return
        # A standby keeps watching (store and queue stay warm) and works through it all
        # once it leads; only the leader delivers notifications.
        elector = self.elector
        self.tasks.append(asyncio.create_task(elector.run()))
        self.tasks.append(asyncio.create_task(while_leading(elector, self._run_queue)))
        if self.outbox is not None:
            self.tasks.append(asyncio.create_task(while_leading(elector, self.outbox.run)))

    async def _run_queue(self) -> None:
        await self.queue.run(self.work, concurrency=self.settings.reconcile_workers)

    async def _in_thread(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        if self.elector is not None:
            await self.elector.release()
        if self.executor is not None:
            self.executor.shutdown(wait=False, cancel_futures=True)
        if self.writer.pool is not None:
            self.writer.pool.shutdown(wait=False, cancel_futures=True)
        self.observer.close()

    def health(self) -> str:
        for task in self.tasks:
            if task.done():
                raise RuntimeError("the work queue has stopped; nothing is reconciled")
        return f"{len(self.queue)} queued"

    # ---- events ------------------------------------------------------------
    # TYPE_ is "" for an object in a list (priming, or Kopf's list when a watch starts or
    # starts over). A listed object the store already holds at that version is nothing new:
    # after a restart every object is listed twice (priming, then Kopf), and the second
    # time must not queue the whole fleet again.

    def _enqueue(self, key: tuple[str, ...]) -> None:
        # What priming finds is the routine pass after a start; anything later is news.
        if self.loop is not None:  # the priming thread: the queue is the loop's alone
            self.loop.call_soon_threadsafe(functools.partial(self.queue.add, key, routine=True))
            return
        self.queue.add(key, routine=self.priming)

    def _known(self, kind: str, type_: str, body: dict[str, Any]) -> bool:
        return type_ == "" and self.store.known(kind, body)

    @_locked
    def portal_event(self, type_: str, body: dict[str, Any]) -> None:
        meta = body["metadata"]
        key = (meta["namespace"], meta["name"])
        if type_ == "DELETED":
            self.portal_gone(key)
            return
        if self._known("Portal", type_, body):
            self._reclaimed(key)
            return
        before = self.store.portals.get(key)
        if not self.store.put_portal(body, "listed" if type_ == "" else "event"):
            self._reclaimed(key)  # our own status patch's echo: the store has its answer
            return
        if before is not None and _spec_view(before) == _spec_view(body):
            self._reclaimed(key)  # only status moved: nothing to decide again
            return
        if before is None or before["metadata"].get("generation") != meta.get("generation"):
            self.observer.dns.forget(key)  # a spec change looks DNS up again at once
        portal = parse(body)
        old = self.index.put(portal, *self._claims(body))
        self._enqueue(("Portal", *key))
        if old is None:
            self._wake_invitations(key)
        if old is None or old.instance != portal.instance:
            self._enqueue(("PortalInstance", portal.instance))
        if old is not None:
            self._wake(old, key)

    def _claims(self, body: dict[str, Any]) -> tuple[str, str, tuple[str, ...]]:
        """When a Portal's claims count from (its subdomain's may differ after a rename)
        and the previous subdomains it still holds, as its status says."""
        since = site.claim_since(body)
        base = self.settings.base_domain
        subdomain = str((body.get("spec") or {}).get("subdomain") or "")
        held = rename.held(subdomain, body.get("status") or {}, base)
        return since, rename.subdomain_since(body, since, base), held

    def _reclaimed(self, key: tuple[str, str]) -> None:
        """A reactivated portal's claim counts from when it took its names back, a renamed
        one's from its rename, and its previous subdomains are held until released (its
        status says so): the index follows the newest Portal the store keeps, and the
        portals waiting for a name it released are woken."""
        kept = self.store.portals.get(key)
        entry = self.index.entries.get(key)
        if kept is None or entry is None:
            return
        since, subdomain_since, held = self._claims(kept)
        was = tuple(c.subdomain for c in entry.held)
        if (entry.claimant.created, entry.subdomain_claims()[0].created, was) == (
            since,
            subdomain_since,
            held,
        ):
            return
        self.index.put(parse(kept), since, subdomain_since, held)
        for name in set(was) - set(held):  # released: who waited for it may take it now
            for waiting in self.index.subdomain_claimants(name) - {key}:
                self._enqueue(("Portal", *waiting))

    @_locked
    def portal_gone(self, key: tuple[str, str]) -> None:
        """The Portal is gone: release its claims, forget it everywhere, wake who waited."""
        self._reserve(key)
        self._revoke_token_of(key)
        self.store.forget_portal(*key)
        entry = self.index.remove(key)
        self.queue.forget(("Portal", *key))
        if self.outbox is not None:
            self.outbox.forget(key)
        self.observer.forget(key)
        if self.phases.pop(key, None) is not None:
            self._count_phases()
        metrics.forget_portal(*key)
        if entry is not None:
            self._wake(entry, key)
            self._enqueue(("PortalInstance", entry.instance))
        self._wake_invitations(key)

    def _reserve(self, key: tuple[str, str]) -> None:
        """The names a deleted holder held stay its namespace's for the grace period."""
        entry = self.index.entries.get(key)
        grace = self.settings.claim_grace_seconds
        if entry is None or grace <= 0:
            return
        until = names.iso(datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=grace))
        kept = False
        for name in (("subdomain", entry.claimant.subdomain), ("host", entry.claimant.hostname)):
            if name[1] and self.observer.holds(key, name):
                self.observer.reservations[name] = Reservation(key[0], until)
                kept = True
        if kept:
            self._enqueue(RESERVATIONS_KEY)

    def _revoke_token_of(self, key: tuple[str, str]) -> None:
        """A deleted portal's token is revoked at its instance (queued; best-effort: a
        token missed here, say while the operator was down, ends at its expiry)."""
        obj = self.store.portals.get(key)
        if obj is None:
            return
        children = self.store.owned(*key, obj["metadata"].get("uid", ""))
        held = token.held(children.get(("Secret", names.instance_secret_name(key[1]))))
        if held is not None:
            self._enqueue(("RevokeToken", held.instance, held.id))

    def _revoke(self, minted_by: str, token_id: str) -> None:
        found = self.store.instance(minted_by.split(" ", 1)[0])
        instance = parse_instance(found) if found else None
        if instance is None or token.minted_by(instance) != minted_by:
            return  # that instance is gone or moved: the token ends at its expiry
        if entitlement.credentials_problem(instance, self.settings):
            return
        credentials = self.observer.credentials(instance)
        if credentials is None:
            return
        try:
            token_exchange.revoke(instance, credentials, token_id)
        except token_exchange.TokenExchangeFailed as err:
            log.warning(
                "could not revoke a deleted portal's token (it ends at its expiry): %s", err
            )

    def _wake(self, entry: Any, key: tuple[str, str]) -> None:
        for waiting in self.index.contenders(entry) - {key}:
            self._enqueue(("Portal", *waiting))

    @_locked
    def instance_event(self, type_: str, body: dict[str, Any]) -> None:
        name = body["metadata"]["name"]
        if type_ == "DELETED":
            self.store.instances.pop(("", name))
            self.index.put_instance(name, None)
            self.queue.forget(("PortalInstance", name))
        else:
            before = self.store.instance(name)
            if not self.store.put_instance(body, "listed" if type_ == "" else "event"):
                return  # older than our own status patch's answer
            creds = (body.get("spec") or {}).get("credentialsSecretRef") or {}
            ref = (creds.get("namespace", ""), creds.get("name", ""))
            allowed = self.settings.instance_credentials_namespaces
            # A Secret in a namespace instances may not name is never kept (nor read).
            self.index.put_instance(name, ref if not allowed or ref[0] in allowed else None)
            if before is not None and before.get("spec") == body.get("spec"):
                return  # its status only (our own patch)
            self._enqueue(("PortalInstance", name))
        for namespace, portal in self.index.linked_to(name):
            self._enqueue(("Portal", namespace, portal))

    @_locked
    def secret_event(self, type_: str, body: dict[str, Any]) -> None:
        meta = body["metadata"]
        namespace, name = meta["namespace"], meta["name"]
        labels = meta.get("labels") or {}
        if self._known("Secret", type_, body):
            return
        self.observer.watched_secret(namespace, name)
        deleted = type_ == "DELETED"
        if deleted:
            self.store.secrets.pop((namespace, name), None)
            self.store.drop_child("Secret", namespace, name)
        elif labels.get("app.kubernetes.io/managed-by") == "portico":
            self.store.put_child("Secret", body, "listed" if type_ == "" else "event")
        else:
            self.store.put_secret(body)
        users, instances = self.index.users_of(namespace, name)
        portals = set(users)
        if portal := labels.get(names.PORTAL_LABEL):
            portals.add((namespace, portal))
        if invitation := labels.get(names.INVITATION_LABEL):
            self._enqueue(("PortalInvitation", namespace, invitation))
        for instance in instances:
            self._enqueue(("PortalInstance", instance))
            portals.update(self.index.linked_to(instance))
        if (namespace, name) == self.index.mail_secret:  # every portal holds a copy
            portals.update(self.index.portals())
        for key in portals:
            if deleted:  # a certificate converted from it is not kept a moment longer
                self.observer.evict_certificate(key)
            self._enqueue(("Portal", *key))

    @_locked
    def namespace_event(self, type_: str, body: dict[str, Any]) -> None:
        name = body["metadata"]["name"]
        labels = dict(body["metadata"].get("labels") or {})
        if type_ == "DELETED":
            self.store.namespace_labels.pop(name, None)
            self.store.terminating.discard(name)
            return
        if body["metadata"].get("deletionTimestamp"):
            self.store.terminating.add(name)
        if self.store.namespace_labels.get(name) == labels:
            return
        self.store.namespace_labels[name] = labels
        for key in self.store.portals_in(name):
            self._enqueue(("Portal", *key))

    @_locked
    def child_event(self, kind: str, type_: str, body: dict[str, Any]) -> None:
        meta = body["metadata"]
        if self._known(kind, type_, body):
            return
        if type_ == "DELETED":
            self.store.drop_child(kind, meta["namespace"], meta["name"])
        else:
            self.store.put_child(kind, body, "listed" if type_ == "" else "event")
        if portal := (meta.get("labels") or {}).get(names.PORTAL_LABEL):
            self._enqueue(("Portal", meta["namespace"], portal))

    @_locked
    def invitation_event(self, type_: str, body: dict[str, Any]) -> None:
        meta = body["metadata"]
        key = (meta["namespace"], meta["name"])
        if type_ == "DELETED":
            self.store.invitations.pop(key)
            self.queue.forget(("PortalInvitation", *key))
            for invited in self.invited.values():
                invited.discard(key[1])
            return
        if self._known("PortalInvitation", type_, body):
            return
        before = self.store.invitations.get(key)
        if not self.store.put_invitation(body, "listed" if type_ == "" else "event"):
            return
        if before is not None and _spec_view(before) == _spec_view(body):
            return  # only status moved (our own patch)
        portal = parse_invitation_obj(body).portal
        self.invited.setdefault((key[0], portal), set()).add(key[1])
        self._enqueue(("PortalInvitation", *key))

    def _wake_invitations(self, portal: tuple[str, str]) -> None:
        for name in self.invited.get(portal, ()):
            self._enqueue(("PortalInvitation", portal[0], name))

    @_locked
    def endpoints_event(self, type_: str, body: dict[str, Any]) -> None:
        """An EndpointSlice of a portal's Service: whether its new pods are routed yet."""
        meta = body["metadata"]
        portal = (meta.get("labels") or {}).get(names.PORTAL_LABEL)
        if not portal:
            return
        before = self.store.endpoints(meta["namespace"], portal)
        self.store.put_slice(body, deleted=type_ == "DELETED")
        if self.store.endpoints(meta["namespace"], portal) != before:
            self._enqueue(("Portal", meta["namespace"], portal))

    # ---- work ----------------------------------------------------------------

    async def work(self, key: Hashable) -> Again | None:
        assert isinstance(key, tuple)
        if key == RESERVATIONS_KEY:
            await self._in_thread(self._save_reservations)
            return None
        if key[0] == "RevokeToken":
            await self._in_thread(self._revoke, key[1], key[2])
            return None
        if key[0] == "PortalInvitation":
            after = await self._in_thread(self.invitations.reconcile, key[1], key[2])
            return None if after is None else Again(after)
        if key[0] == "PortalInstance":
            linked = len(self.index.linked_to(key[1]))
            await self._in_thread(self.reconciler.instance, key[1], linked)
            return None
        _, namespace, name = key
        with metrics.RECONCILE_SECONDS.time():
            outcome = await self._in_thread(self.reconciler.portal, namespace, name)
        for gone in self.observer.take_gone():
            self.portal_gone(gone)
        if outcome.gone:
            self.portal_gone((namespace, name))
            return None
        # Gaining or losing an entitlement changes who holds its names: ask again.
        moved = self.phases.get((namespace, name)) != outcome.phase
        if moved and (entry := self.index.entries.get((namespace, name))):
            self._wake(entry, (namespace, name))
        self.phases[(namespace, name)] = outcome.phase
        if moved:  # counting is O(portals): only when a phase changed
            self._count_phases()
        if self.outbox is not None:  # what its record queued (after a restart too)
            self.outbox.offer((namespace, name))
        if outcome.certificate_expiry is not None:
            metrics.CERTIFICATE_EXPIRY.labels(namespace=namespace, portal=name).set(
                outcome.certificate_expiry
            )
        if outcome.error:
            raise ReconcileFailed(outcome.error)
        with self.store.lock:
            dns = self.observer.dns.next_in((namespace, name)) if outcome.dns_pending else None
        asked = min(outcome.requeue_after or math.inf, math.inf if dns is None else dns)
        if asked < self.settings.resync_seconds:
            return Again(asked)
        return Again(self.settings.resync_seconds, routine=True)

    def _save_reservations(self) -> None:
        """Write the live reservations to their ConfigMap (only after a deletion changed
        them: nothing is read or written at rest); ended ones are dropped."""
        now = names.iso(datetime.datetime.now(datetime.UTC))
        live = reservations.live(self.observer.reservations, self._claimants, now)
        self.observer.reservations = live
        self.writer.apply(reservations.manifest(self.settings.own_namespace, live))

    def _claimants(self, name: tuple[str, str]) -> Any:
        index = self.index.subdomains if name[0] == "subdomain" else self.index.hosts
        return index.get(name[1]) or ()

    def base_domain_refusal(self) -> str | None:
        """At start: why this release must not run, judged from one read of its host
        policy (the base domain's claim); None when the claim is its own or unchecked."""
        policy = self.settings.host_policy
        if not policy:
            return None
        try:
            found = self.kube.get("ValidatingAdmissionPolicy", None, policy)
        except ApiError as err:
            return (
                f"cannot read the host policy {policy} ({err}): grant get on "
                f"validatingadmissionpolicies/{policy} (the chart's ClusterRole has it)"
            )
        s = self.settings
        return base_domain.refusal(found, policy, s.release, s.base_domain)

    def load_reservations(self) -> None:
        """At start: the reservations kept by the last run (one read)."""
        found = self.kube.get("ConfigMap", self.settings.own_namespace, reservations.NAME)
        self.observer.reservations = reservations.parse(found)

    def _count_phases(self) -> None:
        counts = count_phases(self.phases.values())
        for phase, count in counts.items():
            metrics.PORTALS.labels(phase=phase).set(count)
        self.observer.configuring = counts["Configuring"]
