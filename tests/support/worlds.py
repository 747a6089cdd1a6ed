"""Observed worlds built by hand, as `observe` would build them, for decide()'s unit tests."""

from __future__ import annotations

import base64
import copy
import datetime
import secrets
from collections.abc import Callable
from typing import Any

from portico.api import model, validation
from portico.core import names, token
from portico.core.children import with_hash
from portico.core.decide import Plan, decide
from portico.core.observed import Endpoint, Observed, SecretView
from portico.settings import Settings

NOW = datetime.datetime(2026, 11, 30, 12, 0, tzinfo=datetime.UTC)


SETTINGS = Settings(
    base_domain="portals.example.com",
    cert_manager=True,
    allowed_issuers=("ClusterIssuer/le",),
    instance_credentials_namespaces=("portico-system",),
)


UID = "uid-1"


P = "web"


INSTANCE = {
    "apiVersion": "portico.dev/v1alpha1",
    "kind": "PortalInstance",
    "metadata": {"name": "crm"},
    "spec": {
        "url": "https://crm.example.net",
        "credentialsSecretRef": {"namespace": "portico-system", "name": "crm-creds"},
        "languages": ["en-US", "de-DE"],
        "solutions": [],
        "administrators": ["jay@contoso.com"],
        "allowedNamespaces": {"from": "All"},
    },
}


CREDENTIALS = SecretView(
    "crm-creds", "7", frozenset({"token"}), {"token": base64.b64encode(b"s3cr3t").decode()}
)


def portal_obj(**spec: Any) -> dict[str, Any]:
    body = {
        "displayName": "Web",
        "type": "Production",
        "subdomain": "web",
        "instanceRef": {"name": "crm"},
        "language": "en-US",
        "administrator": "jay@contoso.com",
        "audience": "Customer",
        "template": "Community",
    }
    body.update(spec)
    return {
        "apiVersion": "portico.dev/v1alpha1",
        "kind": "Portal",
        "metadata": {
            "name": P,
            "namespace": "team",
            "uid": UID,
            "generation": 1,
            "creationTimestamp": "2026-11-30T11:00:00Z",
        },
        "spec": body,
    }


def world(
    status: dict[str, Any] | None = None,
    instance: dict[str, Any] | None = INSTANCE,
    **overrides: Any,
) -> Observed:
    obj = overrides.pop("obj", None) or portal_obj()
    if status is not None:
        obj["status"] = status
    defaulted, problems = validation.admit("Portal", copy.deepcopy(obj))
    assert problems == []
    inst = None
    if instance is not None:
        inst = model.parse_instance(validation.admit("PortalInstance", copy.deepcopy(instance))[0])
    fields: dict[str, Any] = {
        "obj": obj,
        "portal": model.parse_portal(defaulted),
        "instance": inst,
        "credentials": CREDENTIALS,
        "subdomain_owner": f"team/{P}",
        # observe draws a new one for every reconcile; decide uses it only for new keys.
        "session_key": secrets.token_urlsafe(48),
    }
    fields.update(overrides)
    return Observed(**fields)


def owned(plan: Plan) -> dict[tuple[str, str], dict[str, Any]]:
    """The children as they would be after the plan's writes (server defaults aside)."""
    return {w.key: w.manifest for w in plan.writes}


def available(children: dict[tuple[str, str], dict[str, Any]], replicas: int = 1) -> None:
    dep = children[("Deployment", P)]
    dep["metadata"]["generation"] = 2
    dep["status"] = {
        "observedGeneration": 2,
        "replicas": replicas,
        "updatedReplicas": replicas,
        "availableReplicas": replicas,
    }


def succeeded(children: dict[tuple[str, str], dict[str, Any]], job: str) -> None:
    children[("Job", job)]["status"] = {"conditions": [{"type": "Complete", "status": "True"}]}


def endpoints(children: dict[tuple[str, str], Any]) -> tuple[Endpoint, ...] | None:
    """What the EndpointSlice controller would list for the Service as the world stands."""
    service = children.get(("Service", P))
    if service is None:
        return None
    dep = children.get(("Deployment", P)) or {}
    up = int((dep.get("status") or {}).get("availableReplicas", 0))
    return tuple(Endpoint(f"{P}-5d8fb-x{i}", True, False) for i in range(up))


def applied(o: Observed, plan: Plan, controllers: bool = True) -> Observed:
    """The world after act wrote PLAN (writes, deletes, status) and, with CONTROLLERS, after
    Kubernetes' own controllers: the Deployment rolled to its replicas, every Job complete,
    the Service's endpoints listed."""
    children = {**{k: copy.deepcopy(dict(v)) for k, v in o.children.items()}, **owned(plan)}
    for key in plan.deletes:
        children.pop(key, None)
    obj = copy.deepcopy(dict(o.obj))
    obj["status"] = plan.status
    if not controllers:
        return Observed(**{**o.__dict__, "obj": obj, "children": children})
    deployment = children.get(("Deployment", P))
    if deployment is not None:
        available(children, int(deployment["spec"].get("replicas", 1)))
    for kind, name in children:
        if kind == "Job":
            succeeded(children, name)
    return Observed(
        **{**o.__dict__, "obj": obj, "children": children, "endpoints": endpoints(children)}
    )


def converge(
    o: Observed,
    settings: Settings = SETTINGS,
    rounds: int = 5,
    apply: Callable[[Observed, Plan], Observed] = applied,
) -> tuple[Observed, Plan]:
    """decide, and the world as APPLY leaves it, ROUNDS times; the world and the last plan."""
    plan = decide(o, settings, NOW)
    for _ in range(rounds):
        o = apply(o, plan)
        plan = decide(o, settings, NOW)
    return o, plan


def edited(o: Observed, annotations: dict[str, str] | None = None, **spec: Any) -> Observed:
    """O with ANNOTATIONS added and SPEC fields set (a new generation for a spec edit), the
    portal admitted again as the API server would."""
    obj = copy.deepcopy(dict(o.obj))
    if annotations is not None:
        obj["metadata"].setdefault("annotations", {}).update(annotations)
    if spec:
        obj["spec"].update(spec)
        obj["metadata"]["generation"] = int(obj["metadata"].get("generation", 1)) + 1
    defaulted, problems = validation.admit("Portal", copy.deepcopy(obj))
    assert problems == [], problems
    return Observed(**{**o.__dict__, "obj": obj, "portal": model.parse_portal(defaulted)})


def minted(plan: Plan, token_id: str, expires: datetime.datetime) -> dict[Any, Any]:
    """The children after act minted: the Secret as act writes it (see Writer.with_token)."""
    children = owned(plan)
    key = ("Secret", names.instance_secret_name(P))
    secret = copy.deepcopy(children[key])
    annotations = secret["metadata"]["annotations"]
    annotations.pop(names.APPLIED_HASH)
    annotations.update({token.TOKEN_ID: token_id, token.TOKEN_EXPIRES: names.iso(expires)})
    secret["data"] = {**secret["data"], "token": base64.b64encode(b"portal-only").decode()}
    children[key] = with_hash(secret)
    return children
