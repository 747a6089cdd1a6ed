"""PorticoPlatform: the CRDs from crds/ and the operator from charts/portico."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pulumi
import pulumi_kubernetes as k8s

from portico_stack.paths import CHART_DIR, CRDS_DIR, crd_documents, crd_files, crd_names

# The operator's own namespace runs restricted pods only.
POD_SECURITY_LABELS = {
    "pod-security.kubernetes.io/enforce": "restricted",
    "pod-security.kubernetes.io/enforce-version": "latest",
}


def _merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


@dataclass(frozen=True)
class PorticoPlatformArgs:
    """Typed chart settings; `extra_values` reaches any other key of values.yaml."""

    base_domain: str
    namespace: str = "portico-system"
    create_namespace: bool = True
    release_name: str = "portico"
    default_tls_secret: str = ""
    trial_days: int = 30
    watch_namespaces: Sequence[str] = ()
    replicas: int = 1
    log_format: Literal["json", "text"] = "json"
    image_repository: str | None = None
    image_tag: str | None = None
    cert_manager: bool = False
    extra_values: Mapping[str, Any] = field(default_factory=dict)
    chart_path: Path = CHART_DIR
    crds_dir: Path = CRDS_DIR

    def __post_init__(self) -> None:
        # Fail at `pulumi preview` with the same rules as values.schema.json.
        if self.replicas < 1:
            raise ValueError(f"replicas must be at least 1, got {self.replicas}")
        if self.log_format not in ("json", "text"):
            raise ValueError(f"log_format must be json or text, got {self.log_format!r}")
        if self.trial_days < 1:
            raise ValueError(f"trial_days must be at least 1, got {self.trial_days}")

    def values(self) -> dict[str, Any]:
        """The chart values these args stand for."""
        values: dict[str, Any] = {
            "baseDomain": self.base_domain,
            "defaultTLSSecret": self.default_tls_secret,
            "trialDays": self.trial_days,
            "watchNamespaces": list(self.watch_namespaces),
            "replicas": self.replicas,
            "logFormat": self.log_format,
            "certManager": {"enabled": self.cert_manager},
        }
        image = {
            k: v for k, v in (("repository", self.image_repository), ("tag", self.image_tag)) if v
        }
        if image:
            values["image"] = image
        return _merge(values, self.extra_values)


CRD_TYPE = "kubernetes:apiextensions.k8s.io/v1:CustomResourceDefinition"


class PorticoPlatform(pulumi.ComponentResource):
    """Installs Portico: namespace, CRDs, then the Helm release (which skips its crds/).

    Pulumi applies the CRDs itself so that a changed CRD is updated on the next
    `pulumi up`, which Helm never does for a chart's crds/. The CRDs and the
    namespace are retained on delete: deleting a CRD deletes every object of its
    kind, so `pulumi destroy` of the platform must never take the users' portals
    (and their children) with it, nor the credentials their instances need.
    """

    namespace: pulumi.Output[str]
    release_name: pulumi.Output[str]
    crd_names: pulumi.Output[list[str]]
    crds: list[k8s.apiextensions.v1.CustomResourceDefinition]
    # Every CRD resource: what dependents should wait for.
    crd_resources: pulumi.Output[list[pulumi.Resource]]
    release: k8s.helm.v3.Release

    def __init__(
        self, name: str, args: PorticoPlatformArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("portico:index:PorticoPlatform", name, None, opts)

        namespace: pulumi.Input[str] = args.namespace
        ns_deps: list[pulumi.Resource] = []
        if args.create_namespace:
            ns = k8s.core.v1.Namespace(
                f"{name}-namespace",
                metadata=k8s.meta.v1.ObjectMetaArgs(
                    name=args.namespace, labels=POD_SECURITY_LABELS
                ),
                # Retained like the CRDs: it holds the instances' credentials Secrets,
                # without which every portal would lose its runtime after a reinstall.
                opts=pulumi.ResourceOptions(parent=self, retain_on_delete=True),
            )
            namespace = ns.metadata.name
            ns_deps.append(ns)

        files = crd_files(args.crds_dir)
        self.crds = []
        for path in files:
            # Earlier versions applied each file as a yaml.ConfigFile: the alias keeps
            # such a stack's CRDs in place instead of replacing (deleting) them.
            config_file = pulumi.create_urn(
                f"{name}-crds-{path.stem}", "kubernetes:yaml:ConfigFile", self
            )
            for doc in crd_documents(path):
                crd_name = doc["metadata"]["name"]
                self.crds.append(
                    k8s.apiextensions.v1.CustomResourceDefinition(
                        crd_name,
                        metadata=doc["metadata"],
                        spec=doc["spec"],
                        opts=pulumi.ResourceOptions(
                            parent=self,
                            retain_on_delete=True,
                            aliases=[pulumi.create_urn(crd_name, CRD_TYPE, config_file)],
                        ),
                    )
                )
        self.crd_resources = pulumi.Output.from_input(list(self.crds))

        self.release = k8s.helm.v3.Release(
            f"{name}-operator",
            k8s.helm.v3.ReleaseArgs(
                name=args.release_name,
                chart=str(args.chart_path),
                namespace=namespace,
                values=args.values(),
                skip_crds=True,
                atomic=True,
                cleanup_on_fail=True,
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[*ns_deps, *self.crds]),
        )

        self.namespace = pulumi.Output.from_input(namespace)
        self.release_name = self.release.name.apply(lambda n: n or args.release_name)
        self.crd_names = pulumi.Output.from_input(crd_names(args.crds_dir))
        self.register_outputs(
            {
                "namespace": self.namespace,
                "releaseName": self.release_name,
                "crdNames": self.crd_names,
            }
        )
