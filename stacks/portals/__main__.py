"""Pulumi program: Secrets, PortalInstances and Portals from a YAML file or config.

Exports each portal's status as the cluster reports it once Ready.
"""

import sys
from pathlib import Path

import pulumi
import pulumi_kubernetes as k8s

HERE = Path(__file__).resolve().parent
# The component library lives beside this program, in stacks/portico_stack.
sys.path.insert(0, str(HERE.parent))

from portico_stack import PortalSet, PortalSetArgs, crd_names  # noqa: E402

config = pulumi.Config()

# Read the CRDs the platform stack installed: Portals wait for them, and a
# cluster without Portico fails here with the CRD's name rather than later.
crds = [
    k8s.apiextensions.v1.CustomResourceDefinition.get(f"crd-{name}", name) for name in crd_names()
]
options = {
    "depends_on": crds,
    # Set with `pulumi config set --secret --path ...`: keys are NAMESPACE/NAME.
    "secrets": config.get_object("secrets") or {},
    "ready_timeout": config.get("readyTimeout") or "10m",
}
if config.get("file"):
    args = PortalSetArgs.from_file(HERE / config.require("file"), **options)
else:
    args = PortalSetArgs.from_objects(
        [*(config.get_object("instances") or []), *(config.get_object("portals") or [])],
        where="Pulumi config (instances, portals)",
        **options,
    )
portals = PortalSet("portals", args)

pulumi.export("portals", portals.status)
pulumi.export("urls", portals.urls)
