"""`portico check-domain` against the loopback DNS server."""

from __future__ import annotations

from click.testing import CliRunner

from portico.cli import main
from tests.support.dnsserver import AuthoritativeDNS, dns_server

__all__ = ["dns_server"]  # a fixture: imported so pytest finds it

TARGET = "contoso-support.portals.test"


def run(server: AuthoritativeDNS, *args: str) -> tuple[int, str]:
    ns = f"{server.address}:{server.port}"
    result = CliRunner().invoke(main, ["check-domain", *args, "--nameserver", ns])
    return result.exit_code, result.output


def test_verified_exits_zero(dns_server: AuthoritativeDNS) -> None:
    dns_server.set_zone("contoso.test", [f"support IN CNAME {TARGET}."])
    code, out = run(dns_server, "support.contoso.test", "--target", TARGET)
    assert code == 0, out
    assert "Verified (CNAMEVerified)" in out and f"support.contoso.test -> {TARGET}" in out


def test_missing_exits_one_with_the_fix(dns_server: AuthoritativeDNS) -> None:
    dns_server.set_zone("contoso.test")
    code, out = run(dns_server, "support.contoso.test", "--target", TARGET, "--authoritative")
    assert code == 1
    assert f"Please add a CNAME record for support.contoso.test pointing to {TARGET}" in out


def test_unreachable_dns_exits_three(dns_server: AuthoritativeDNS) -> None:
    dns_server.set_zone("contoso.test", [f"support IN CNAME {TARGET}."])
    dns_server.stop()
    code, out = run(dns_server, "support.contoso.test", "--target", TARGET, "--timeout", "0.5")
    assert code == 3, out
    assert "DNSUnavailable" in out


def test_bad_nameserver_is_a_usage_error() -> None:
    result = CliRunner().invoke(
        main, ["check-domain", "a.contoso.test", "--target", TARGET, "--nameserver", "dns.local"]
    )
    assert result.exit_code == 2
    assert "IP[:PORT]" in result.output
