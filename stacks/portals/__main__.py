"""Pulumi program: PortalInstances and Portals from a YAML file or config; exports portal URLs."""

import sys
from pathlib import Path

import pulumi
import pulumi_kubernetes as k8s

HERE = Path(__file__).resolve().parent
# The component library lives beside this program, in stacks/portico_stack.
sys.path.insert(0, str(HERE.parent))

from portico_stack import PortalSet, PortalSetArgs, crd_names  # noqa: E402

config = pulumi.Config()
base_domain: pulumi.Input[str]
if config.get("platformStack"):
    platform = pulumi.StackReference(config.require("platformStack"))
    base_domain = platform.require_output("baseDomain").apply(str)
else:
    base_domain = config.require("baseDomain")

# Read the CRDs the platform stack installed: Portals wait for them, and a
# cluster without Portico fails here with the CRD's name rather than later.
crds = [
    k8s.apiextensions.v1.CustomResourceDefinition.get(f"crd-{name}", name) for name in crd_names()
]

if config.get("file"):
    args = PortalSetArgs.from_file(
        HERE / config.require("file"), base_domain=base_domain, depends_on=crds
    )
else:
    args = PortalSetArgs.from_objects(
        [*(config.get_object("instances") or []), *(config.get_object("portals") or [])],
        where="Pulumi config (instances, portals)",
        base_domain=base_domain,
        depends_on=crds,
    )
portals = PortalSet("portals", args)

pulumi.export("urls", portals.urls)
