"""A real local Kubernetes control plane for development and the test suite (`portico dev`)."""

from portico.devcluster.binaries import BinariesMissing, BuildFailed
from portico.devcluster.controlplane import ControlPlane
from portico.devcluster.kubectl import KubectlError
from portico.devcluster.procs import PortInUse, ProcessDied

__all__ = [
    "BinariesMissing",
    "BuildFailed",
    "ControlPlane",
    "KubectlError",
    "PortInUse",
    "ProcessDied",
]
