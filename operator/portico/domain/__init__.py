"""Custom-domain verification: does HOST resolve by CNAME to the portal's name, and
does its `_portico-challenge` TXT record prove that it belongs to the portal?

Pure verdicts live in `verdict` (CNAME) and `ownership` (TXT), the asynchronous
DNS edge in `resolver`, the re-check schedule in `backoff`.
"""

from portico.domain import ownership
from portico.domain.backoff import recheck_delay
from portico.domain.resolver import ResolverSettings, check_domain, observe, parse_nameserver
from portico.domain.verdict import (
    DomainCheck,
    DomainReason,
    DomainState,
    Observation,
    judge,
    merge_checks,
    missing_message,
    normalize_name,
    verified,
)

__all__ = [
    "DomainCheck",
    "DomainReason",
    "DomainState",
    "Observation",
    "ResolverSettings",
    "check_domain",
    "judge",
    "merge_checks",
    "missing_message",
    "normalize_name",
    "observe",
    "ownership",
    "parse_nameserver",
    "recheck_delay",
    "verified",
]
