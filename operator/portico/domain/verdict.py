"""Pure CNAME verdicts: what DNS showed (an Observation) in, a DomainCheck out.

No I/O here, so every rule is testable without a server and the operator can
rebuild or merge results freely.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum


class DomainState(StrEnum):
    VERIFIED = "Verified"
    MISCONFIGURED = "Misconfigured"
    UNKNOWN = "Unknown"

    @property
    def condition_status(self) -> str:
        """The `DomainVerified` condition status this state maps to."""
        return {"Verified": "True", "Misconfigured": "False"}.get(self.value, "Unknown")


class DomainReason(StrEnum):
    CNAME_VERIFIED = "CNAMEVerified"
    CNAME_MISSING = "CNAMEMissing"
    CNAME_MISMATCH = "CNAMEMismatch"
    CONFLICTING_RECORDS = "ConflictingRecords"
    DNS_UNAVAILABLE = "DNSUnavailable"
    # The `_portico-challenge.<host>` TXT record (ownership.py).
    OWNERSHIP_VERIFIED = "OwnershipVerified"
    OWNERSHIP_UNVERIFIED = "OwnershipUnverified"


# Longer chains are a misconfiguration (and resolvers give up around here too).
MAX_CHAIN = 12


def normalize_name(name: str) -> str:
    """DNS names compare case-insensitively; the trailing root dot is noise."""
    return name.strip().rstrip(".").lower()


@dataclass(frozen=True)
class Observation:
    """What the resolver saw for `host`, independent of what it should be.

    `chain` holds the CNAME targets followed from host, in order (host itself
    excluded). `addresses` are A/AAAA records owned by host itself (not by a
    CNAME target). `failure` is set when DNS could not answer, which makes
    the rest of the observation incomplete. `resolved` are the addresses the
    chain ends at (what a visitor reaches). `challenge` holds the TXT values at
    `_portico-challenge.<host>` (None: not looked up, or `challenge_failure` says
    why DNS could not answer).
    """

    host: str
    chain: tuple[str, ...] = ()
    addresses: tuple[str, ...] = ()
    failure: str | None = None
    resolved: tuple[str, ...] = ()
    challenge: tuple[str, ...] | None = None
    challenge_failure: str | None = None


@dataclass(frozen=True)
class DomainCheck:
    host: str
    target: str
    state: DomainState
    reason: DomainReason
    message: str
    chain: tuple[str, ...] = ()
    # Set when an inconclusive re-check was merged into an earlier verification.
    warning: str = ""

    @property
    def verified(self) -> bool:
        return self.state is DomainState.VERIFIED

    @property
    def condition_status(self) -> str:
        return self.state.condition_status


def missing_message(host: str, target: str) -> str:
    return f"Please add a CNAME record for {host} pointing to {target}"


def verified(host: str, target: str, chain: tuple[str, ...] = ()) -> DomainCheck:
    """A verified result; also how the operator rebuilds one from a True condition."""
    via = f" (via {' -> '.join(chain[:-1])})" if len(chain) > 1 else ""
    return DomainCheck(
        host=normalize_name(host),
        target=normalize_name(target),
        state=DomainState.VERIFIED,
        reason=DomainReason.CNAME_VERIFIED,
        message=f"{normalize_name(host)} is a CNAME for {normalize_name(target)}{via}",
        chain=chain,
    )


def judge(observation: Observation, target: str) -> DomainCheck:
    """Decide the verdict for one observation against the expected target."""
    host = normalize_name(observation.host)
    want = normalize_name(target)
    chain = tuple(normalize_name(n) for n in observation.chain)

    def result(state: DomainState, reason: DomainReason, message: str) -> DomainCheck:
        return DomainCheck(host, want, state, reason, message, chain)

    # Reaching the target settles it even if a later hop failed to resolve.
    if want in chain:
        if observation.addresses:
            return result(
                DomainState.MISCONFIGURED,
                DomainReason.CONFLICTING_RECORDS,
                f"{host} has a CNAME to {chain[0]} and also A/AAAA records "
                f"({', '.join(observation.addresses)}); a CNAME must stand alone: "
                "remove the A/AAAA records",
            )
        return verified(host, want, chain[: chain.index(want) + 1])
    if observation.failure is not None:
        return result(
            DomainState.UNKNOWN,
            DomainReason.DNS_UNAVAILABLE,
            f"Could not check the CNAME of {host}: {observation.failure}; will retry",
        )
    if not chain:
        if observation.addresses:
            return result(
                DomainState.MISCONFIGURED,
                DomainReason.CONFLICTING_RECORDS,
                f"{host} has A/AAAA records ({', '.join(observation.addresses)}) "
                f"instead of a CNAME; remove them and add a CNAME record for {host} "
                f"pointing to {want}",
            )
        return result(
            DomainState.MISCONFIGURED, DomainReason.CNAME_MISSING, missing_message(host, want)
        )
    now = chain[0] if len(chain) == 1 else f"{chain[0]} (which leads to {chain[-1]})"
    if len(chain) != len(set(chain)) or len(chain) > MAX_CHAIN:
        now = f"{chain[0]}, a CNAME chain that loops or is too long"
    return result(
        DomainState.MISCONFIGURED,
        DomainReason.CNAME_MISMATCH,
        f"{host} points to {now}, but it should point to {want}; "
        f"change the CNAME record for {host} to {want}",
    )


def merge_checks(previous: DomainCheck | None, new: DomainCheck) -> DomainCheck:
    """The result to publish: an inconclusive re-check never un-verifies a domain.

    Only a verification of the same host and target survives; a definite
    misconfiguration always replaces it.
    """
    if (
        previous is not None
        and previous.verified
        and new.state is DomainState.UNKNOWN
        and (previous.host, previous.target) == (new.host, new.target)
    ):
        return replace(previous, warning=new.message)
    return new
