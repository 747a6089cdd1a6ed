"""PortalSet: PortalInstances and Portals declared as code, from YAML or Pulumi config."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import yaml

API_VERSION = "portico.dev/v1alpha1"
KINDS = ("PortalInstance", "Portal")


def portal_url(subdomain: str, base_domain: pulumi.Input[str]) -> pulumi.Output[str]:
    """The address the operator gives a portal (status.url): https://<subdomain>.<baseDomain>."""
    return pulumi.Output.concat("https://", subdomain, ".", base_domain)


def _check(obj: Mapping[str, Any], where: str) -> None:
    kind = obj.get("kind")
    if obj.get("apiVersion") != API_VERSION or kind not in KINDS:
        raise ValueError(
            f"{where}: expected apiVersion {API_VERSION} and kind Portal or PortalInstance, "
            f"got {obj.get('apiVersion')}/{kind}"
        )
    if not (obj.get("metadata") or {}).get("name"):
        raise ValueError(f"{where}: {kind} has no metadata.name")
    if not isinstance(obj.get("spec"), Mapping):
        raise ValueError(f"{where}: {kind} {obj['metadata']['name']} has no spec")
    if kind == "Portal" and not obj["spec"].get("subdomain"):
        raise ValueError(f"{where}: Portal {obj['metadata']['name']} has no spec.subdomain")


@dataclass(frozen=True)
class PortalSetArgs:
    """Objects as Kubernetes would read them (apiVersion, kind, metadata, spec)."""

    base_domain: pulumi.Input[str]
    instances: Sequence[Mapping[str, Any]] = ()
    portals: Sequence[Mapping[str, Any]] = ()
    # Everything is created only after these: the CRDs, whether read from the
    # cluster or PorticoPlatform.crd_resources.
    depends_on: pulumi.Input[Sequence[pulumi.Resource]] = ()
    # Namespace of Portals that name none.
    default_namespace: str = "default"

    def __post_init__(self) -> None:
        for i, obj in enumerate([*self.instances, *self.portals]):
            _check(obj, f"object {i + 1}")

    @classmethod
    def from_objects(
        cls, objects: Sequence[Mapping[str, Any]], where: str = "objects", **kwargs: Any
    ) -> PortalSetArgs:
        for i, obj in enumerate(objects):
            _check(obj, f"{where}: document {i + 1}")
        return cls(
            instances=[o for o in objects if o["kind"] == "PortalInstance"],
            portals=[o for o in objects if o["kind"] == "Portal"],
            **kwargs,
        )

    @classmethod
    def from_file(cls, path: str | Path, **kwargs: Any) -> PortalSetArgs:
        """A multi-document YAML file such as those in examples/ (empty documents skipped)."""
        docs = [d for d in yaml.safe_load_all(Path(path).read_text()) if d]
        return cls.from_objects(docs, where=str(path), **kwargs)


class PortalSet(pulumi.ComponentResource):
    """Declares each PortalInstance and Portal; exports each portal's URL."""

    instances: dict[str, k8s.apiextensions.CustomResource]
    portals: dict[str, k8s.apiextensions.CustomResource]
    urls: pulumi.Output[dict[str, str]]

    def __init__(
        self, name: str, args: PortalSetArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("portico:index:PortalSet", name, None, opts)
        deps = pulumi.Output.from_input(args.depends_on)

        self.instances = {}
        for obj in args.instances:
            key = obj["metadata"]["name"]
            self.instances[key] = self._declare(f"{name}-instance-{key}", obj, None, deps, None)

        self.portals = {}
        urls: dict[str, pulumi.Output[str]] = {}
        for obj in args.portals:
            namespace = obj["metadata"].get("namespace") or args.default_namespace
            key = f"{namespace}/{obj['metadata']['name']}"
            # Its instance first, so the portal never starts with InstanceNotFound.
            instance = self.instances.get((obj["spec"].get("instanceRef") or {}).get("name", ""))
            self.portals[key] = self._declare(
                f"{name}-portal-{namespace}-{obj['metadata']['name']}",
                obj,
                namespace,
                deps,
                instance,
            )
            urls[key] = portal_url(obj["spec"]["subdomain"], args.base_domain)

        self.urls = pulumi.Output.all(**urls) if urls else pulumi.Output.from_input({})
        self.register_outputs({"urls": self.urls})

    def _declare(
        self,
        resource_name: str,
        obj: Mapping[str, Any],
        namespace: str | None,
        deps: pulumi.Output[Sequence[pulumi.Resource]],
        also: pulumi.Resource | None,
    ) -> k8s.apiextensions.CustomResource:
        metadata = dict(obj["metadata"])
        if namespace is not None:
            metadata["namespace"] = namespace
        return k8s.apiextensions.CustomResource(
            resource_name,
            api_version=API_VERSION,
            kind=obj["kind"],
            metadata=metadata,
            spec=obj["spec"],
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=deps.apply(lambda d: [*d, *([also] if also else [])])
            ),
        )
