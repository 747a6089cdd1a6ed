"""A real local Kubernetes control plane for development and the test suite (`portico dev`)."""

from portico_dev.binaries import BinariesMissing, BuildFailed
from portico_dev.controlplane import ControlPlane
from portico_dev.kubectl import KubectlError
from portico_dev.procs import PortInUse, ProcessDied

__all__ = [
    "BinariesMissing",
    "BuildFailed",
    "ControlPlane",
    "KubectlError",
    "PortInUse",
    "ProcessDied",
]
