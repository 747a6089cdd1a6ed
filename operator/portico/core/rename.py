"""Rename (pure): a portal whose spec.subdomain changed (spec.renamePolicy: Allow).

status.url names the subdomain the portal was last given. A spec naming another
one is a rename:

- the claim on the new subdomain counts from the rename (`status.renamedAt`; the
  youngest of all claims until a plan records it), so a rename takes only a free
  name, never one another portal claimed first (else `SubdomainTaken`);
- the old subdomain, when the portal held it, joins `status.previousSubdomains`
  with a release time (now + the operator's rename grace): until then the page
  server answers it with a 308 redirect to the new URL, and no other portal can
  take it (a held name's claim beats every other, even while the rename itself is
  blocked); then decide drops it from the list and the name is free;
- a rename back to a subdomain still held takes it back with its old claim.

A Deprovisioned portal holds nothing, so it keeps no previous subdomains.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from portico.core import names
from portico.core.conditions import reason_of
from portico.core.reasons import Failure

# At most this many previous subdomains are held at once; a rename beyond them releases
# the oldest early (the CRD's maxItems).
MAX_HELD = 32
# The claim time of a held previous subdomain: it sorts before every RFC 3339 time, so
# the portal that had it keeps it against every other claim until its release.
HELD = ""
FIELD = "previousSubdomains"
# A portal whose Ready condition says one of these held no name (core/entitlement.py).
NOT_HELD = frozenset(
    {
        Failure.SUBDOMAIN_TAKEN,
        Failure.INSTANCE_NOT_FOUND,
        Failure.NAMESPACE_NOT_ALLOWED,
        Failure.IMAGE_NOT_ALLOWED,
    }
)
RENAMED_AT = "renamedAt"


@dataclass(frozen=True)
class Previous:
    subdomain: str
    releases_at: str  # RFC 3339, UTC

    def status(self) -> dict[str, str]:
        return {"subdomain": self.subdomain, "releasesAt": self.releases_at}


def listed(status: Mapping[str, Any]) -> tuple[Previous, ...]:
    """status.previousSubdomains as written (entries that are not well formed are dropped)."""
    out: list[Previous] = []
    for item in status.get(FIELD) or ():
        if not isinstance(item, Mapping) or not item.get("subdomain"):
            continue
        try:
            names.parse_time(str(item.get("releasesAt")))
        except ValueError:
            continue
        out.append(Previous(str(item["subdomain"]), str(item["releasesAt"])))
    return tuple(out)


def current(status: Mapping[str, Any], base_domain: str) -> str:
    """The subdomain status.url names ('' when it names none under BASE_DOMAIN, say
    before the first status or after a change of base domain)."""
    url = status.get("url")
    host = (urlsplit(url).hostname or "") if isinstance(url, str) else ""
    suffix = f".{base_domain}"
    if not base_domain or not host.endswith(suffix):
        return ""
    return host[: -len(suffix)]


def moving(subdomain: str, status: Mapping[str, Any], base_domain: str) -> bool:
    """SUBDOMAIN (the spec's) differs from the one status.url names: a rename no plan
    has recorded yet."""
    was = current(status, base_domain)
    return bool(was) and was != subdomain and not status.get("releasedAt")


def _held_current(status: Mapping[str, Any]) -> bool:
    """Whether the portal held the subdomain status.url names (it was not waiting for it)."""
    return (
        not status.get("releasedAt")
        and status.get("phase") != "Deprovisioned"
        and reason_of(status, "Ready") not in NOT_HELD
    )


def held(subdomain: str, status: Mapping[str, Any], base_domain: str) -> tuple[str, ...]:
    """The subdomains besides SUBDOMAIN (the spec's) the portal holds: its previous ones
    until their release, and the one it is renamed from until a plan lists it."""
    if status.get("releasedAt"):
        return ()
    found = {p.subdomain for p in listed(status)}
    if moving(subdomain, status, base_domain) and _held_current(status):
        found.add(current(status, base_domain))
    found.discard(subdomain)
    return tuple(sorted(found))


def subdomain_since(obj: Mapping[str, Any], since: str, base_domain: str) -> str:
    """When a Portal's claim on its spec's subdomain began: SINCE (its creation or its
    reactivation, site.claim_since) or its rename, whichever is later; the youngest of
    all claims while no plan has recorded the rename."""
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    if moving(str(spec.get("subdomain") or ""), status, base_domain):
        return "~renaming"  # sorts after every RFC 3339 time
    return max(since, str(status.get(RENAMED_AT) or ""))


@dataclass(frozen=True)
class Outcome:
    """What a plan writes about the rename: status.url's subdomain, the previous list,
    renamedAt, and when to come back (the next release)."""

    subdomain: str
    previous: tuple[Previous, ...]
    renamed_at: str
    release_in: float | None


def decide(
    subdomain: str,
    status: Mapping[str, Any],
    base_domain: str,
    now: datetime.datetime,
    grace_seconds: float,
) -> Outcome:
    """The rename's state after this plan (SUBDOMAIN: the spec's)."""
    kept = [p for p in listed(status) if names.parse_time(p.releases_at) > now]
    renamed_at = str(status.get(RENAMED_AT) or "")
    if moving(subdomain, status, base_domain):
        was = current(status, base_domain)
        back = any(p.subdomain == subdomain for p in kept)
        kept = [p for p in kept if p.subdomain != was]
        if _held_current(status) and grace_seconds > 0:
            until = now + datetime.timedelta(seconds=grace_seconds)
            kept.append(Previous(was, names.iso(until)))
        # A name it still held is taken back with the claim it had (its creation's).
        renamed_at = "" if back else names.iso(now)
    kept = [p for p in kept if p.subdomain != subdomain][-MAX_HELD:]
    return _outcome(subdomain, kept, renamed_at, now)


def _outcome(
    subdomain: str, kept: list[Previous], renamed_at: str, now: datetime.datetime
) -> Outcome:
    waits = [(names.parse_time(p.releases_at) - now).total_seconds() + 1 for p in kept]
    return Outcome(subdomain, tuple(kept), renamed_at, min(waits, default=None))


def write(new: dict[str, Any], outcome: Outcome) -> None:
    """Put OUTCOME's previousSubdomains and renamedAt into the status NEW."""
    new.pop(FIELD, None)
    new.pop(RENAMED_AT, None)
    if outcome.previous:
        new[FIELD] = [p.status() for p in outcome.previous]
    if outcome.renamed_at:
        new[RENAMED_AT] = outcome.renamed_at
