"""Pulumi components for Portico: the platform install and portals as code."""

from portico_stack.paths import CHART_DIR, CRDS_DIR, crd_names
from portico_stack.platform import PorticoPlatform, PorticoPlatformArgs
from portico_stack.portals import PortalSet, PortalSetArgs, portal_url

__all__ = [
    "CHART_DIR",
    "CRDS_DIR",
    "PortalSet",
    "PortalSetArgs",
    "PorticoPlatform",
    "PorticoPlatformArgs",
    "crd_names",
    "portal_url",
]
