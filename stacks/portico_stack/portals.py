"""PortalSet: PortalInstances, Portals and their Secrets declared as code.

Each Portal is created with the provider's `pulumi.com/waitFor: condition=Ready`,
so `pulumi up` returns once the operator reports Ready for the current generation
(the provider compares the condition's observedGeneration), and the outputs are
what the cluster says: status.url, status.phase and the Ready condition.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import yaml

API_VERSION = "portico.dev/v1alpha1"
KINDS = ("PortalInstance", "Portal")
WAIT_FOR = "pulumi.com/waitFor"
SKIP_AWAIT = "pulumi.com/skipAwait"
# Portico watches only Secrets with this label (docs/user-guide.md, "Secrets you
# reference"); the same key as the operator's names.SECRET_LABEL (tests/stacks check it).
SECRET_LABEL = "portico.dev/secret-for"


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


def _check_secret(key: str, secret: Any) -> None:
    if key.count("/") != 1 or not all(key.split("/")):
        raise ValueError(f"secrets: {key!r} must be NAMESPACE/NAME")
    if not isinstance(secret, Mapping) or not set(secret) <= {"data", "stringData"}:
        raise ValueError(f"secrets: {key} must be an object with data and/or stringData")


@dataclass(frozen=True)
class PortalSetArgs:
    """Objects as Kubernetes would read them (apiVersion, kind, metadata, spec)."""

    instances: Sequence[Mapping[str, Any]] = ()
    portals: Sequence[Mapping[str, Any]] = ()
    # Secrets the objects refer to, keyed NAMESPACE/NAME: {"data": {key: base64},
    # "stringData": {key: text}}. Their values become secret Outputs, so the state
    # keeps them encrypted and the engine never prints them.
    secrets: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    # Everything is created only after these: the CRDs, whether read from the
    # cluster or PorticoPlatform.crd_resources.
    depends_on: pulumi.Input[Sequence[pulumi.Resource]] = ()
    # Namespace of Portals that name none.
    default_namespace: str = "default"
    # How long `pulumi up` waits for each object's Ready condition.
    ready_timeout: str = "10m"

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


class PortalObject(pulumi.CustomResource):
    """A Portal or PortalInstance whose `status` output is the cluster's."""

    status: pulumi.Output[Any]

    def __init__(
        self, name: str, obj: Mapping[str, Any], opts: pulumi.ResourceOptions | None = None
    ) -> None:
        props = {
            "apiVersion": API_VERSION,
            "kind": obj["kind"],
            "metadata": obj["metadata"],
            "spec": obj["spec"],
            "status": None,  # an output only: what the provider read after waiting
        }
        # The same provider (and version) the SDK's own resources get.
        defaults = k8s._utilities.get_resource_opts_defaults()
        super().__init__(
            f"kubernetes:{API_VERSION}:{obj['kind']}",
            name,
            props,
            pulumi.ResourceOptions.merge(defaults, opts),
        )


def summary(status: Mapping[str, Any] | None) -> dict[str, Any]:
    """What a portal's output reports, from its status as the operator wrote it."""
    status = status or {}
    conditions = status.get("conditions") or ()
    ready: Mapping[str, Any] = next((c for c in conditions if c.get("type") == "Ready"), {})
    out = {
        "phase": status.get("phase", ""),
        "url": status.get("url", ""),
        "ready": ready.get("status", "Unknown"),
        "reason": ready.get("reason", ""),
    }
    if status.get("customDomainUrl"):
        out["customDomainUrl"] = status["customDomainUrl"]
    return out


def _awaited(metadata: Mapping[str, Any], spec: Mapping[str, Any]) -> dict[str, Any]:
    """METADATA plus the provider's wait for Ready (not for paused portals: they never are)."""
    annotations = dict(metadata.get("annotations") or {})
    if not (SKIP_AWAIT in annotations or WAIT_FOR in annotations or spec.get("paused")):
        annotations[WAIT_FOR] = "condition=Ready"
    return {**metadata, "annotations": annotations}


