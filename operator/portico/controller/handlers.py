"""Kopf handlers: thin. They keep the store and the index current and queue the portals concerned.

Kopf is used for watching only (`on.event`), so it keeps no state on the
objects: no progress annotations, no finalizers, no writes of its own. Child
watches select Portico's objects on the server.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
from typing import Any

import kopf

from portico.controller import watchguard
from portico.controller.act import WRITES_PER_WORKER
from portico.controller.kube import PAGE, Kube, connect
from portico.controller.leader import Election, LeaderElector
from portico.controller.metrics_auth import MetricsAuth
from portico.controller.metrics_auth import serve as serve_metrics
from portico.controller.operator import Operator
from portico.core import names
from portico.settings import Settings

log = logging.getLogger("portico")
CHILD_RESOURCES = {
    "ConfigMap": ("", "v1", "configmaps"),
    "Secret": ("", "v1", "secrets"),
    "Service": ("", "v1", "services"),
    "Deployment": ("apps", "v1", "deployments"),
    "Job": ("batch", "v1", "jobs"),
    "Ingress": ("networking.k8s.io", "v1", "ingresses"),
    "NetworkPolicy": ("networking.k8s.io", "v1", "networkpolicies"),
    "Certificate": ("cert-manager.io", "v1", "certificates"),
    "Middleware": ("traefik.io", "v1alpha1", "middlewares"),
}
# The Services' EndpointSlices carry their labels: selected on the server like the children.
ENDPOINT_SLICES = ("discovery.k8s.io", "v1", "endpointslices")
OPERATOR: Operator | None = None
# An operator refused the base domain (core/base_domain.py) looks again this often.
REFUSED_RETRY_SECONDS = 15


def _op() -> Operator:
    assert OPERATOR is not None, "the operator has not started"
    return OPERATOR


def configure(settings: Settings, kubeconfig: str | None = None) -> None:
    """Called by `portico run` before Kopf starts."""
    global OPERATOR
    # A connection per reconcile worker and per child write in flight (act.Writer's pool),
    # and a few for the elector and the Events.
    workers = settings.reconcile_workers
    kube = Kube(connect(kubeconfig, connections=(1 + WRITES_PER_WORKER) * workers + 4))
    watchguard.install()
    elector = None
    if settings.leader_election:
        elector = LeaderElector(kube, Election.from_settings(settings))
    OPERATOR = Operator.build(settings, kube, elector)
    kinds = [k for k in watched(settings) if k != "Secret"]
    for kind in kinds:
        group, version, plural = CHILD_RESOURCES[kind]
        kopf.on.event(group, version, plural)(_child_handler(kind))


def watched(settings: Settings) -> list[str]:
    """The child kinds watched. Certificates, NetworkPolicies and Traefik's Middlewares only
    when enabled: without cert-manager, with the portal network policy off, or with another
    ingress controller than Traefik, the chart grants no RBAC for them."""
    optional = {
        "Certificate": settings.cert_manager,
        "NetworkPolicy": settings.portal_network_policy,
        "Middleware": settings.ingress_controller == "traefik",
    }
    return [kind for kind in CHILD_RESOURCES if optional.get(kind, True)]


def _child_handler(kind: str) -> Any:
    async def child_event(type: str, body: kopf.Body, **_: Any) -> None:
        _op().child_event(kind, type or "", dict(body))

    child_event.__name__ = f"{kind.lower()}_event"
    return child_event


# A transient API error while priming is retried in seconds, not Kopf's default minute:
# the liveness probe is down until startup succeeds.
@kopf.on.startup(backoff=2)
async def startup(settings: kopf.OperatorSettings, **_: Any) -> None:
    op = _op()
    kinds = watched(op.settings)
    # Kopf writes nothing: a standby must not write, and Events come from act.Writer.
    # (Its finalizer, progress and diff-base storage serve change handlers Portico has not:
    # with `on.event` only, Kopf never adds a finalizer or an annotation, so none is set.)
    settings.posting.enabled = False
    settings.watching.server_timeout = 300
    # Kopf's initial lists in pages too: one page parsed at a time, not a whole fleet's kind.
    settings.watching.chunk_size = PAGE
    # Kopf keeps a task per object (holding its last event) until it has been idle this
    # long; at Kopf's 5 s every listed object of a restart is held at once.
    settings.queueing.idle_timeout = 0.5
    settings.networking.error_backoffs = [1, 2, 5, 10, 30]
    for group, _version, plural in [*CHILD_RESOURCES.values(), ENDPOINT_SLICES]:
        # Secrets: Portico's own and those users labelled for it (a portal's .pfx, its
        # analytics key...), never the rest of the namespace's (docs/install.md).
        selector = names.SECRET_SELECTOR if plural == "secrets" else names.MANAGED_SELECTOR
        settings.watching.label_selectors[_resource(group, plural)] = selector
    # Two releases must not share a base domain: refuse (and retry, so this one starts
    # once the other is gone) before anything is read or written. /healthz stays down.
    refusal = await asyncio.to_thread(op.base_domain_refusal)
    if refusal:
        log.error("portico refuses to start: %s", refusal)
        raise kopf.TemporaryError(refusal, delay=REFUSED_RETRY_SECONDS)
    # Nothing is judged on a half-filled store: a portal reconciled before its instance
    # or its children are known would look unentitled, or in need of every write.
    await op.prime(kinds)
    # /metrics on its own port; behind the API server's authentication when asked.
    auth = MetricsAuth(op.kube) if op.settings.metrics_auth else None
    serve_metrics(op.settings.metrics_port, op.settings.listen_address, auth)
    op.start()
    log.info(
        "portico started: base domain %s, %d portals known",
        op.settings.base_domain,
        len(op.index.entries),
    )


def _resource(group: str, plural: str) -> Any:
    return lambda resource: resource.group == group and resource.plural == plural


@kopf.on.cleanup()
async def cleanup(**_: Any) -> None:
    await _op().stop()


@kopf.on.probe(id="workqueue", errors=kopf.ErrorsMode.PERMANENT)
async def workqueue_alive(**_: Any) -> str:
    """/healthz fails when the work queue has stopped: nothing would be reconciled."""
    return _op().health()


@kopf.on.login()
def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
    # The in-cluster service account when there is one, else $KUBECONFIG.
    info = kopf.login_with_service_account(**kwargs)
    if info is None:
        return kopf.login_with_kubeconfig(**kwargs)
    # Kopf names the API server https://kubernetes.default.svc, which needs cluster DNS;
    # reach it as client-go (and kube.connect) do, by the Service's address in the pod's
    # environment (the real node of the dev cluster has no cluster DNS).
    host, port = (
        os.environ.get("KUBERNETES_SERVICE_HOST"),
        os.environ.get("KUBERNETES_SERVICE_PORT"),
    )
    if not host or not port:
        return info
    if ":" in host:  # an IPv6 address
        host = f"[{host}]"
    return dataclasses.replace(info, server=f"https://{host}:{port}")


@kopf.on.event("portico.dev", "v1alpha1", "portals")
async def portal_event(type: str, body: kopf.Body, **_: Any) -> None:
    _op().portal_event(type or "", dict(body))


@kopf.on.event("portico.dev", "v1alpha1", "portalinstances")
async def instance_event(type: str, body: kopf.Body, **_: Any) -> None:
    _op().instance_event(type or "", dict(body))


@kopf.on.event("portico.dev", "v1alpha1", "portalinvitations")
async def invitation_event(type: str, body: kopf.Body, **_: Any) -> None:
    _op().invitation_event(type or "", dict(body))


@kopf.on.event("", "v1", "secrets")
async def secret_event(type: str, body: kopf.Body, **_: Any) -> None:
    """Only labelled Secrets stream in; values are kept only for those a portal or an
    instance reads (see `store`)."""
    _op().secret_event(type or "", dict(body))


@kopf.on.event(*ENDPOINT_SLICES)
async def endpoints_event(type: str, body: kopf.Body, **_: Any) -> None:
    """Who the portals' Services route to: Ready waits for the new pods alone."""
    _op().endpoints_event(type or "", dict(body))


@kopf.on.event("", "v1", "namespaces")
async def namespace_event(type: str, body: kopf.Body, **_: Any) -> None:
    _op().namespace_event(type or "", dict(body))
