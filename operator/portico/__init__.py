"""Portico: a Kubernetes operator that provisions self-service web portals."""

__version__ = "0.1.0"
