"""The portals a bench run creates, and the children Portico's own code renders for them.

One definition serves all three contenders: the operator gets the Portals,
the floor and the Helm baseline get `render.children` of the same Portals.
"""

from __future__ import annotations

import base64
import copy
import secrets
from collections.abc import Mapping
from typing import Any

from tests.support.runtime import TOKEN

from portico.api import model, validation
from portico.core import render, session_keys
from portico.core.children import with_hash
from portico.core.names import SECRET_LABEL
from portico.settings import Settings

INSTANCE = "bench-crm"
OPERATOR_NAMESPACE = "portico-bench"
CREDENTIALS = {"token": base64.b64encode(TOKEN.encode()).decode()}
# Children written without the operator are relabelled, so its label-selected
# watches never see them (the bench measures the operator, not its side effects).
FLOOR_MANAGER = "portico-bench"
_PORTAL_LABEL, _FLOOR_PORTAL_LABEL = "portico.dev/portal", "bench.portico.dev/portal"
_MANAGED_BY = "app.kubernetes.io/managed-by"


# Where the bench's stand-in instance answers (bench/__main__ starts it): the operator
# mints each portal's token there.
INSTANCE_URL = "https://crm.bench.example.net"


def instance_objects() -> list[dict[str, Any]]:
    """The PortalInstance every bench portal links to, and its credentials Secret."""
    return [
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": OPERATOR_NAMESPACE},
        },
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": f"{INSTANCE}-credentials",
                "namespace": OPERATOR_NAMESPACE,
                "labels": {SECRET_LABEL: "portico"},
            },
            "data": dict(CREDENTIALS),
        },
        {
            "apiVersion": "portico.dev/v1alpha1",
            "kind": "PortalInstance",
            "metadata": {"name": INSTANCE},
            "spec": {
                "url": INSTANCE_URL,
                "insecure": INSTANCE_URL.startswith("http://"),
                "credentialsSecretRef": {
                    "namespace": OPERATOR_NAMESPACE,
                    "name": f"{INSTANCE}-credentials",
                },
                "languages": ["en-US"],
                "solutions": ["FieldService"],
                "administrators": ["jay@contoso.com"],
                "allowedNamespaces": {"from": "All"},
            },
        },
    ]


def namespace(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


def portal(namespace: str, name: str, display: str = "") -> dict[str, Any]:
    """A simple portal: the issue's "N simple portals"."""
    return {
        "apiVersion": "portico.dev/v1alpha1",
        "kind": "Portal",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "displayName": display or f"Bench portal {name}",
            "subdomain": f"{namespace}-{name}"[:63].rstrip("-"),
            "instanceRef": {"name": INSTANCE},
            "language": "en-US",
            "administrator": "jay@contoso.com",
            "audience": "Customer",
            "template": "CustomerSelfService",
        },
    }


def children(
    portal_obj: dict[str, Any], settings: Settings, instance_obj: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """What Portico applies for a new portal: `render.children`, hashed like its writer
    (linked to INSTANCE_OBJ, a PortalInstance; the bench's own by default)."""
    if instance_obj is None:
        instance_obj = next(o for o in instance_objects() if o["kind"] == "PortalInstance")
    instance = model.parse_instance(validation.admit("PortalInstance", instance_obj)[0])
    portal = model.parse_portal(validation.admit("Portal", copy.deepcopy(portal_obj))[0])
    # The instance Secret with its session key too, as the operator makes it (one drawn key).
    keys = session_keys.plan(None, "", secrets.token_urlsafe(48))
    facts = render.Facts(instance_credentials=CREDENTIALS, session_keys=keys)
    return [with_hash(m) for m in render.children(portal, instance, settings, facts)]


def expected(
    portal_obj: dict[str, Any], settings: Settings, instance_obj: dict[str, Any] | None = None
) -> set[tuple[str, str]]:
    """(kind, name) of every child a new portal gets before it is Ready: its Ingress comes
    only once its runtime serves (the shared page server answers its URL until then), so
    "applied" never waits for Ready (which pods-off runs never reach)."""
    made = children(portal_obj, settings, instance_obj)
    return {(c["kind"], c["metadata"]["name"]) for c in made if c["kind"] != "Ingress"}


def standalone(manifest: dict[str, Any], namespace: str) -> dict[str, Any]:
    """A child for the floor and Helm runs: no owner (no Portal exists), relabelled."""
    out: dict[str, Any] = _relabel(manifest)
    out["metadata"].pop("ownerReferences", None)
    out["metadata"]["namespace"] = namespace
    return out


def _relabel(value: Any) -> Any:
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if key == _PORTAL_LABEL:
                key = _FLOOR_PORTAL_LABEL
            if key == _MANAGED_BY and item == "portico":
                item = FLOOR_MANAGER
            out[key] = _relabel(item)
        return out
    if isinstance(value, list):
        return [_relabel(v) for v in value]
    return value


def operator_env(resync_seconds: float) -> Mapping[str, str]:
    """The operator's settings in a bench run; `settings()` reads the same values."""
    return {
        "PORTICO_BASE_DOMAIN": "portals.bench.test",
        "PORTICO_RESYNC_SECONDS": f"{resync_seconds:g}",
        "PORTICO_LISTEN_ADDRESS": "127.0.0.1",
        "PORTICO_INSTANCE_CREDENTIALS_NAMESPACES": OPERATOR_NAMESPACE,
    }


def settings(resync_seconds: float) -> Settings:
    return Settings.from_env(operator_env(resync_seconds))
