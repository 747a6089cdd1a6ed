"""`portico doctor`: the site checker. Every check the operator makes (read from the
Portal's conditions) plus live ones, each a Finding with its category, result and fix.

This module only gathers (the API server's objects, DNS, the probes of cli/probes.py);
the verdicts are pure (core/doctor.py, core/doctor_live.py). Exit 1 on any error.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import sys
import urllib.parse
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import click

from portico import domain
from portico.cli import probes
from portico.cli.domain import _nameserver
from portico.cli.portal import _kube, _portal, _with_common, resolve_namespace
from portico.controller.kube import ApiError, Kube
from portico.core import doctor, doctor_live, names
from portico.settings import Settings, SettingsError

# Kinds whose Events speak about the portal (with the Portal itself).
EVENT_KINDS = ("Deployment", "Pod", "Job", "Ingress", "Service", "Certificate")


def _resolvers(nameservers: tuple[str, ...], timeout: float | None) -> domain.ResolverSettings:
    """The operator's resolver settings (PORTICO_DNS_*, as the operator reads them) unless
    --nameserver names others; neither: the system's resolvers."""
    try:
        settings = Settings.from_env()
        configured = domain.ResolverSettings(
            settings.dns_nameservers,
            settings.dns_port,
            settings.dns_timeout,
            settings.dns_authoritative,
        )
    except (SettingsError, ValueError):
        configured = domain.ResolverSettings()
    if nameservers:
        ports = {domain.parse_nameserver(ns)[1] for ns in nameservers}
        configured = domain.ResolverSettings(
            nameservers,
            ports.pop() if len(ports) == 1 else 53,
            configured.timeout,
            configured.authoritative,
        )
    if timeout is not None:
        configured = domain.ResolverSettings(
            configured.nameservers, configured.port, timeout, configured.authoritative
        )
    return configured


def _host(url: str) -> str:
    return urllib.parse.urlsplit(url).hostname or ""


def check_dns(portal: dict[str, Any], resolvers: domain.ResolverSettings) -> doctor.Finding | None:
    custom = (portal.get("spec") or {}).get("customDomain") or {}
    target = _host((portal.get("status") or {}).get("url", ""))
    if not custom.get("hostname") or not target:
        return None
    observation = asyncio.run(domain.observe(custom["hostname"], target, resolvers))
    asked = ", ".join(resolvers.nameservers) or "the system's resolvers"
    return doctor_live.dns(domain.judge(observation, target), asked)


def check_urls(
    portal: dict[str, Any], ingress_address: str, now: datetime.datetime
) -> Iterator[doctor.Finding]:
    status = portal.get("status") or {}
    custom = status.get("customDomainUrl")
    for url in (status.get("url"), custom):
        if not url:
            continue
        reach = probes.fetch(url, ingress_address)
        yield doctor_live.url(url, portal, reach)
        if status.get("phase") == "Deprovisioned" or reach.status is None:
            continue
        if url.startswith("https://"):
            bound = status.get("certificate") if url == custom else None
            yield doctor_live.served_certificate(_host(url), reach.certificate, bound, now)


def check_instance(kube: Kube, portal: dict[str, Any]) -> list[doctor.Finding]:
    name = ((portal.get("spec") or {}).get("instanceRef") or {}).get("name", "")
    obj = kube.get("PortalInstance", None, name)
    url = ((obj or {}).get("spec") or {}).get("url")
    reach = probes.fetch(url) if url else None
    return doctor.instance(name, obj, reach)


def check_endpoints(kube: Kube, portal: dict[str, Any]) -> doctor.Finding:
    meta = portal["metadata"]
    service = names.runtime_name(meta["name"])
    slices = kube.list("EndpointSlice", meta["namespace"], f"kubernetes.io/service-name={service}")
    return doctor.endpoints(portal, slices)


def check_events(
    kube: Kube, portal: dict[str, Any], now: datetime.datetime
) -> list[doctor.Finding]:
    meta = portal["metadata"]
    uids = {meta["uid"]}
    selector = f"{names.PORTAL_LABEL}={meta['name']}"
    for kind in EVENT_KINDS:
        uids |= {c["metadata"]["uid"] for c in kube.list(kind, meta["namespace"], selector)}
    return doctor.recent_warnings(kube.each("Event", meta["namespace"]), uids, now)


def check_hub(kube: Kube, portal: dict[str, Any]) -> doctor.Finding | None:
    hub = ((portal.get("spec") or {}).get("analytics") or {}).get("customerInsights")
    if not hub:
        return None
    meta = portal["metadata"]
    selector = ",".join(f"{k}={v}" for k, v in names.runtime_selector(meta["name"]).items())
    counts: dict[str, dict[str, float]] = {}
    unread: dict[str, str] = {}
    for pod in kube.list("Pod", meta["namespace"], selector):
        pod_name = pod["metadata"]["name"]
        if (pod.get("status") or {}).get("phase") != "Running":
            continue
        try:
            counts[pod_name] = doctor_live.hub_counts(
                probes.pod_metrics(kube, meta["namespace"], pod_name)
            )
        except probes.ProbeError as err:
            unread[pod_name] = str(err)
        except ValueError:  # not the Prometheus text format: something else on the port
            unread[pod_name] = "its /metrics is not in the Prometheus text format"
    return doctor_live.hub(str(hub.get("hubUri", "")), counts, unread)


