"""The resolver against a forwarder that behaves like dnsmasq: it refuses CNAME queries for a
name that has only addresses, and answers an address query with the whole CNAME chain.

A small real DNS server on loopback (UDP, dnspython wire format), not a mock of the resolver.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator

import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest

from portico.domain import DomainState, ResolverSettings, check_domain

CHAIN = {"www.shop.example": "edge.cdn.example", "edge.cdn.example": "web.portals.test"}
ADDRESSES = {"web.portals.test": "192.0.2.10"}


def _answer(query: dns.message.Message) -> dns.message.Message:
    response = dns.message.make_response(query)
    question = query.question[0]
    name = question.name.to_text().rstrip(".")
    if question.rdtype == dns.rdatatype.CNAME:
        response.set_rcode(dns.rcode.REFUSED)  # what dnsmasq does
        return response
    while name in CHAIN:
        response.answer.append(
            dns.rrset.from_text(name + ".", 60, "IN", "CNAME", CHAIN[name] + ".")
        )
        name = CHAIN[name]
    if name in ADDRESSES and question.rdtype == dns.rdatatype.A:
        response.answer.append(dns.rrset.from_text(name + ".", 60, "IN", "A", ADDRESSES[name]))
    elif name not in ADDRESSES:
        response.set_rcode(dns.rcode.NXDOMAIN)
    return response


@pytest.fixture
def forwarder() -> Iterator[tuple[str, int]]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                data, peer = sock.recvfrom(4096)
            except TimeoutError:
                continue
            sock.sendto(_answer(dns.message.from_wire(data)).to_wire(), peer)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield sock.getsockname()
    stop.set()
    thread.join()
    sock.close()


def _settings(address: tuple[str, int], timeout: float = 2.0) -> ResolverSettings:
    return ResolverSettings(nameservers=(f"{address[0]}:{address[1]}",), timeout=timeout)


def test_chain_read_from_one_address_query(forwarder: tuple[str, int]) -> None:
    check = asyncio.run(check_domain("www.shop.example", "web.portals.test", _settings(forwarder)))
    assert check.state is DomainState.VERIFIED, check.message
    assert check.chain == ("edge.cdn.example", "web.portals.test")


def test_wrong_target_through_a_forwarder(forwarder: tuple[str, int]) -> None:
    check = asyncio.run(
        check_domain("www.shop.example", "other.portals.test", _settings(forwarder))
    )
    assert check.state is DomainState.MISCONFIGURED, check.message


def test_a_silent_server_is_unknown() -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))  # never answers
    try:
        check = asyncio.run(
            check_domain("www.shop.example", "web.portals.test", _settings(sock.getsockname(), 0.3))
        )
    finally:
        sock.close()
    assert check.state is DomainState.UNKNOWN
    assert "0.3" in check.message  # says how long it waited
