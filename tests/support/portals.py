"""Portal, Secret and example manifests the tiers create, and the custom-domain certificates."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import yaml

from portico.core.names import SECRET_LABEL
from tests.support.controlplane import Cluster

ROOT = Path(__file__).resolve().parents[2]


EXAMPLES = sorted(p for p in (ROOT / "examples").glob("*.yaml") if "instance" not in p.name)


def portal(name: str, namespace: str, instance: str, **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "displayName": f"Portal {name}",
        "subdomain": f"{name}-{namespace}"[:63].rstrip("-"),
        "instanceRef": {"name": instance},
        "language": "en-US",
        "administrator": "jay@contoso.com",
        "audience": "Customer",
        "template": "CustomerSelfService",
    }
    body.update(spec)
    return {
        "apiVersion": "portico.dev/v1alpha1",
        "kind": "Portal",
        "metadata": {"name": name, "namespace": namespace},
        "spec": body,
    }


def secret(name: str, namespace: str, **data: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace, "labels": {SECRET_LABEL: "portico"}},
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
    }


def install_project_service(cluster: Cluster, instance: str) -> None:
    patch = '{"spec": {"solutions": ["FieldService", "ProjectService"]}}'
    cluster.plane.kubectl("patch", "portalinstance", instance, "--type=merge", "-p", patch)


def examples(namespace: str, instance: str) -> list[dict[str, Any]]:
    """Every example Portal, moved into NAMESPACE and linked to INSTANCE.

    Custom domains and their certificates have their own tests, so they are left out.
    """
    docs = []
    for path in EXAMPLES:
        doc = yaml.safe_load(path.read_text())
        doc["metadata"]["namespace"] = namespace
        doc["spec"]["instanceRef"]["name"] = instance
        doc["spec"]["subdomain"] = f"{doc['metadata']['name']}-{namespace}"[:63].rstrip("-")
        doc["spec"].pop("customDomain", None)
        docs.append(doc)
    return docs
