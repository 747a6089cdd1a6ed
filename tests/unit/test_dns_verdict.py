"""Pure domain-verification rules: verdicts, merging, backoff, settings."""

from __future__ import annotations

import pytest

from portico.domain import (
    DomainReason,
    DomainState,
    Observation,
    ResolverSettings,
    judge,
    merge_checks,
    parse_nameserver,
    recheck_delay,
    verified,
)

HOST = "support.contoso.com"
TARGET = "contoso-support.portals.example.net"


def test_direct_cname_is_verified() -> None:
    check = judge(Observation(HOST, (TARGET,)), TARGET)
    assert check.state is DomainState.VERIFIED
    assert check.reason == "CNAMEVerified"
    assert check.condition_status == "True"


def test_chain_is_verified_and_stops_at_target() -> None:
    check = judge(Observation(HOST, ("cdn.contoso.com", TARGET, "lb.example.net")), TARGET)
    assert check.verified
    assert check.chain == ("cdn.contoso.com", TARGET)
    assert "via cdn.contoso.com" in check.message


def test_comparison_ignores_case_and_trailing_dot() -> None:
    check = judge(Observation("Support.Contoso.COM.", (TARGET.upper() + ".",)), TARGET + ".")
    assert check.verified
    assert (check.host, check.target) == (HOST, TARGET)


def test_missing_record_message_shape() -> None:
    check = judge(Observation(HOST), TARGET)
    assert check.state is DomainState.MISCONFIGURED
    assert check.reason is DomainReason.CNAME_MISSING
    assert check.message == f"Please add a CNAME record for {HOST} pointing to {TARGET}"
    assert check.condition_status == "False"


def test_mismatch_names_current_and_expected() -> None:
    check = judge(Observation(HOST, ("old-site.hosting.example",)), TARGET)
    assert check.reason is DomainReason.CNAME_MISMATCH
    assert "old-site.hosting.example" in check.message
    assert TARGET in check.message


def test_mismatch_through_chain_names_the_end() -> None:
    check = judge(Observation(HOST, ("a.contoso.com", "b.elsewhere.example")), TARGET)
    assert check.reason is DomainReason.CNAME_MISMATCH
    assert "a.contoso.com" in check.message and "b.elsewhere.example" in check.message


def test_loop_is_a_mismatch() -> None:
    check = judge(Observation(HOST, ("a.contoso.com", "b.contoso.com", "a.contoso.com")), TARGET)
    assert check.reason is DomainReason.CNAME_MISMATCH
    assert "loops" in check.message


def test_address_beside_cname_conflicts() -> None:
    check = judge(Observation(HOST, (TARGET,), ("192.0.2.7",)), TARGET)
    assert check.reason is DomainReason.CONFLICTING_RECORDS
    assert "192.0.2.7" in check.message


def test_address_instead_of_cname_conflicts() -> None:
    check = judge(Observation(HOST, (), ("192.0.2.7", "2001:db8::7")), TARGET)
    assert check.reason is DomainReason.CONFLICTING_RECORDS
    assert "2001:db8::7" in check.message and f"pointing to {TARGET}" in check.message


def test_failure_is_unknown() -> None:
    check = judge(Observation(HOST, (), (), failure="no answer within 5s"), TARGET)
    assert check.state is DomainState.UNKNOWN
    assert check.reason is DomainReason.DNS_UNAVAILABLE
    assert check.condition_status == "Unknown"
    assert "no answer within 5s" in check.message


def test_failure_after_reaching_target_is_still_verified() -> None:
    check = judge(Observation(HOST, (TARGET,), failure="AAAA timed out"), TARGET)
    assert check.verified


def test_failure_midway_is_unknown_not_mismatch() -> None:
    check = judge(Observation(HOST, ("cdn.contoso.com",), failure="SERVFAIL"), TARGET)
    assert check.state is DomainState.UNKNOWN


UNKNOWN = judge(Observation(HOST, failure="timeout"), TARGET)
MISSING = judge(Observation(HOST), TARGET)
VERIFIED = verified(HOST, TARGET, (TARGET,))


def test_unknown_never_unverifies() -> None:
    merged = merge_checks(VERIFIED, UNKNOWN)
    assert merged.verified
    assert merged.reason is DomainReason.CNAME_VERIFIED
    assert "timeout" in merged.warning
    # and again: the warning is replaced, not accumulated
    assert merge_checks(merged, UNKNOWN).warning == merged.warning


def test_definite_misconfiguration_unverifies() -> None:
    assert merge_checks(VERIFIED, MISSING) == MISSING


def test_recovery_clears_warning() -> None:
    assert merge_checks(merge_checks(VERIFIED, UNKNOWN), VERIFIED).warning == ""


@pytest.mark.parametrize("previous", [None, MISSING, UNKNOWN])
def test_unknown_replaces_anything_but_verified(previous: object) -> None:
    assert merge_checks(previous, UNKNOWN) == UNKNOWN  # type: ignore[arg-type]


def test_verification_of_another_host_does_not_carry_over() -> None:
    other = verified("shop.contoso.com", TARGET)
    assert merge_checks(other, UNKNOWN) == UNKNOWN
    assert merge_checks(verified(HOST, "other.portals.example.net"), UNKNOWN) == UNKNOWN


def test_backoff_grows_and_caps() -> None:
    top = [recheck_delay(n, base=5, cap=600, rand=lambda: 0.999999) for n in range(12)]
    low = [recheck_delay(n, base=5, cap=600, rand=lambda: 0.0) for n in range(12)]
    assert top == sorted(top) and low == sorted(low)
    assert 4.9 < top[0] <= 5 and low[0] == 2.5
    assert max(top) <= 600 and top[-1] > 599 and low[-1] == 300
    assert recheck_delay(10_000, cap=600) <= 600  # no overflow for absurd attempts


def test_backoff_jitter_spreads() -> None:
    delays = {recheck_delay(3) for _ in range(50)}
    assert len(delays) > 40
    assert all(20 <= d <= 40 for d in delays)
    with pytest.raises(ValueError):
        recheck_delay(-1)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10.0.0.10", ("10.0.0.10", 53)),
        ("127.0.0.1:5353", ("127.0.0.1", 5353)),
        ("::1", ("::1", 53)),
        ("[::1]:5353", ("::1", 5353)),
        ("[2001:db8::1]", ("2001:db8::1", 53)),
    ],
)
def test_parse_nameserver(text: str, expected: tuple[str, int]) -> None:
    assert parse_nameserver(text) == expected


@pytest.mark.parametrize("text", ["dns.example.net", "1.2.3.4:0", "1.2.3.4:x", "[::1]x"])
def test_parse_nameserver_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_nameserver(text)


def test_settings_validate() -> None:
    with pytest.raises(ValueError):
        ResolverSettings(timeout=0)
    with pytest.raises(ValueError):
        ResolverSettings(port=70000)
    with pytest.raises(ValueError):
        ResolverSettings(nameservers=("resolver.local",))