class PortalSet(pulumi.ComponentResource):
    """Declares each Secret, PortalInstance and Portal; outputs each portal's status."""

    secrets: dict[str, k8s.core.v1.Secret]
    instances: dict[str, PortalObject]
    portals: dict[str, PortalObject]
    # "namespace/name" -> {phase, url, ready, reason[, customDomainUrl]}
    status: pulumi.Output[dict[str, dict[str, Any]]]
    urls: pulumi.Output[dict[str, str]]

    def __init__(
        self, name: str, args: PortalSetArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("portico:index:PortalSet", name, None, opts)
        deps = pulumi.Output.from_input(args.depends_on)
        timeouts = pulumi.CustomTimeouts(create=args.ready_timeout, update=args.ready_timeout)
        self.secrets = self._secrets(name, args.secrets)
        first: list[pulumi.Resource] = list(self.secrets.values())

        # Names are "<set>:<namespace>/<name>": no two objects can share one (neither
        # a namespace nor a name holds "/"). Earlier versions joined them with "-",
        # which could collide; those names stay aliases where they were unique.
        def old(kind: str, key: str) -> str:
            return f"{name}-{kind}-{key.replace('/', '-')}"

        olds = [old("instance", o["metadata"]["name"]) for o in args.instances] + [
            old(
                "portal",
                f"{o['metadata'].get('namespace') or args.default_namespace}/"
                f"{o['metadata']['name']}",
            )
            for o in args.portals
        ]

        def options(key: str, kind: str, *also: pulumi.Resource) -> pulumi.ResourceOptions:
            earlier = old(kind, key)
            return pulumi.ResourceOptions(
                parent=self,
                depends_on=deps.apply(lambda d: [*d, *first, *also]),
                custom_timeouts=timeouts,
                aliases=[pulumi.Alias(name=earlier)] if olds.count(earlier) == 1 else [],
            )

        self.instances = {}
        for obj in args.instances:
            key = obj["metadata"]["name"]
            self.instances[key] = PortalObject(
                f"{name}:{key}",
                {**obj, "metadata": _awaited(obj["metadata"], obj["spec"])},
                options(key, "instance"),
            )

        self.portals = {}
        for obj in args.portals:
            namespace = obj["metadata"].get("namespace") or args.default_namespace
            key = f"{namespace}/{obj['metadata']['name']}"
            metadata = _awaited({**obj["metadata"], "namespace": namespace}, obj["spec"])
            # Its instance first, so the portal never starts with InstanceNotFound.
            instance = self.instances.get((obj["spec"].get("instanceRef") or {}).get("name", ""))
            self.portals[key] = PortalObject(
                f"{name}:{key}",
                {**obj, "metadata": metadata},
                options(key, "portal", *([instance] if instance else [])),
            )

        self.status = pulumi.Output.all(
            **{key: p.status.apply(summary) for key, p in self.portals.items()}
        )
        self.urls = self.status.apply(lambda s: {key: v["url"] for key, v in s.items()})
        self.register_outputs({"status": self.status, "urls": self.urls})

    def _secrets(
        self, name: str, secrets: Mapping[str, Mapping[str, Any]]
    ) -> dict[str, k8s.core.v1.Secret]:
        """One Secret per key; its values are secret Outputs whatever was passed."""
        out = {}
        for key, secret in secrets.items():
            _check_secret(key, secret)
            namespace, secret_name = key.split("/")
            data, text = secret.get("data"), secret.get("stringData")
            out[key] = k8s.core.v1.Secret(
                f"{name}:{key}",
                metadata=k8s.meta.v1.ObjectMetaArgs(
                    name=secret_name, namespace=namespace, labels={SECRET_LABEL: name}
                ),
                data=pulumi.Output.secret(data) if data else None,
                string_data=pulumi.Output.secret(text) if text else None,
                opts=pulumi.ResourceOptions(parent=self),
            )
        return out
