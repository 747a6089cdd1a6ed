"""Pulumi program: install Portico (CRDs, then the chart) with typed config."""

import sys
from pathlib import Path

import pulumi

# The component library lives beside this program, in stacks/portico_stack.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from portico_stack import PorticoPlatform, PorticoPlatformArgs

config = pulumi.Config()
args = PorticoPlatformArgs(
    base_domain=config.require("baseDomain"),
    namespace=config.get("namespace") or "portico-system",
    default_tls_secret=config.get("defaultTLSSecret") or "",
    trial_days=config.get_int("trialDays") or 30,
    watch_namespaces=config.get_object("watchNamespaces") or [],
    replicas=config.get_int("replicas") or 1,
    log_format=config.get("logFormat") or "json",  # type: ignore[arg-type]
    image_repository=config.get("imageRepository") or None,
    image_tag=config.get("imageTag") or None,
    cert_manager=config.get_bool("certManager") or False,
    extra_values=config.get_object("values") or {},
)
platform = PorticoPlatform("portico", args)

pulumi.export("namespace", platform.namespace)
pulumi.export("releaseName", platform.release_name)
pulumi.export("crdNames", platform.crd_names)
# The portals stack reads this through a StackReference.
pulumi.export("baseDomain", args.base_domain)
