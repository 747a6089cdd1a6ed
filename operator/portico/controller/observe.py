"""Observe: read everything one reconcile needs (reads only)."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from portico.api import crds, validation
from portico.api.model import Portal, PortalInstance, parse_instance, parse_portal
from portico.controller.kube import RESOURCES, Kube
from portico.core.progress import job_state

CHILD_KINDS = ("ConfigMap", "Secret", "Deployment", "Service", "Ingress", "Job", "Certificate")


@dataclass
class Observed:
    obj: dict[str, Any]
    portal: Portal
    instance_obj: dict[str, Any] | None
    instance: PortalInstance | None
    namespace_labels: dict[str, str] | None
    # name → Secret object (None: missing) for every Secret the spec names
    secrets: dict[str, dict[str, Any] | None]
    credentials: dict[str, Any] | None
    # (kind, name) → object, for every child labelled with this portal
    children: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    # Failed Job name → what its last pod said when it ended (the install's own words)
    job_failures: dict[str, str] = field(default_factory=dict)

    @property
    def status(self) -> dict[str, Any]:
        status: dict[str, Any] = self.obj.get("status") or {}
        return status

    def child(self, kind: str, name: str) -> dict[str, Any] | None:
        return self.children.get((kind, name))


def referenced_secrets(portal: Portal) -> list[str]:
    names = {ref.name for ref in portal.secret_refs}
    if portal.custom_domain and portal.custom_domain.pfx:
        names.add(portal.custom_domain.pfx.name)
    if portal.custom_domain and portal.custom_domain.tls_secret:
        names.add(portal.custom_domain.tls_secret)
    if portal.custom_domain and portal.custom_domain.issuer:
        names.add(f"{portal.name}-tls")  # issued by cert-manager, not labelled as ours
    return sorted(names)


def parse(obj: dict[str, Any]) -> Portal:
    """The stored object was admitted already; only the defaults need filling in."""
    schema = crds.schema_for("Portal")
    return parse_portal(validation.apply_defaults(schema, copy.deepcopy(obj)))


def observe(kube: Kube, namespace: str, name: str, cert_manager: bool = False) -> Observed | None:
    obj = kube.get("Portal", namespace, name)
    if obj is None or obj["metadata"].get("deletionTimestamp"):
        return None
    portal = parse(obj)
    instance_obj = kube.get("PortalInstance", None, portal.instance)
    instance = parse_instance(instance_obj) if instance_obj else None
    labels = None
    if instance and instance.allowed_from == "Selector":
        ns = kube.get("Namespace", None, namespace) or {}
        labels = (ns.get("metadata") or {}).get("labels") or {}
    credentials = None
    if instance:
        credentials = kube.get("Secret", instance.credentials[0], instance.credentials[1])
    secrets = {n: kube.get("Secret", namespace, n) for n in referenced_secrets(portal)}
    observed = Observed(obj, portal, instance_obj, instance, labels, secrets, credentials)
    selector = f"portico.dev/portal={name},app.kubernetes.io/managed-by=portico"
    uid = obj["metadata"]["uid"]
    for kind in CHILD_KINDS:
        issuer = portal.custom_domain is not None and portal.custom_domain.issuer is not None
        if kind == "Certificate" and not (cert_manager and issuer):
            continue
        for child in kube.list(kind, namespace, selector):
            owners = child["metadata"].get("ownerReferences") or ()
            if any(o.get("uid") == uid for o in owners):
                # Items of a list carry no kind of their own.
                child.update(apiVersion=RESOURCES[kind].api_version, kind=kind)
                observed.children[(kind, child["metadata"]["name"])] = child
    for (kind, job), child in observed.children.items():
        if kind == "Job" and job_state(child)[0] == "Failed":
            observed.job_failures[job] = _pod_message(kube, namespace, job)
    return observed


def _pod_message(kube: Kube, namespace: str, job: str) -> str:
    """The termination message of the Job's most recent pod, if it left one."""
    pods = kube.list("Pod", namespace, f"batch.kubernetes.io/job-name={job}")
    pods.sort(key=lambda p: p["metadata"].get("creationTimestamp", ""))
    for pod in reversed(pods):
        for status in (pod.get("status") or {}).get("containerStatuses") or ():
            message = ((status.get("state") or {}).get("terminated") or {}).get("message")
            if message:
                return str(message).strip()[:300]
    return ""
