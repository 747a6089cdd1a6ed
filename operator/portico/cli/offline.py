"""What `portico plan` shows, through the operator's own decision: `core.decide.decide()`.

No cluster: the world `observe` would build is made from the files, and what
only a cluster can say is assumed the way a portal that goes well finds it —
its instance's credentials Secret and every Secret it references exist, its
custom domain's CNAME and ownership TXT record are verified and its certificate
valid, its Deployments become available, its Jobs complete. decide() is then run reconcile after
reconcile, each plan applied to that world, until the portal is Ready; the
children shown are every child those plans wrote, each as last written.

What only the cluster has is never invented into the output: Secret data that
is copied (the instance's credentials, a certificate converted from a .pfx) and
the checksum of Secret versions stay empty, and the plan notes where they come from.
"""

from __future__ import annotations

import copy
import datetime
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from portico import domain
from portico.api import model
from portico.certificates.result import CertificateSummary, ConvertedCertificate
from portico.core import custom_domain, features, names
from portico.core.decide import Plan, decide
from portico.core.observed import CertificateOutcome, Endpoint, Key, Observed, SecretView
from portico.settings import Settings

# Reconciles a portal that goes well needs to reach Ready, with room to spare; a plan
# that gets there later (or never) says why instead of printing a half-way state.
MAX_RECONCILES = 12
SECRETS_CHECKSUM = "portico.dev/secrets-checksum"
# Output order: by the component each child serves, as the operator applies them (the
# page shown while a portal is not Ready is the shared page server's: no child of its own).
ORDER = (
    ("credentials", ""),
    ("sessions", ""),
    ("config", ""),
    ("runtime", ""),
    ("certificate", ""),
    ("provisioning", ""),
    ("translations", ""),
)


class NotReady(Exception):
    """decide() did not bring the portal to Ready: the message is its Ready condition's."""


@dataclass
class World:
    """The observed world of one portal, as the simulated cluster holds it."""

    obj: dict[str, Any]
    portal: model.Portal
    instance: model.PortalInstance
    namespace_labels: dict[str, str] | None
    settings: Settings
    now: datetime.datetime
    children: dict[Key, dict[str, Any]] = field(default_factory=dict)

    def observed(self) -> Observed:
        portal, me = self.portal, f"{self.portal.namespace}/{self.portal.name}"
        _, secret = self.instance.credentials
        return Observed(
            obj=self.obj,
            portal=portal,
            instance=self.instance,
            namespace_labels=self.namespace_labels,
            secrets=_referenced(portal),
            credentials=SecretView(secret, "", frozenset({"token"}), {}),
            children=self.children,
            subdomain_owner=me,
            host_owner=me if portal.custom_domain else "",
            dns=_verified(portal, self.settings),
            ownership=_owned(portal),
            certificate=_valid(portal, self.now) if portal.custom_domain else None,
            endpoints=_endpoints(self.children, portal.name),
        )

    def apply(self, plan: Plan) -> None:
        """What the API server and the controllers make of the plan's writes."""
        for write in plan.writes:
            self.children[write.key] = _settled(write.manifest)
        for key in plan.deletes:
            self.children.pop(key, None)
        self.obj = {**self.obj, "status": plan.status}


def assumed_instance(portal: model.Portal) -> model.PortalInstance:
    """The instance a portal names when the files hold none: the cross-checks are skipped, so
    it is taken to allow the portal (its languages, administrator and solutions)."""
    addon = features.addon(portal.template)
    return model.PortalInstance(
        name=portal.instance,
        url="",
        credentials=("", f"{portal.instance}-credentials"),
        languages=tuple(portal.languages),
        solutions=(addon.prerequisite,) if addon else (),
        administrators=(portal.administrator,),
        allowed_from="All",
    )


def lifecycle(
    raw: dict[str, Any],
    portal: model.Portal,
    instance: model.PortalInstance,
    namespace_labels: dict[str, str] | None,
    settings: Settings,
    now: datetime.datetime,
) -> list[dict[str, Any]]:
    """Every child decide() writes from the portal's creation to Ready (or to Stopped or
    Deprovisioned, as spec.state asks), each as last written."""
    target = portal.state if portal.state in ("Stopped", "Deprovisioned") else "Ready"
    world = World(copy.deepcopy(raw), portal, instance, namespace_labels, settings, now)
    world.obj.pop("status", None)
    written: dict[Key, dict[str, Any]] = {}
    for _ in range(MAX_RECONCILES):
        plan = decide(world.observed(), settings, now)
        for write in plan.writes:
            written[write.key] = write.manifest
        world.apply(plan)
        if plan.phase == target and not plan.writes:
            break
    else:
        raise NotReady(f"does not become {target} ({_why(plan.status)})")
    copied = _copied_from_the_cluster(portal)
    shown = [_offline(m) for key, m in written.items() if key not in copied]
    order = {key: index for index, key in enumerate(written)}
    return sorted(shown, key=lambda m: (_rank(m), order[(m["kind"], m["metadata"]["name"])]))


def _why(status: dict[str, Any]) -> str:
    for condition in status.get("conditions") or ():
        if condition.get("type") == "Ready":
            return f"{condition.get('reason', '')}: {condition.get('message', '')}"
    return "no Ready condition"


