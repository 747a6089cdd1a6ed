"""The I/O edge of domain verification: asynchronous DNS lookups with dnspython.

Every check builds fresh resolvers (dnspython caches nothing unless told to),
so a failure is never served from a cache.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

import dns.asyncresolver
import dns.exception
import dns.message
import dns.name
import dns.nameserver
import dns.rdatatype
import dns.resolver

from portico.domain.ownership import challenge_name
from portico.domain.verdict import MAX_CHAIN, DomainCheck, Observation, judge, normalize_name


@dataclass(frozen=True)
class ResolverSettings:
    """Operator settings for DNS checks.

    `nameservers` are "IP", "IP:PORT" or "[IPv6]:PORT"; empty means the
    system's /etc/resolv.conf. `port` applies to servers given without one
    and, in authoritative mode, to the zone's own servers. `timeout` bounds
    each lookup, in seconds. `authoritative` asks the zone's NS servers
    directly (found through the configured resolver), as cert-manager does,
    so a recursive resolver's stale cache cannot delay a verification.
    """

    nameservers: tuple[str, ...] = ()
    port: int = 53
    timeout: float = 5.0
    authoritative: bool = False

    def __post_init__(self) -> None:
        if not 0 < self.port < 65536:
            raise ValueError(f"DNS port out of range: {self.port}")
        if self.timeout <= 0:
            raise ValueError(f"DNS timeout must be positive: {self.timeout}")
        for server in self.nameservers:
            parse_nameserver(server, self.port)


def parse_nameserver(text: str, default_port: int = 53) -> tuple[str, int]:
    """Split "IP[:PORT]" (IPv6 with a port as "[IP]:PORT"); raise ValueError if invalid."""
    text = text.strip()
    host, port = text, default_port
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        if rest:
            if not rest.startswith(":"):
                raise ValueError(f"invalid nameserver {text!r}")
            port = int(rest[1:])
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
        port = int(port_text)
    ipaddress.ip_address(host)  # nameservers must be addresses, not names
    if not 0 < port < 65536:
        raise ValueError(f"invalid port in nameserver {text!r}")
    return host, port


class _Unavailable(Exception):
    """DNS gave no usable answer; the message says why (never a verdict)."""


def _resolver(servers: list[tuple[str, int]] | None, timeout: float) -> dns.asyncresolver.Resolver:
    resolver = dns.asyncresolver.Resolver(configure=servers is None)
    if servers is not None:
        resolver.nameservers = [dns.nameserver.Do53Nameserver(ip, port) for ip, port in servers]
    resolver.timeout = timeout
    resolver.lifetime = timeout
    return resolver


def _describe(resolver: dns.asyncresolver.Resolver) -> str:
    return ", ".join(str(ns) for ns in resolver.nameservers) or "no nameservers"


async def _query(
    resolver: dns.asyncresolver.Resolver,
    name: str,
    rdtype: dns.rdatatype.RdataType,
    keep_nxdomain: bool = False,
) -> dns.message.Message | None:
    """The response for name/rdtype, or None when the name does not exist.

    KEEP_NXDOMAIN returns the NXDOMAIN response itself: a CNAME chain whose last
    name does not exist is still in its answer section.
    """
    qname = dns.name.from_text(name)
    try:
        answer = await resolver.resolve(qname, rdtype, raise_on_no_answer=False, search=False)
    except dns.resolver.NXDOMAIN as error:
        if not keep_nxdomain:
            return None
        response: dns.message.Message | None = error.responses().get(qname)  # type: ignore[no-untyped-call]
        return response
    except dns.exception.Timeout as error:
        raise _Unavailable(
            f"no answer within {resolver.lifetime:g}s from {_describe(resolver)}"
        ) from error
    except dns.resolver.NoNameservers as error:
        # SERVFAIL, REFUSED (a server with no upstream), unreachable servers.
        raise _Unavailable(f"no nameserver answered ({error})") from error
    except (dns.exception.DNSException, OSError) as error:
        raise _Unavailable(f"lookup of {name} failed ({error})") from error
    return answer.response


def _owned(response: dns.message.Message, name: str, rdtype: dns.rdatatype.RdataType) -> list[str]:
    """Records of rdtype owned by name itself, not by a CNAME target in the answer."""
    owner = dns.name.from_text(name)
    return [
        rdata.to_text()
        for rrset in response.answer
        if rrset.name == owner and rrset.rdtype == rdtype
        for rdata in rrset
    ]


class _Lookup:
    """One check's lookups; in authoritative mode it remembers each zone's servers."""

    def __init__(self, settings: ResolverSettings) -> None:
        servers = [parse_nameserver(s, settings.port) for s in settings.nameservers]
        self.settings = settings
        self.base = _resolver(servers or None, settings.timeout)
        self.zones: dict[str, dns.asyncresolver.Resolver] = {}

    async def cname(self, name: str) -> str | None:
        response = await _query(await self._for(name), name, dns.rdatatype.CNAME)
        targets = [] if response is None else _owned(response, name, dns.rdatatype.CNAME)
        return normalize_name(targets[0]) if targets else None

    async def address_answers(self, name: str) -> list[dns.message.Message]:
        """A and AAAA answers for name: one round trip that carries the whole CNAME chain."""
        resolver = await self._for(name)
        rdtypes = (dns.rdatatype.A, dns.rdatatype.AAAA)
        found = await _both(*(_query(resolver, name, t, keep_nxdomain=True) for t in rdtypes))
        return [r for r in found if r is not None]

    async def txt(self, name: str) -> tuple[str, ...]:
        """The TXT values at name (through a CNAME, as ACME challenges may be delegated)."""
        response = await _query(await self._for(name), name, dns.rdatatype.TXT)
        if response is None:
            return ()
        return tuple(
            sorted(
                b"".join(rdata.strings).decode("utf-8", "replace")
                for rrset in response.answer
                if rrset.rdtype == dns.rdatatype.TXT
                for rdata in rrset
            )
        )

    async def own_addresses(self, name: str) -> tuple[str, ...]:
        resolver = await self._for(name)
        rdtypes = (dns.rdatatype.A, dns.rdatatype.AAAA)
        responses = await _both(*(_query(resolver, name, t) for t in rdtypes))
        return tuple(
            address
            for response, rdtype in zip(responses, rdtypes, strict=True)
            if response is not None
            for address in _owned(response, name, rdtype)
        )

    async def _for(self, name: str) -> dns.asyncresolver.Resolver:
        if not self.settings.authoritative:
            return self.base
        zone = await self._zone_of(name)
        if zone not in self.zones:
            self.zones[zone] = await self._authority(zone)
        return self.zones[zone]

    async def _zone_of(self, name: str) -> str:
        """The closest enclosing zone apex: the first ancestor owning an SOA.

        Any failure ends the walk: skipping a zone that failed to answer would
        ask its parent, whose referral reads like "no such record".
        """
        labels = name.split(".")
        for i in range(len(labels)):
            candidate = ".".join(labels[i:])
            response = await _query(self.base, candidate, dns.rdatatype.SOA)
            if response is not None and _owned(response, candidate, dns.rdatatype.SOA):
                return candidate
        raise _Unavailable(f"could not find the DNS zone that holds {name}")

    async def _authority(self, zone: str) -> dns.asyncresolver.Resolver:
        response = await _query(self.base, zone, dns.rdatatype.NS)
        hosts = [] if response is None else _owned(response, zone, dns.rdatatype.NS)
        addresses: list[str] = []
        for host in map(normalize_name, hosts):
            for rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA):
                try:
                    found = await _query(self.base, host, rdtype)
                except _Unavailable:
                    continue  # one silent nameserver name must not hide the others
                if found is not None:
                    addresses += _owned(found, host, rdtype)
        if not addresses:
            raise _Unavailable(f"found no address for the nameservers of zone {zone}")
        return _resolver([(ip, self.settings.port) for ip in addresses], self.settings.timeout)


async def _both(
    *queries: Coroutine[Any, Any, dns.message.Message | None],
) -> list[dns.message.Message | None]:
    """Every query's answer, or the first one's error once all have ended: a plain gather
    leaves the other failure unretrieved, and asyncio logs it with a traceback."""
    results = await asyncio.gather(*queries, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return [r for r in results if not isinstance(r, BaseException)]


def _chain(responses: list[dns.message.Message], name: str) -> tuple[list[str], bool]:
    """The CNAME chain the answers hold from name, and whether its last name has addresses."""
    chain: list[str] = []
    current = name
    while len(chain) <= MAX_CHAIN:
        hops = [t for r in responses for t in _owned(r, current, dns.rdatatype.CNAME)]
        if not hops:
            break
        current = normalize_name(hops[0])
        chain.append(current)
        if chain.count(current) > 1:
            break
    ends = any(
        _owned(r, current, rdtype)
        for r in responses
        for rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA)
    )
    return chain, ends


def _resolved(responses: list[dns.message.Message], last: str) -> tuple[str, ...]:
    """The addresses owned by the chain's last name: where a visitor ends up."""
    return tuple(
        sorted(
            {
                a
                for r in responses
                for t in (dns.rdatatype.A, dns.rdatatype.AAAA)
                for a in _owned(r, last, t)
            }
        )
    )


