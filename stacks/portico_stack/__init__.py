"""Pulumi components for Portico: the platform install and portals as code."""

from portico_stack.paths import CHART_DIR, CRDS_DIR, crd_names
from portico_stack.platform import PorticoPlatform, PorticoPlatformArgs
from portico_stack.portals import PortalObject, PortalSet, PortalSetArgs, summary

__all__ = [
    "CHART_DIR",
    "CRDS_DIR",
    "PortalObject",
    "PortalSet",
    "PortalSetArgs",
    "PorticoPlatform",
    "PorticoPlatformArgs",
    "crd_names",
    "summary",
]
