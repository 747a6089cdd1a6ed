"""Domain verification against a real authoritative DNS server (NSD) on loopback."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator

import pytest

from portico.domain import (
    DomainCheck,
    DomainReason,
    DomainState,
    ResolverSettings,
    check_domain,
    merge_checks,
)
from tests.support.dnsserver import AuthoritativeDNS, dns_server

__all__ = ["dns_server"]  # a fixture: imported so pytest finds it

HOST = "support.contoso.test"
TARGET = "contoso-support.portals.test"
PLATFORM = ["* IN A 127.0.0.1"]  # every portal name exists, none is a CNAME


def check(server: AuthoritativeDNS, *, authoritative: bool = False) -> DomainCheck:
    return asyncio.run(check_domain(HOST, TARGET, server.settings(authoritative=authoritative)))


@pytest.mark.parametrize("authoritative", [False, True], ids=["resolver", "authoritative"])
def test_correct_cname(zones: AuthoritativeDNS, authoritative: bool) -> None:
    zones.set_zone("contoso.test", [f"support IN CNAME {TARGET}."])
    result = check(zones, authoritative=authoritative)
    assert result.state is DomainState.VERIFIED, result.message
    assert result.chain == (TARGET,)


def test_cname_case_and_trailing_dot(zones: AuthoritativeDNS) -> None:
    zones.set_zone("contoso.test", ["SUPPORT IN CNAME Contoso-Support.PORTALS.test."])
    result = asyncio.run(check_domain("Support.Contoso.Test.", TARGET + ".", zones.settings()))
    assert result.verified, result.message


@pytest.mark.parametrize("authoritative", [False, True], ids=["resolver", "authoritative"])
def test_chain(zones: AuthoritativeDNS, authoritative: bool) -> None:
    zones.set_zone(
        "contoso.test",
        [
            "support IN CNAME edge.contoso.test.",
            "edge IN CNAME cdn.contoso.test.",
            f"cdn IN CNAME {TARGET}.",
        ],
    )
    result = check(zones, authoritative=authoritative)
    assert result.verified, result.message
    assert result.chain == ("edge.contoso.test", "cdn.contoso.test", TARGET)


def test_wrong_target(zones: AuthoritativeDNS) -> None:
    zones.set_zone("contoso.test", ["support IN CNAME fabrikam.portals.test."])
    result = check(zones)
    assert result.reason is DomainReason.CNAME_MISMATCH
    assert "fabrikam.portals.test" in result.message and TARGET in result.message


@pytest.mark.parametrize("authoritative", [False, True], ids=["resolver", "authoritative"])
def test_missing_record_nxdomain(zones: AuthoritativeDNS, authoritative: bool) -> None:
    zones.set_zone("contoso.test", ["www IN A 192.0.2.1"])
    result = check(zones, authoritative=authoritative)
    assert result.reason is DomainReason.CNAME_MISSING
    assert result.message == f"Please add a CNAME record for {HOST} pointing to {TARGET}"


def test_a_record_conflict(zones: AuthoritativeDNS) -> None:
    zones.set_zone("contoso.test", ["support IN A 192.0.2.10", "support IN AAAA 2001:db8::10"])
    result = check(zones)
    assert result.reason is DomainReason.CONFLICTING_RECORDS
    assert "192.0.2.10" in result.message and "2001:db8::10" in result.message


def test_record_added_later(zones: AuthoritativeDNS) -> None:
    zones.set_zone("contoso.test")
    first = check(zones)
    assert first.reason is DomainReason.CNAME_MISSING
    zones.set_zone("contoso.test", [f"support IN CNAME {TARGET}."])
    second = check(zones)  # a fresh lookup: the earlier answer is not cached
    assert second.verified, second.message
    assert merge_checks(first, second) == second


def test_server_stopped_is_unknown_and_keeps_verification(zones: AuthoritativeDNS) -> None:
    zones.set_zone("contoso.test", [f"support IN CNAME {TARGET}."])
    before = check(zones)
    assert before.verified
    zones.stop()
    after = asyncio.run(check_domain(HOST, TARGET, zones.settings(timeout=1.0)))
    assert after.state is DomainState.UNKNOWN
    assert after.reason is DomainReason.DNS_UNAVAILABLE
    merged = merge_checks(before, after)
    assert merged.verified and merged.warning
    zones.start()
    assert check(zones).verified


def test_refused_is_unknown(zones: AuthoritativeDNS) -> None:
    """A server that does not serve the name answers REFUSED: unknown, not missing."""
    result = asyncio.run(check_domain("www.unserved.test", TARGET, zones.settings()))
    assert result.state is DomainState.UNKNOWN, result.message


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A UDP socket that never answers: every query to it times out."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"127.0.0.1:{sock.getsockname()[1]}"


def test_timeout_is_unknown_and_does_not_block_others(
    zones: AuthoritativeDNS, silent_server: str
) -> None:
    zones.set_zone("contoso.test", [f"support IN CNAME {TARGET}."])
    silent = ResolverSettings(nameservers=(silent_server,), timeout=1.5)
    finished: dict[str, float] = {}

    async def timed(name: str, settings: ResolverSettings) -> DomainCheck:
        result = await check_domain(HOST, TARGET, settings)
        finished[name] = time.monotonic() - start
        return result

    async def both() -> list[DomainCheck]:
        return list(await asyncio.gather(timed("slow", silent), timed("fast", zones.settings())))

    start = time.monotonic()
    slow, fast = asyncio.run(both())
    assert slow.reason is DomainReason.DNS_UNAVAILABLE and "1.5s" in slow.message
    assert fast.verified
    # the stalled lookup held up nobody: the other check finished long before it
    assert finished["fast"] < finished["slow"] / 2 and 1.5 <= finished["slow"] < 6


def test_fixture_lifecycle(dns_server: AuthoritativeDNS) -> None:
    """The reusable function-scoped fixture: add a zone, update it, restart."""
    dns_server.set_zone("fabrikam.test", ["shop IN CNAME fabrikam.portals.test."])
    dns_server.set_zone("fabrikam.test", [f"shop IN CNAME {TARGET}."])
    dns_server.stop()
    assert not dns_server.running
    dns_server.start()
    result = asyncio.run(check_domain("shop.fabrikam.test", TARGET, dns_server.settings()))
    assert result.verified, result.message


def test_missing_binary_skips_or_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    import tests.support.dnsserver as module

    monkeypatch.setattr(module, "find_nsd", lambda: None)
    monkeypatch.delenv("PORTICO_REQUIRE_CONTROLPLANE", raising=False)
    with pytest.raises(pytest.skip.Exception, match="nsd"):
        module.require_nsd()
    monkeypatch.setenv("PORTICO_REQUIRE_CONTROLPLANE", "1")
    with pytest.raises(pytest.fail.Exception, match="required"):
        module.require_nsd()
