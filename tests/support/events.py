"""The operator's event handling without a cluster: an Operator whose API any request fails,
and a Portal as a watch event carries it."""

from __future__ import annotations

from typing import Any

from portico.controller.operator import Operator
from portico.settings import Settings


class NoApi:
    """Event handling makes no request; any attempt fails the test."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"event handling called the API ({name})")


def portal(name: str = "web", subdomain: str = "web", generation: int = 1) -> dict[str, Any]:
    return {
        "apiVersion": "portico.dev/v1alpha1",
        "kind": "Portal",
        "metadata": {
            "name": name,
            "namespace": "team",
            "uid": f"uid-{name}",
            "generation": generation,
            "resourceVersion": str(generation * 10),
            "creationTimestamp": f"2026-11-30T10:00:0{len(name) % 10}Z",
        },
        "spec": {
            "displayName": "Web",
            "subdomain": subdomain,
            "instanceRef": {"name": "crm"},
            "language": "en-US",
            "administrator": "jay@contoso.com",
            "audience": "Customer",
            "template": "Community",
        },
    }


def operator() -> Operator:
    kube: Any = NoApi()
    return Operator.build(Settings(), kube)