async def _observe(
    lookup: _Lookup, name: str, want: str
) -> tuple[list[str], tuple[str, ...], tuple[str, ...]]:
    """The chain from name, the addresses beside it and the addresses it ends at."""
    responses = await lookup.address_answers(name)
    chain, ends = _chain(responses, name)
    addresses = tuple(
        sorted(
            a
            for r in responses
            for t in (dns.rdatatype.A, dns.rdatatype.AAAA)
            for a in _owned(r, name, t)
        )
    )
    resolved = _resolved(responses, chain[-1] if chain else name)
    if ends or (chain and chain[-1] == want):
        return chain, addresses, resolved
    # The answer stopped short (an authoritative server outside the target's zone):
    # follow the rest of the chain hop by hop.
    hop = await lookup.cname(chain[-1] if chain else name)
    while hop is not None:
        chain.append(hop)
        if hop == want or len(chain) > MAX_CHAIN or chain.count(hop) > 1:
            break
        hop = await lookup.cname(hop)
    return chain, addresses, resolved


async def _bounded(budget: float, work: Coroutine[Any, Any, Any]) -> tuple[Any, str | None]:
    """WORK's result and None, or None and why DNS gave no usable answer in time."""
    try:
        async with asyncio.timeout(budget):
            return await work, None
    except _Unavailable as error:
        return None, str(error)
    except TimeoutError:
        return None, f"the lookup took longer than {budget:g}s"


