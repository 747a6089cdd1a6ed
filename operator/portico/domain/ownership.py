"""Ownership of a custom host: the `_portico-challenge.<host>` TXT record (pure).

A CNAME alone proves only that HOST points at Portico, not who pointed it: once
the portal that asked for HOST is gone, any tenant could name HOST and inherit
the dangling CNAME (a subdomain takeover). The TXT record binds HOST to one
portal: its token is derived from the Portal's UID (a random UUID the API
server assigns, never reused), so another portal, in any namespace and with
any name, cannot produce the same token. The token is not a secret: its owner
publishes it in DNS, and anyone who may read the Portal may compute it.

No I/O here; the resolver fetches the TXT values into an Observation.
"""

from __future__ import annotations

import base64
import hashlib

from portico.domain.verdict import (
    MAX_CHAIN,
    DomainCheck,
    DomainReason,
    DomainState,
    Observation,
    normalize_name,
)

CHALLENGE_LABEL = "_portico-challenge"
# Every token starts with this: a TXT value with it is a Portico challenge (maybe a stale one).
TOKEN_PREFIX = "portico-verification="
# Domain separation: these hashes mean nothing anywhere else.
_CONTEXT = b"portico.dev/domain-ownership/v1\0"


def challenge_name(host: str) -> str:
    """The name that must hold the TXT record for HOST."""
    return f"{CHALLENGE_LABEL}.{normalize_name(host)}"


def token(uid: str, host: str) -> str:
    """The TXT value that proves HOST belongs to the portal with this UID.

    Bound to the UID (so a portal deleted and created again gets a new token: the old
    record proves nothing for it) and to the host (a changed host needs its own record).
    """
    if not uid:
        raise ValueError("a portal has no token before the API server gives it a UID")
    digest = hashlib.sha256(_CONTEXT + uid.encode() + b"\0" + normalize_name(host).encode())
    # 160 bits, lower-case base32: no padding, no characters a DNS console might mangle.
    return TOKEN_PREFIX + base64.b32encode(digest.digest()[:20]).decode().lower()


def record_line(host: str, value: str) -> str:
    """The record as a zone file (and most DNS consoles) write it."""
    return f'{challenge_name(host)}. TXT "{value}"'


def add_message(host: str, value: str) -> str:
    return f'Please add a TXT record {challenge_name(host)} with the value "{value}"'


def judge(observation: Observation, expected: str) -> DomainCheck:
    """Verified when a TXT value at the challenge name is EXPECTED (other values may stand
    beside it: a zone can hold several tokens while a host moves between portals)."""
    host = normalize_name(observation.host)
    name = challenge_name(host)

    def result(state: DomainState, reason: DomainReason, message: str) -> DomainCheck:
        return DomainCheck(host, expected, state, reason, message)

    values = observation.challenge
    if values is not None and expected in values:
        return result(
            DomainState.VERIFIED,
            DomainReason.OWNERSHIP_VERIFIED,
            f"{name} holds this portal's token",
        )
    if observation.challenge_failure is not None or values is None:
        why = observation.challenge_failure or "it was not looked up"
        return result(
            DomainState.UNKNOWN,
            DomainReason.DNS_UNAVAILABLE,
            f"Could not check the TXT record {name}: {why}; will retry",
        )
    found = (
        f" ({name} holds {', '.join(repr(v) for v in values)}, not this portal's token)"
        if values
        else ""
    )
    return result(
        DomainState.MISCONFIGURED,
        DomainReason.OWNERSHIP_UNVERIFIED,
        f"{add_message(host, expected)}{found}; it proves that {host} belongs to this portal",
    )


def conflicts(observation: Observation, target: str, expected: str | None) -> tuple[str, ...]:
    """What in DNS stands against HOST now, one sentence each (empty: nothing).

    An address beside a CNAME (a CNAME must stand alone), a chain that leaves the target
    (it never reaches it, loops, or is too long), and a stale challenge: a Portico token
    at the challenge name that is not this portal's (left by an earlier portal).
    """
    if observation.failure is not None:
        return ()  # an incomplete observation proves no conflict
    host, want = normalize_name(observation.host), normalize_name(target)
    chain = tuple(normalize_name(n) for n in observation.chain)
    out: list[str] = []
    if chain and observation.addresses:
        out.append(
            f"{host} has A/AAAA records ({', '.join(observation.addresses)}) beside its CNAME"
        )
    if len(chain) != len(set(chain)) or len(chain) > MAX_CHAIN:
        out.append(f"the CNAME chain of {host} loops or is longer than {MAX_CHAIN}")
    elif chain and want not in chain:
        out.append(f"the CNAME chain of {host} ends at {chain[-1]}, never reaching {want}")
    stale = [v for v in observation.challenge or () if v.startswith(TOKEN_PREFIX) and v != expected]
    if stale and expected is not None:
        out.append(
            f"{challenge_name(host)} holds a token that is not this portal's "
            f"({', '.join(stale)}): a stale challenge; remove it"
        )
    return tuple(out)
