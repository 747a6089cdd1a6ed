"""The CNAME check against a real DNS server on loopback that misbehaves on purpose.

SERVFAIL, REFUSED, silence and truncated answers are outages: `Unknown` /
`DNSUnavailable`, and an earlier verification survives them (with a warning).
A truncated answer with TCP served is followed over TCP. NXDOMAIN is a definite
answer: it un-verifies with the fix in the message, and the next good answer
verifies again — a flapping zone flaps the condition, it never sticks.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import threading
from collections.abc import Iterator

import dns.flags
import dns.message
import dns.rcode
import dns.rrset
import pytest

from portico.domain import DomainReason, DomainState, ResolverSettings, check_domain
from portico.domain.verdict import DomainCheck, merge_checks

HOST, TARGET = "shop.contoso.example", "web.portals.test"


class FaultyDNS:
    """UDP (and TCP on the same port) answering by `mode`: ok, servfail, refused, silent,
    truncated (UDP only: TC set, TCP answers in full), truncated-no-tcp, nxdomain."""

    def __init__(self) -> None:
        self.mode = "ok"
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("127.0.0.1", 0))
        self.udp.settimeout(0.1)
        self.address = self.udp.getsockname()
        self.tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.tcp.bind(self.address)
        self.tcp.listen()
        self.tcp.settimeout(0.1)
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=f, daemon=True) for f in (self._udp, self._tcp)]

    def answer(self, query: dns.message.Message, over_tcp: bool) -> dns.message.Message | None:
        response = dns.message.make_response(query)
        mode = self.mode
        if mode == "silent":
            return None
        if mode in ("servfail", "refused"):
            response.set_rcode(dns.rcode.SERVFAIL if mode == "servfail" else dns.rcode.REFUSED)
        elif mode.startswith("truncated") and not over_tcp:
            response.flags |= dns.flags.TC
        elif mode == "nxdomain":
            response.set_rcode(dns.rcode.NXDOMAIN)
        else:
            name = query.question[0].name.to_text().rstrip(".")
            if name == HOST:
                response.answer.append(
                    dns.rrset.from_text(HOST + ".", 60, "IN", "CNAME", TARGET + ".")
                )
            response.flags |= dns.flags.AA
        return response

    def _udp(self) -> None:
        while not self.stop.is_set():
            try:
                data, peer = self.udp.recvfrom(4096)
            except TimeoutError:
                continue
            response = self.answer(dns.message.from_wire(data), over_tcp=False)
            if response is not None:
                self.udp.sendto(response.to_wire(), peer)

    def _tcp(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.tcp.accept()
            except TimeoutError:
                continue
            with conn:
                if self.mode == "truncated-no-tcp":
                    continue  # accepted and closed: the TCP retry fails too
                conn.settimeout(1)
                (size,) = struct.unpack("!H", conn.recv(2))
                response = self.answer(dns.message.from_wire(conn.recv(size)), over_tcp=True)
                if response is not None:
                    wire = response.to_wire()
                    conn.sendall(struct.pack("!H", len(wire)) + wire)

    def check(self) -> DomainCheck:
        settings = ResolverSettings(
            nameservers=(f"{self.address[0]}:{self.address[1]}",), timeout=0.5
        )
        return asyncio.run(check_domain(HOST, TARGET, settings))


@pytest.fixture
def server() -> Iterator[FaultyDNS]:
    dns_server = FaultyDNS()
    for thread in dns_server.threads:
        thread.start()
    yield dns_server
    dns_server.stop.set()
    for thread in dns_server.threads:
        thread.join()
    dns_server.udp.close()
    dns_server.tcp.close()


@pytest.mark.parametrize("mode", ["servfail", "refused", "silent", "truncated-no-tcp"])
def test_an_outage_is_unknown_and_never_unverifies(server: FaultyDNS, mode: str) -> None:
    verified = server.check()
    assert verified.state is DomainState.VERIFIED
    server.mode = mode
    outage = server.check()
    assert outage.state is DomainState.UNKNOWN, outage
    assert outage.reason is DomainReason.DNS_UNAVAILABLE
    assert "will retry" in outage.message
    kept = merge_checks(verified, outage)
    assert kept.verified and kept.warning == outage.message


def test_a_truncated_answer_is_followed_over_tcp(server: FaultyDNS) -> None:
    server.mode = "truncated"
    assert server.check().state is DomainState.VERIFIED


def test_flapping_nxdomain_unverifies_with_the_fix_and_recovers(server: FaultyDNS) -> None:
    published = None
    seen = []
    for mode in ["ok", "nxdomain", "ok", "servfail", "nxdomain", "ok"]:
        server.mode = mode
        published = merge_checks(published, server.check())
        seen.append((published.state, published.reason))
    assert [s for s, _ in seen] == [
        DomainState.VERIFIED,
        DomainState.MISCONFIGURED,
        DomainState.VERIFIED,
        DomainState.VERIFIED,  # SERVFAIL after a verification keeps it
        DomainState.MISCONFIGURED,
        DomainState.VERIFIED,
    ]
    server.mode = "nxdomain"
    missing = server.check()
    assert missing.reason is DomainReason.CNAME_MISSING
    assert f"add a CNAME record for {HOST} pointing to {TARGET}" in missing.message