def _guarded(category: str, check: Callable[[], Iterable[doctor.Finding]]) -> list[doctor.Finding]:
    """One check's findings; a read the API server refuses (RBAC, say) is a warning that
    names it, and the other checks still run."""
    try:
        return list(check())
    except ApiError as err:
        return [
            doctor.Finding(
                category,
                "API server",
                doctor.Result.WARNING,
                f"could not read what this check needs: {err}",
                "Ask for read access to the portal's namespace (and PortalInstances), "
                "then run again",
            )
        ]


def diagnose(
    kube: Kube,
    portal: dict[str, Any],
    resolvers: domain.ResolverSettings,
    ingress_address: str = "",
) -> list[doctor.Finding]:
    """Every check, in the order a person reads them: what the operator found, then live."""
    now = datetime.datetime.now(datetime.UTC)
    found = doctor.conditions(portal)
    found += _guarded("Instance", lambda: check_instance(kube, portal))
    found += _guarded("Runtime", lambda: [check_endpoints(kube, portal)])
    found += [f for f in (check_dns(portal, resolvers),) if f]
    found += check_urls(portal, ingress_address, now)
    found += _guarded("Analytics", lambda: [f for f in (check_hub(kube, portal),) if f])
    found += _guarded("Events", lambda: check_events(kube, portal, now))
    return found


MARKS = {doctor.Result.PASS: "pass", doctor.Result.WARNING: "WARNING", doctor.Result.ERROR: "ERROR"}


def _table(portal: str, findings: list[doctor.Finding]) -> None:
    width = min(32, max(len(f.check) for f in findings))  # a longer one overflows its row
    click.echo(f"Portal {portal}")
    click.echo(f"  {'CATEGORY':<12} {'CHECK':<{width}} {'RESULT':<8} DETAIL")
    for f in findings:
        click.echo(f"  {f.category:<12} {f.check:<{width}} {MARKS[f.result]:<8} {f.message}")
        if f.result is not doctor.Result.PASS and f.fix:
            click.echo(f"  {'':<12} {'':<{width}} {'':<8} fix: {f.fix}")
    errors = sum(f.result is doctor.Result.ERROR for f in findings)
    warnings = sum(f.result is doctor.Result.WARNING for f in findings)
    click.echo(f"{len(findings)} checks: {errors} error(s), {warnings} warning(s)")


@click.command("doctor")
@_with_common
@click.option(
    "-o", "--output", type=click.Choice(["table", "json"]), default="table", show_default=True
)
@click.option(
    "--nameserver",
    "nameservers",
    multiple=True,
    metavar="IP[:PORT]",
    callback=_nameserver,
    help="DNS server for the custom domain's check (repeatable); default: the operator's "
    "(PORTICO_DNS_NAMESERVERS), else the system's.",
)
@click.option("--dns-timeout", type=click.FloatRange(min=0.1), help="Seconds to wait for DNS.")
@click.option(
    "--ingress-address",
    metavar="IP[:PORT]",
    default="",
    help="Send the URL checks to this address (an ingress controller) instead of the "
    "host's own addresses; the host still goes in SNI and Host.",
)
def doctor_command(
    name: str,
    namespace: str | None,
    kubeconfig: str | None,
    output: str,
    nameservers: tuple[str, ...],
    dns_timeout: float | None,
    ingress_address: str,
) -> None:
    """Check portal NAME: the operator's checks, its URL, certificate, DNS, endpoints,
    instance, hub and recent Warning Events, each with a fix. Exit 1 on any error."""
    if ingress_address:
        try:
            domain.parse_nameserver(ingress_address)
        except ValueError as err:
            raise click.BadParameter(f"{ingress_address!r}: {err}") from None
    namespace = resolve_namespace(namespace, kubeconfig)
    kube = _kube(kubeconfig)
    portal = _portal(kube, namespace, name)
    findings = diagnose(kube, portal, _resolvers(nameservers, dns_timeout), ingress_address)
    if output == "json":
        worst = max((f.result for f in findings), key=list(doctor.Result).index)
        body = {
            "portal": f"{namespace}/{name}",
            "result": worst.value,
            "checks": [f.as_dict() for f in findings],
        }
        click.echo(json.dumps(body, indent=2))
    else:
        _table(f"{namespace}/{name}", findings)
    sys.exit(doctor.exit_code(findings))