async def observe(
    host: str, target: str, settings: ResolverSettings, *, challenge: bool = False
) -> Observation:
    """Follow host's CNAME chain (stopping at target) and note A/AAAA beside it; with
    CHALLENGE, also read the TXT values at `_portico-challenge.<host>`, at the same time.

    One address query carries the whole chain (forwarders such as dnsmasq refuse
    a CNAME query for a name that has only addresses); per-hop CNAME queries
    finish a chain the answer left open. Each part is bounded in time; a failure
    of one leaves the other's answer usable.
    """
    name, want = normalize_name(host), normalize_name(target)
    lookup = _Lookup(settings)
    budget = settings.timeout * 4
    parts = [_bounded(budget, _observe(lookup, name, want))]
    if challenge:
        parts.append(_bounded(budget, lookup.txt(challenge_name(name))))
    results = await asyncio.gather(*parts)
    (found, failure), *txt = results
    values, txt_failure = txt[0] if txt else (None, None)
    chain, addresses, resolved = found if found is not None else ([], (), ())
    return Observation(
        name,
        tuple(chain),
        addresses,
        failure=failure,
        resolved=resolved,
        challenge=values,
        challenge_failure=txt_failure,
    )


async def check_domain(
    host: str, target: str, settings: ResolverSettings | None = None
) -> DomainCheck:
    """Check that host resolves by CNAME (directly or via a chain) to target."""
    observation = await observe(host, target, settings or ResolverSettings())
    return judge(observation, target)