def _rank(manifest: dict[str, Any]) -> int:
    component = manifest["metadata"].get("labels", {}).get(names.COMPONENT_LABEL, "")
    for rank, (part, kind) in enumerate(ORDER):
        if part == component and kind in ("", manifest["kind"]):
            return rank
    return len(ORDER)


def _copied_from_the_cluster(portal: model.Portal) -> set[Key]:
    """Children whose whole content is copied at run time: a .pfx's converted certificate."""
    cd = portal.custom_domain
    return {("Secret", names.tls_secret_name(portal.name))} if cd and cd.pfx else set()


def _offline(manifest: dict[str, Any]) -> dict[str, Any]:
    """The manifest as it is applied, less what only the cluster knows."""
    out = copy.deepcopy(manifest)
    annotations = out["metadata"].get("annotations") or {}
    annotations.pop(names.APPLIED_HASH, None)
    if not annotations:
        out["metadata"].pop("annotations", None)
    pod = ((out.get("spec") or {}).get("template") or {}).get("metadata") or {}
    if SECRETS_CHECKSUM in (pod.get("annotations") or {}):
        pod["annotations"][SECRETS_CHECKSUM] = ""
    return out


def _referenced(portal: model.Portal) -> dict[str, SecretView | None]:
    """Every Secret the spec references, with the keys it names (values are never read)."""
    keys: dict[str, set[str]] = {}
    refs: Iterable[tuple[str, str]] = ((r.name, r.key) for r in portal.secret_refs)
    cd = portal.custom_domain
    if cd and cd.pfx:
        refs = [*refs, (cd.pfx.name, cd.pfx.key), (cd.pfx.name, cd.pfx.password_key)]
    if cd and cd.tls_secret:
        refs = [*refs, (cd.tls_secret, "tls.crt"), (cd.tls_secret, "tls.key")]
    for name, key in refs:
        keys.setdefault(name, set()).add(key)
    return {name: SecretView(name, "", frozenset(k), {}) for name, k in keys.items()}


def _verified(portal: model.Portal, settings: Settings) -> domain.DomainCheck | None:
    cd = portal.custom_domain
    if cd is None:
        return None
    host = domain.normalize_name(cd.hostname)
    want = domain.normalize_name(custom_domain.target(portal, settings))
    return domain.DomainCheck(
        host,
        want,
        domain.DomainState.VERIFIED,
        domain.DomainReason.CNAME_VERIFIED,
        f"{host} is a CNAME of {want} (assumed offline)",
    )


def _owned(portal: model.Portal) -> domain.DomainCheck | None:
    """The `_portico-challenge` TXT record, assumed in place: offline a portal has no UID,
    so its token (and the record) exist only once it is created."""
    cd = portal.custom_domain
    if cd is None:
        return None
    host = domain.normalize_name(cd.hostname)
    return domain.DomainCheck(
        host,
        "",
        domain.DomainState.VERIFIED,
        domain.DomainReason.OWNERSHIP_VERIFIED,
        f"{domain.ownership.challenge_name(host)} holds the portal's token (assumed offline)",
    )


def _valid(portal: model.Portal, now: datetime.datetime) -> CertificateOutcome:
    """A valid certificate for the custom host, assumed: nothing of it reaches the output."""
    assert portal.custom_domain is not None
    host = portal.custom_domain.hostname
    summary = CertificateSummary(
        subject=f"CN={host}",
        issuer="(read from the certificate at run time)",
        dns_names=(host,),
        not_before=now,
        not_after=now + datetime.timedelta(days=90),
        signature_algorithm="",
        sha256_fingerprint="",
        public_key="",
    )
    verdict = ConvertedCertificate(b"", b"", summary=summary, days_left=90, expiring_soon=False)
    return CertificateOutcome(verdict=verdict)


def _settled(manifest: dict[str, Any]) -> dict[str, Any]:
    """The object as stored once its controller is done: Deployments available, Jobs
    complete, cert-manager's Certificate Ready."""
    out = copy.deepcopy(manifest)
    kind = out["kind"]
    if kind == "Deployment":
        replicas = int(out["spec"].get("replicas", 1))
        out["metadata"]["generation"] = 1
        out["status"] = {
            "observedGeneration": 1,
            "replicas": replicas,
            "updatedReplicas": replicas,
            "availableReplicas": replicas,
        }
    elif kind == "Job":
        out["status"] = {"conditions": [{"type": "Complete", "status": "True"}]}
    elif kind == "Certificate":
        out["status"] = {"conditions": [{"type": "Ready", "status": "True"}]}
    return out


def _endpoints(children: dict[Key, dict[str, Any]], portal: str) -> tuple[Endpoint, ...] | None:
    """The ready pods the Service selects (always the runtime's), as its EndpointSlices
    would list them."""
    if ("Service", names.runtime_name(portal)) not in children:
        return None
    name = names.runtime_name(portal)
    deployment = children.get(("Deployment", name)) or {}
    up = int((deployment.get("status") or {}).get("availableReplicas", 0))
    return tuple(Endpoint(f"{name}-offline-{i}", True, False) for i in range(up))
