"""Kopf handlers: thin. They note what changed and queue the portals it concerns.

Kopf is used for watching only (`on.event`), so it keeps no state on the
objects: no progress annotations, no finalizers, no writes of its own.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any

import kopf
from prometheus_client import start_http_server

from portico import claims, metrics, watchguard
from portico.apply import Writer
from portico.domain import recheck_delay
from portico.kube import ApiError, Kube, connect
from portico.leader import Election, FencedKube, LeaderElector, while_leading
from portico.observe import parse, referenced_secrets
from portico.reconcile import reconcile, reconcile_instance
from portico.settings import Settings
from portico.workqueue import WorkQueue

log = logging.getLogger("portico")
MANAGED = {"app.kubernetes.io/managed-by": "portico"}


@dataclass
class Portals:
    """What every Portal claims and links to, kept current by the watch (no Secrets, no specs)."""

    entries: dict[tuple[str, str], tuple[claims.Claimant, str, frozenset[str]]] = field(
        default_factory=dict
    )

    def update(self, body: Any) -> None:
        # The same parse and the same Secret list a reconcile uses: one definition of both.
        portal = parse(dict(body))
        claimant = claims.Claimant(
            created=body["metadata"].get("creationTimestamp", ""),
            namespace=portal.namespace,
            name=portal.name,
            subdomain=portal.subdomain,
            hostname=portal.custom_domain.hostname if portal.custom_domain else "",
        )
        secrets = frozenset(referenced_secrets(portal))
        self.entries[(portal.namespace, portal.name)] = (claimant, portal.instance, secrets)

    def claimants(self) -> list[claims.Claimant]:
        return [c for c, _, _ in self.entries.values()]

    def linked_to(self, instance: str) -> list[tuple[str, str]]:
        return [k for k, (_, i, _) in self.entries.items() if i == instance]

    def referencing(self, namespace: str, secret: str) -> list[tuple[str, str]]:
        return [k for k, (_, _, s) in self.entries.items() if k[0] == namespace and secret in s]


@dataclass
class Operator:
    settings: Settings
    kube: Kube
    writer: Writer
    queue: WorkQueue = field(default_factory=WorkQueue)
    portals: Portals = field(default_factory=Portals)
    instances: dict[str, tuple[str, str]] = field(default_factory=dict)  # name → credentials ref
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    phases: dict[tuple[str, str], str] = field(default_factory=dict)
    # Unsettled DNS checks in a row, per portal, for the re-check backoff.
    dns_checks: dict[tuple[str, str], int] = field(default_factory=dict)
    generations: dict[tuple[str, str], Any] = field(default_factory=dict)
    # With leader election: the work queue runs (and writes go out) only while leading.
    elector: LeaderElector | None = None

    def portal(self, namespace: str, name: str) -> None:
        self.queue.add(("Portal", namespace, name))

    async def work(self, key: Hashable) -> float | None:
        assert isinstance(key, tuple)
        if key[0] == "PortalInstance":
            linked = len(self.portals.linked_to(key[1]))
            await asyncio.to_thread(reconcile_instance, self.kube, self.writer, key[1], linked)
            return self.settings.resync_seconds
        _, namespace, name = key
        with metrics.RECONCILE_SECONDS.time():
            try:
                outcome = await asyncio.to_thread(
                    reconcile,
                    self.kube,
                    self.writer,
                    self.settings,
                    self.portals.claimants(),
                    namespace,
                    name,
                )
            except ApiError as err:
                metrics.API_ERRORS.labels(status=str(err.status)).inc()
                metrics.RECONCILE_ERRORS.inc()
                raise
        self._count_phase(namespace, name, outcome.phase)
        requeue = min(outcome.requeue_after or math.inf, self.settings.resync_seconds)
        if outcome.dns_pending:
            checks = self.dns_checks.get((namespace, name), 0) + 1
            self.dns_checks[(namespace, name)] = checks
            requeue = min(
                requeue, recheck_delay(checks - 1, base=self.settings.dns_recheck_seconds)
            )
        else:
            self.dns_checks.pop((namespace, name), None)
        return requeue

    def _count_phase(self, namespace: str, name: str, phase: str) -> None:
        if phase:
            self.phases[(namespace, name)] = phase
        else:
            self.phases.pop((namespace, name), None)
        for known in ("Configuring", "Ready", "Failed", "Expired", "Paused"):
            metrics.PORTALS.labels(phase=known).set(
                sum(1 for p in self.phases.values() if p == known)
            )


OPERATOR: Operator | None = None


def _op() -> Operator:
    assert OPERATOR is not None, "the operator has not started"
    return OPERATOR


def configure(settings: Settings, kubeconfig: str | None = None) -> None:
    """Called by `portico run` before Kopf starts."""
    global OPERATOR
    kube = Kube(connect(kubeconfig))
    watchguard.install()
    elector = None
    if settings.leader_election:
        elector = LeaderElector(kube, Election.from_settings(settings))
    writes = FencedKube(kube, elector) if elector else kube
    OPERATOR = Operator(settings, kube, Writer(writes), elector=elector)
    if settings.cert_manager:
        # Watched only when enabled: without cert-manager's RBAC the watch is forbidden.
        kopf.on.event("cert-manager.io", "v1", "certificates", labels=MANAGED)(_child_event)


@kopf.on.startup()
async def startup(settings: kopf.OperatorSettings, **_: Any) -> None:
    op = _op()
    # Kopf makes no writes: a standby must not write, and Events come from apply.Writer.
    settings.posting.enabled = False
    settings.persistence.finalizer = "portico.dev/finalizer"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="portico.dev")
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix="portico.dev", key="last-handled-configuration"
    )
    settings.watching.server_timeout = 300
    settings.networking.error_backoffs = [1, 2, 5, 10, 30]
    # The claims must be known before the first portal is judged on them.
    for namespace in op.settings.namespaces or (None,):
        for body in await asyncio.to_thread(op.kube.list, "Portal", namespace):
            op.portals.update(body)
    start_http_server(op.settings.metrics_port, addr=op.settings.listen_address)
    if op.elector is None:
        op.tasks.append(asyncio.create_task(op.queue.run(op.work)))
    else:
        # A standby keeps watching (the queue fills up) and reconciles all of it once leading.
        elector = op.elector
        op.tasks.append(asyncio.create_task(elector.run()))
        op.tasks.append(asyncio.create_task(while_leading(elector, lambda: op.queue.run(op.work))))
    log.info(
        "portico started: base domain %s, %d portals known",
        op.settings.base_domain,
        len(op.portals.entries),
    )


@kopf.on.cleanup()
async def cleanup(**_: Any) -> None:
    op = _op()
    for task in op.tasks:
        task.cancel()
    if op.elector is not None:
        await op.elector.release()


@kopf.on.login()
def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
    # The in-cluster service account when there is one, else $KUBECONFIG.
    return kopf.login_with_service_account(**kwargs) or kopf.login_with_kubeconfig(**kwargs)


@kopf.on.event("portico.dev", "v1alpha1", "portals")
async def portal_event(type: str, body: kopf.Body, **_: Any) -> None:
    op, meta = _op(), body["metadata"]
    key = (meta["namespace"], meta["name"])
    if type == "DELETED":
        gone = op.portals.entries.pop(key, None)
        if gone:
            # A released subdomain or host lets the next claimant proceed.
            for claimant in op.portals.claimants():
                if claimant.subdomain == gone[0].subdomain or (
                    gone[0].hostname and claimant.hostname == gone[0].hostname
                ):
                    op.portal(claimant.namespace, claimant.name)
            op.queue.add(("PortalInstance", gone[1]))
        return
    previous = op.portals.entries.get(key)
    if previous is None or op.generations.get(key) != meta.get("generation"):
        op.dns_checks.pop(key, None)  # a spec change re-checks DNS at once, from the start
    op.generations[key] = meta.get("generation")
    op.portals.update(body)
    op.portal(*key)
    if previous is None or previous[1] != op.portals.entries[key][1]:
        op.queue.add(("PortalInstance", op.portals.entries[key][1]))


@kopf.on.event("portico.dev", "v1alpha1", "portalinstances")
async def instance_event(type: str, body: kopf.Body, **_: Any) -> None:
    op, name = _op(), body["metadata"]["name"]
    creds = (body.get("spec") or {}).get("credentialsSecretRef") or {}
    op.instances[name] = (creds.get("namespace", ""), creds.get("name", ""))
    if type == "DELETED":
        op.instances.pop(name, None)
    else:
        op.queue.add(("PortalInstance", name))
    for namespace, portal in op.portals.linked_to(name):
        op.portal(namespace, portal)


@kopf.on.event("", "v1", "secrets")
async def secret_event(body: kopf.Body, **_: Any) -> None:
    """Only the names are looked at: a Secret's data never leaves the reconcile that reads it."""
    op, meta = _op(), body["metadata"]
    namespace, name = meta["namespace"], meta["name"]
    portals = set(op.portals.referencing(namespace, name))
    if (meta.get("labels") or {}).get("portico.dev/portal"):
        portals.add((namespace, meta["labels"]["portico.dev/portal"]))
    for instance, ref in op.instances.items():
        if ref == (namespace, name):
            op.queue.add(("PortalInstance", instance))
            portals.update(op.portals.linked_to(instance))
    for key in portals:
        op.portal(*key)


@kopf.on.event("", "v1", "namespaces")
async def namespace_event(body: kopf.Body, **_: Any) -> None:
    op, namespace = _op(), body["metadata"]["name"]
    for ns, name in list(op.portals.entries):
        if ns == namespace:
            op.portal(ns, name)


async def _child_event(body: kopf.Body, **_: Any) -> None:
    meta = body["metadata"]
    portal = (meta.get("labels") or {}).get("portico.dev/portal")
    if portal:
        _op().portal(meta["namespace"], portal)


for _group, _version, _plural in (
    ("", "v1", "configmaps"),
    ("", "v1", "services"),
    ("apps", "v1", "deployments"),
    ("batch", "v1", "jobs"),
    ("networking.k8s.io", "v1", "ingresses"),
):
    kopf.on.event(_group, _version, _plural, labels=MANAGED)(_child_event)
