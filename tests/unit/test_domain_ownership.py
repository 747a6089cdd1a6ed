"""The ownership TXT record: token, verdict and conflicts (pure), then the resolver and
`portico check-domain` against the real DNS server on loopback."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from click.testing import CliRunner

from portico.cli import main
from portico.domain import DomainReason, DomainState, Observation, judge, observe, ownership
from tests.support.dnsserver import AuthoritativeDNS

HOST = "support.contoso.test"
TARGET = "contoso-support.portals.test"
PLATFORM = ["contoso-support IN A 192.0.2.44"]
UID = "3f1c2a9e-6a51-4c1e-9a55-0d4c1b7e2f10"
TOKEN = ownership.token(UID, HOST)


# --- the token ------------------------------------------------------------------------


def test_token_is_bound_to_the_uid_and_the_host() -> None:
    assert TOKEN.startswith(ownership.TOKEN_PREFIX)
    assert ownership.token(UID, HOST) == TOKEN  # stable: the operator recomputes it
    assert ownership.token(UID, "Support.Contoso.Test.") == TOKEN  # DNS names' spelling
    assert ownership.token(UID, "www.contoso.test") != TOKEN  # a changed host: a new record
    # Another portal (any name, any namespace) has another UID: it cannot present TOKEN.
    assert ownership.token(str(uuid.uuid4()), HOST) != TOKEN


def test_the_token_does_not_come_from_name_or_namespace() -> None:
    """Nothing but the UID and host goes in: a contender naming its portal like the owner's
    (or knowing its namespace) still gets another token."""
    assert ownership.token("uid-a", HOST) != ownership.token("uid-b", HOST)
    with pytest.raises(ValueError):
        ownership.token("", HOST)


def test_the_record_to_add() -> None:
    assert ownership.challenge_name("Support.Contoso.Test.") == f"_portico-challenge.{HOST}"
    assert ownership.record_line(HOST, TOKEN) == f'_portico-challenge.{HOST}. TXT "{TOKEN}"'


# --- the verdict: three states ------------------------------------------------------


def test_the_token_among_other_values_is_verified() -> None:
    seen = Observation(HOST, challenge=("v=spf1 -all", TOKEN))
    result = ownership.judge(seen, TOKEN)
    assert (result.state, result.reason) == (
        DomainState.VERIFIED,
        DomainReason.OWNERSHIP_VERIFIED,
    )


def test_no_record_asks_for_it() -> None:
    result = ownership.judge(Observation(HOST, challenge=()), TOKEN)
    assert (result.state, result.reason) == (
        DomainState.MISCONFIGURED,
        DomainReason.OWNERSHIP_UNVERIFIED,
    )
    assert result.message.startswith(
        f'Please add a TXT record _portico-challenge.{HOST} with the value "{TOKEN}"'
    )


def test_a_wrong_token_is_unverified_and_named() -> None:
    other = ownership.token("someone-else", HOST)
    result = ownership.judge(Observation(HOST, challenge=(other,)), TOKEN)
    assert result.reason is DomainReason.OWNERSHIP_UNVERIFIED
    assert other in result.message and "not this portal's token" in result.message


def test_a_dns_fault_is_unknown_never_unverified() -> None:
    seen = Observation(HOST, challenge=None, challenge_failure="no nameserver answered")
    result = ownership.judge(seen, TOKEN)
    assert (result.state, result.reason) == (DomainState.UNKNOWN, DomainReason.DNS_UNAVAILABLE)
    assert "no nameserver answered" in result.message


# --- conflicts ------------------------------------------------------------------------


def test_nothing_conflicts_in_a_clean_setup() -> None:
    seen = Observation(HOST, chain=(TARGET,), resolved=("192.0.2.1",), challenge=(TOKEN,))
    assert ownership.conflicts(seen, TARGET, TOKEN) == ()


def test_an_address_beside_the_cname() -> None:
    seen = Observation(HOST, chain=(TARGET,), addresses=("192.0.2.7",), challenge=(TOKEN,))
    (conflict,) = ownership.conflicts(seen, TARGET, TOKEN)
    assert "192.0.2.7" in conflict and "beside its CNAME" in conflict


def test_a_chain_that_leaves_the_target() -> None:
    seen = Observation(HOST, chain=("cdn.example.net", "edge.example.net"), challenge=())
    (conflict,) = ownership.conflicts(seen, TARGET, TOKEN)
    assert "ends at edge.example.net" in conflict and TARGET in conflict


def test_a_looping_chain() -> None:
    seen = Observation(HOST, chain=("a.contoso.test", "b.contoso.test", "a.contoso.test"))
    (conflict,) = ownership.conflicts(seen, TARGET, TOKEN)
    assert "loops" in conflict


def test_a_stale_challenge() -> None:
    stale = ownership.token("the-deleted-portal", HOST)
    seen = Observation(HOST, chain=(TARGET,), challenge=(stale, TOKEN, "unrelated"))
    (conflict,) = ownership.conflicts(seen, TARGET, TOKEN)
    assert stale in conflict and "stale" in conflict and "unrelated" not in conflict


def test_an_incomplete_lookup_proves_no_conflict() -> None:
    seen = Observation(HOST, chain=("elsewhere.example.net",), failure="timed out")
    assert ownership.conflicts(seen, TARGET, TOKEN) == ()


# --- against the real DNS server --------------------------------------------------------


@pytest.mark.parametrize("authoritative", [False, True], ids=["resolver", "authoritative"])
def test_one_lookup_reads_chain_addresses_and_the_record(
    zones: AuthoritativeDNS, authoritative: bool
) -> None:
    zones.set_zone(
        "contoso.test",
        [f"support IN CNAME {TARGET}.", f'_portico-challenge.support IN TXT "{TOKEN}"'],
    )
    settings = zones.settings(authoritative=authoritative)
    seen = asyncio.run(observe(HOST, TARGET, settings, challenge=True))
    assert seen.chain == (TARGET,) and seen.resolved == ("192.0.2.44",)
    assert seen.challenge == (TOKEN,)
    assert judge(seen, TARGET).verified and ownership.judge(seen, TOKEN).verified


def test_a_missing_record_and_a_delegated_one(zones: AuthoritativeDNS) -> None:
    zones.set_zone("contoso.test", [f"support IN CNAME {TARGET}."])
    seen = asyncio.run(observe(HOST, TARGET, zones.settings(), challenge=True))
    assert seen.challenge == () and seen.challenge_failure is None
    assert ownership.judge(seen, TOKEN).reason is DomainReason.OWNERSHIP_UNVERIFIED
    # Delegated by CNAME, as ACME challenges often are: the value at its end counts.
    zones.set_zone(
        "contoso.test",
        [
            f"support IN CNAME {TARGET}.",
            "_portico-challenge.support IN CNAME proofs.contoso.test.",
            f'proofs IN TXT "{TOKEN}"',
        ],
    )
    seen = asyncio.run(observe(HOST, TARGET, zones.settings(), challenge=True))
    assert ownership.judge(seen, TOKEN).verified


def test_a_stopped_server_is_unknown_for_both(zones: AuthoritativeDNS) -> None:
    zones.set_zone("contoso.test", [f"support IN CNAME {TARGET}."])
    zones.stop()
    try:
        seen = asyncio.run(observe(HOST, TARGET, zones.settings(timeout=0.5), challenge=True))
    finally:
        zones.start()
    assert seen.failure and seen.challenge_failure and seen.challenge is None
    assert ownership.judge(seen, TOKEN).state is DomainState.UNKNOWN


def run(server: AuthoritativeDNS, *args: str) -> tuple[int, str]:
    ns = f"{server.address}:{server.port}"
    result = CliRunner().invoke(main, ["check-domain", *args, "--nameserver", ns])
    return result.exit_code, result.output


def test_check_domain_checks_the_record_with_a_token(zones: AuthoritativeDNS) -> None:
    stale = ownership.token("the-deleted-portal", HOST)
    zones.set_zone(
        "contoso.test",
        [f"support IN CNAME {TARGET}.", f'_portico-challenge.support IN TXT "{stale}"'],
    )
    code, out = run(zones, HOST, "--target", TARGET, "--token", TOKEN)
    assert code == 1, out
    assert "OwnershipUnverified" in out
    assert f'Record to add: _portico-challenge.{HOST}. TXT "{TOKEN}"' in out
    assert "Conflict:" in out and "stale challenge" in out
    zones.set_zone(
        "contoso.test",
        [f"support IN CNAME {TARGET}.", f'_portico-challenge.support IN TXT "{TOKEN}"'],
    )
    code, out = run(zones, HOST, "--target", TARGET, "--token", TOKEN)
    assert code == 0, out
    assert "Verified (OwnershipVerified)" in out and "Addresses: 192.0.2.44" in out
    code, out = run(zones, HOST, "--target", TARGET, "--token", ownership.token("x", HOST))
    assert code == 1 and "not this portal's token" in out


def test_check_domain_needs_a_target_or_a_portal() -> None:
    result = CliRunner().invoke(main, ["check-domain", HOST, "--token", TOKEN])
    assert result.exit_code == 2 and "--target is required" in result.output


def test_portico_status_shows_the_record_to_add(capsys: pytest.CaptureFixture[str]) -> None:
    from portico.cli.portal import _custom_domain

    stale = ownership.token("x", HOST)
    _custom_domain(
        {
            "hostname": HOST,
            "chain": [TARGET],
            "addresses": ["192.0.2.44"],
            "conflicts": [f"_portico-challenge.{HOST} holds a token ... ({stale})"],
            "ownership": {
                "name": f"_portico-challenge.{HOST}",
                "value": TOKEN,
                "required": True,
                "state": "Misconfigured",
            },
        }
    )
    out = capsys.readouterr().out
    assert f"{HOST} -> {TARGET} (192.0.2.44)" in out
    assert f'Add TXT:   _portico-challenge.{HOST} "{TOKEN}" (required)' in out
    assert stale in out
