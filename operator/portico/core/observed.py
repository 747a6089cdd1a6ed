"""What one reconcile knows: everything `observe` read or looked up, as plain data.

`decide` reads only this (and the settings and the clock), so every decision
can be driven by hand in a unit test.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from portico.api.model import Portal, PortalInstance
from portico.certificates import CertificateVerdict
from portico.core import names
from portico.core.claims import Reservation
from portico.core.conditions import Condition
from portico.domain import DomainCheck, Observation

Key = tuple[str, str]  # (kind, name) of a child


@dataclass(frozen=True)
class SecretView:
    """A Secret as decisions see it: its version and keys; values only where they are copied."""

    name: str
    resource_version: str
    keys: frozenset[str]
    data: Mapping[str, str] = field(default_factory=dict, repr=False)  # base64 values
    # False: it exists without names.SECRET_LABEL, so the watch never brings it (nor its
    # changes); only its metadata was read (keys and data are empty), and it is not used.
    labelled: bool = True


def unlabelled_message(namespace: str, name: str, what: str, value: str) -> str:
    """How to fix a referenced Secret the Secret watch cannot see."""
    return (
        f"Secret {name} ({what}) exists but has no label {names.SECRET_LABEL}; Portico "
        "watches only Secrets with that label, so it would miss changes to this one. Add it "
        f"(kubectl -n {namespace} label secret {name} {names.SECRET_LABEL}={value}) and the "
        "portal continues by itself"
    )


def missing_message(namespace: str, name: str, what: str, keys: str, value: str) -> str:
    return (
        f"Secret {name} ({what}) does not exist in namespace {namespace}; create it with "
        f"{keys} and label {names.SECRET_LABEL}={value} (Portico watches only Secrets with "
        "that label)"
    )


@dataclass(frozen=True)
class CertificateOutcome:
    """The custom domain's certificate: a verdict, or why there is none to judge yet."""

    verdict: CertificateVerdict | None = None
    waiting: Condition | None = None


@dataclass(frozen=True)
class Endpoint:
    """One address the portal's Service routes to (its EndpointSlices, kept by the watch)."""

    pod: str  # targetRef name
    ready: bool
    terminating: bool


@dataclass(frozen=True)
class Observed:
    obj: Mapping[str, Any]  # the Portal as stored: metadata and status
    portal: Portal
    instance: PortalInstance | None = None
    # None: the labels are not needed (the instance allows every namespace) or unknown.
    namespace_labels: Mapping[str, str] | None = None
    # Every Secret the spec references, by name (None: it does not exist).
    secrets: Mapping[str, SecretView | None] = field(default_factory=dict)
    credentials: SecretView | None = None
    # The operator's mail login for the portals' runtimes (settings); None: none set or
    # not found.
    mail_credentials: SecretView | None = None
    # Children this portal controls (its UID in their controller owner reference).
    children: Mapping[Key, Mapping[str, Any]] = field(default_factory=dict)
    # Objects with a child's name that this portal does not control: never touched.
    foreign: frozenset[Key] = frozenset()
    # Failed Job name → what its last pod said when it ended.
    job_failures: Mapping[str, str] = field(default_factory=dict)
    # "namespace/name" of the portal that holds the subdomain / custom host claim.
    subdomain_owner: str = ""
    host_owner: str = ""
    # A deleted holder's reservation that keeps this portal from the name (another namespace).
    subdomain_reserved: Reservation | None = None
    host_reserved: Reservation | None = None
    # A DNS lookup made for this reconcile; None when none was due: the CNAME's verdict,
    # the ownership TXT record's, and what DNS showed (chain, addresses, TXT values).
    dns: DomainCheck | None = None
    ownership: DomainCheck | None = None
    dns_seen: Observation | None = None
    certificate: CertificateOutcome | None = None
    # What the Service `<portal>` routes to now; None until its EndpointSlices are seen.
    endpoints: tuple[Endpoint, ...] | None = None
    # A key freshly drawn from the OS's CSPRNG, used only if the portal's session keys
    # are made or rotated by this reconcile ("" offline: `portico plan` draws none).
    session_key: str = field(default="", repr=False)
    # The owner's ConfigMap with the custom maintenance page (None: none, or not found).
    maintenance_source: Mapping[str, Any] | None = None
    # How many portals the operator has in Configuring (pacing spreads their progress).
    configuring: int = 0

    @property
    def status(self) -> Mapping[str, Any]:
        status: Mapping[str, Any] = self.obj.get("status") or {}
        return status

    @property
    def status_written(self) -> datetime.datetime | None:
        """When the status was last changed (managedFields' time of the status subresource)."""
        stamps = [
            entry.get("time", "")
            for entry in self.obj["metadata"].get("managedFields") or ()
            if entry.get("subresource") == "status"
        ]
        newest = max((s for s in stamps if s), default="")
        return names.parse_time(newest) if newest else None

    @property
    def generation(self) -> int:
        return int(self.obj["metadata"].get("generation", 1))

    @property
    def created(self) -> datetime.datetime | None:
        stamp = self.obj["metadata"].get("creationTimestamp")
        return names.parse_time(stamp) if stamp else None

    def child(self, kind: str, name: str) -> Mapping[str, Any] | None:
        return self.children.get((kind, name))
