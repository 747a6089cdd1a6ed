"""`portico check-domain` and `portico inspect-cert`: the operator's own checks, run by hand.

Exit codes: 0 ready, 1 must be fixed, 3 DNS could not answer (try again).
Nothing secret is printed: no password, no key, no PEM.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import IO

import click

from portico.certificates import CertificateSummary, ConvertedCertificate, Rejection
from portico.certificates.isolation import CertificateWorkers
from portico.domain import (
    DomainState,
    ResolverSettings,
    judge,
    observe,
    ownership,
    parse_nameserver,
)

EXIT_FAILED = 1
EXIT_UNKNOWN = 3


def _nameserver(
    _ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]
) -> tuple[str, ...]:
    for value in values:
        try:
            parse_nameserver(value)
        except ValueError as error:
            raise click.BadParameter(f"{value!r} is not IP[:PORT] ({error})") from error
    return values


def _portal_token(
    host: str, portal: str, namespace: str, kubeconfig: str | None
) -> tuple[str, str]:
    """The token and target (from its status) of PORTAL, read from the cluster."""
    from portico.cli.portal import _kube, _portal  # a cluster client only when asked for

    obj = _portal(_kube(kubeconfig), namespace, portal)
    uid = str((obj.get("metadata") or {}).get("uid") or "")
    record = (obj.get("status") or {}).get("customDomain") or {}
    return ownership.token(uid, host), str(record.get("target") or "")


@click.command("check-domain")
@click.argument("host")
@click.option("--target", help="What HOST must point to: <subdomain>.<baseDomain>.")
@click.option(
    "--token",
    help="Also check the ownership TXT record _portico-challenge.HOST for this value "
    "(status.customDomain.ownership.value).",
)
@click.option(
    "--portal",
    help="Also check the ownership TXT record for this Portal's token (read from the "
    "cluster, with its status's target unless --target is given).",
)
@click.option("-n", "--namespace", default="default", show_default=True, help="With --portal.")
@click.option("--kubeconfig", envvar="KUBECONFIG", help="With --portal.")
@click.option(
    "--nameserver",
    "nameservers",
    multiple=True,
    metavar="IP[:PORT]",
    callback=_nameserver,
    help="DNS server to ask (repeatable; IPv6 with a port as [IP]:PORT); default: the "
    "system's. With --authoritative, a port shared by all also applies to the zone's servers.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0.1),
    default=5.0,
    show_default=True,
    help="Seconds to wait for DNS.",
)
@click.option(
    "--authoritative",
    is_flag=True,
    help="Ask the zone's own nameservers directly, bypassing resolver caches.",
)
def check_domain_command(
    host: str,
    target: str | None,
    token: str | None,
    portal: str | None,
    namespace: str,
    kubeconfig: str | None,
    nameservers: tuple[str, ...],
    timeout: float,
    authoritative: bool,
) -> None:
    """Check that HOST has a CNAME (directly or through a chain) to --target and, with
    --token or --portal, that _portico-challenge.HOST has the ownership TXT record.

    Exit 0 when verified, 1 when the DNS records must be fixed, 3 when DNS
    could not answer (try again).
    """
    if token and portal:
        raise click.UsageError("give --token or --portal, not both")
    if portal:
        token, found = _portal_token(host, portal, namespace, kubeconfig)
        target = target or found or None
    if not target:
        raise click.UsageError(
            "--target is required (the portal's status has no customDomain.target yet)"
            if portal
            else "--target is required"
        )
    # One port for every given server also reaches the zone's own servers in
    # --authoritative mode (a test server on a high port serves both roles).
    ports = {parse_nameserver(ns)[1] for ns in nameservers}
    settings = ResolverSettings(
        nameservers=nameservers,
        port=ports.pop() if len(ports) == 1 else 53,
        timeout=timeout,
        authoritative=authoritative,
    )
    seen = asyncio.run(observe(host, target, settings, challenge=bool(token)))
    results = [judge(seen, target)]
    click.echo(f"{results[0].host}: {results[0].state.value} ({results[0].reason.value})")
    click.echo(f"  {results[0].message}")
    if results[0].chain:
        click.echo(f"  CNAME chain: {' -> '.join((results[0].host, *results[0].chain))}")
    if seen.resolved:
        click.echo(f"  Addresses: {', '.join(seen.resolved)}")
    if token:
        proof = ownership.judge(seen, token)
        results.append(proof)
        name = ownership.challenge_name(host)
        click.echo(f"{name}: {proof.state.value} ({proof.reason.value})")
        click.echo(f"  {proof.message}")
        if proof.state is not DomainState.VERIFIED:
            click.echo(f"  Record to add: {ownership.record_line(host, token)}")
    for conflict in ownership.conflicts(seen, target, token):
        click.echo(f"  Conflict: {conflict}")
    states = {r.state for r in results}
    if DomainState.MISCONFIGURED in states:
        sys.exit(EXIT_FAILED)
    if DomainState.UNKNOWN in states:
        sys.exit(EXIT_UNKNOWN)


def _print_summary(summary: CertificateSummary) -> None:
    click.echo(f"  Subject:    {summary.subject}")
    click.echo(f"  Issuer:     {summary.issuer}")
    click.echo(f"  DNS names:  {', '.join(summary.dns_names) or '(none)'}")
    click.echo(
        f"  Valid:      {summary.not_before:%Y-%m-%d %H:%M} to "
        f"{summary.not_after:%Y-%m-%d %H:%M} UTC"
    )
    click.echo(f"  Signature:  {summary.signature_algorithm}")
    click.echo(f"  Public key: {summary.public_key}")
    click.echo(f"  SHA-256:    {summary.sha256_fingerprint}")


@click.command("inspect-cert")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--password-file",
    type=click.File("rb"),
    help="File holding the .pfx password ('-' for standard input).",
)
@click.option("--host", "hostname", help="Custom hostname the certificate must cover.")
@click.option(
    "--key",
    "key_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Check FILE as a PEM tls.crt with this tls.key instead of a .pfx.",
)
def inspect_cert_command(
    file: Path,
    password_file: IO[bytes] | None,
    hostname: str | None,
    key_file: Path | None,
) -> None:
    """Check a .pfx (or a PEM pair with --key) exactly as the operator would.

    Exit 0 when the certificate is usable, 1 when it is rejected. Like the
    operator, it opens the file in a worker process with CPU and time limits.
    """
    with CertificateWorkers(size=1) as workers:
        if key_file is not None:
            result = workers.check("pair", file.read_bytes(), key_file.read_bytes(), hostname)
        else:
            password = password_file.read() if password_file is not None else None
            result = workers.check("pfx", file.read_bytes(), password, hostname)
    if isinstance(result, Rejection):
        click.echo(f"{file.name}: rejected ({result.reason.value})")
        for problem in result.problems:
            click.echo(f"  {problem.reason.value}: {problem.message}")
        if result.summary is not None:
            _print_summary(result.summary)
        sys.exit(EXIT_FAILED)
    _report(file, result)


def _report(file: Path, result: ConvertedCertificate) -> None:
    chain = result.certificate_pem.count(b"-----BEGIN CERTIFICATE-----")
    click.echo(f"{file.name}: OK, ready for a kubernetes.io/tls Secret ({chain} in chain)")
    _print_summary(result.summary)
    click.echo(f"  Expires in: {result.days_left} days")
    if result.expiring_soon:
        click.echo(f"  Warning (CertificateExpiringSoon): {result.expiry_message}")
    for note in result.warnings:
        click.echo(f"  Note: {note}")
