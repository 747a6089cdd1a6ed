"""`portico restart`, `portico rotate-session-keys` and `portico status`: what a person does
and reads about one portal."""

from __future__ import annotations

import datetime
import sys
from typing import Any

import click

from portico.controller.act import Writer
from portico.controller.kube import ApiError, Kube, connect
from portico.core import names
from portico.core.progress import job_state


def _kube(kubeconfig: str | None) -> Kube:
    try:
        return Kube(connect(kubeconfig))
    except Exception as err:  # any config problem is one clear line
        click.echo(f"error: cannot load Kubernetes configuration: {err}", err=True)
        sys.exit(2)


def _portal(kube: Kube, namespace: str, name: str) -> dict[str, Any]:
    try:
        obj = kube.get("Portal", namespace, name)
    except ApiError as err:
        click.echo(f"error: {err}", err=True)
        sys.exit(2)
    if obj is None:
        click.echo(f"error: portal {namespace}/{name} not found", err=True)
        sys.exit(1)
    return obj


common = [
    click.argument("name"),
    click.option("-n", "--namespace", default="default", show_default=True),
    click.option("--kubeconfig", envvar="KUBECONFIG"),
]


def _with_common(f: Any) -> Any:
    for decorator in reversed(common):
        f = decorator(f)
    return f


@click.command("restart")
@_with_common
@click.option("--recheck", is_flag=True, help="Only re-check DNS, certificate and references.")
@click.option(
    "--site",
    is_flag=True,
    help="Roll the runtime's pods (no provisioning, no downtime) instead.",
)
def restart_command(
    name: str, namespace: str, kubeconfig: str | None, recheck: bool, site: bool
) -> None:
    """Restart provisioning of portal NAME with the same values (or just re-check it, or
    restart its site: new runtime pods)."""
    if recheck and site:
        click.echo("error: --recheck and --site ask for different things; give one", err=True)
        sys.exit(2)
    kube = _kube(kubeconfig)
    _portal(kube, namespace, name)
    value = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    key, what = names.RESTART, "restart"
    if recheck:
        key, what = names.RECHECK, "re-check"
    elif site:
        key, what = names.RESTART_SITE, "site restart"
    Writer(kube).annotate("Portal", namespace, name, {key: value})
    click.echo(f"portal {namespace}/{name}: {what} requested ({key}={value})")
    if site:
        click.echo(f"  status.lastHandledSiteRestart becomes {value} once the new pods serve")


@click.command("rotate-session-keys")
@_with_common
def rotate_session_keys_command(name: str, namespace: str, kubeconfig: str | None) -> None:
    """Give portal NAME a new session key; sessions signed with the one before stay valid."""
    kube = _kube(kubeconfig)
    _portal(kube, namespace, name)
    value = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    Writer(kube).annotate("Portal", namespace, name, {names.ROTATE_SESSION_KEYS: value})
    click.echo(
        f"portal {namespace}/{name}: session key rotation requested "
        f"({names.ROTATE_SESSION_KEYS}={value}); status.lastHandledSessionKeysRotation "
        "says when it is done"
    )


def _child_state(kind: str, obj: dict[str, Any]) -> str:
    status = obj.get("status") or {}
    if kind == "Deployment":
        return f"{status.get('availableReplicas', 0)}/{obj['spec'].get('replicas', 0)} available"
    if kind == "Job":
        state, why = job_state(obj)
        return f"{state or 'Pending'}{': ' + why if why else ''}"
    if kind == "Ingress":
        return ", ".join(r.get("host", "") for r in obj["spec"].get("rules", ()))
    return "present"


def _custom_domain(record: dict[str, Any]) -> None:
    """What the custom host resolves to, and the ownership record while it is not verified."""
    if not record:
        return
    if record.get("chain") or record.get("addresses"):
        chain = " -> ".join((record.get("hostname", ""), *record.get("chain", ())))
        click.echo(
            f"  DNS:       {chain} ({', '.join(record.get('addresses', ())) or 'no address'})"
        )
    own = record.get("ownership") or {}
    if own and own.get("state") != "Verified":
        need = "required" if own.get("required") else "optional"
        click.echo(f'  Add TXT:   {own.get("name")} "{own.get("value")}" ({need})')
    for conflict in record.get("conflicts") or ():
        click.echo(f"  Conflict:  {conflict}")


@click.command("status")
@_with_common
def status_command(name: str, namespace: str, kubeconfig: str | None) -> None:
    """Show portal NAME: phase, conditions, children and recent events in one view."""
    kube = _kube(kubeconfig)
    obj = _portal(kube, namespace, name)
    status = obj.get("status") or {}
    spec = obj["spec"]
    click.echo(f"Portal {namespace}/{name}: {status.get('phase', 'Pending')}")
    click.echo(f"  URL:       {status.get('url', '-')}")
    if status.get("customDomainUrl"):
        click.echo(f"  Custom:    {status['customDomainUrl']}")
    _custom_domain(status.get("customDomain") or {})
    click.echo(f"  Type:      {spec.get('type')}   Template: {spec.get('template')}")
    maintenance = "on" if (spec.get("maintenance") or {}).get("enabled") else "off"
    click.echo(f"  State:     {spec.get('state', 'Running')}   Maintenance: {maintenance}")
    prov = status.get("provisioning") or {}
    if prov:
        click.echo(
            f"  Attempt:   {prov.get('attempt')} ({prov.get('state')}, Job {prov.get('job')})"
        )
    click.echo("Conditions:")
    for c in status.get("conditions") or ():
        click.echo(
            f"  {c['type']:<21} {c['status']:<7} {c.get('reason', ''):<22} {c.get('message', '')}"
        )
    click.echo("Children:")
    selector = f"{names.PORTAL_LABEL}={name}"
    for kind in names.CHILD_KINDS:
        for child in kube.list(kind, namespace, selector):
            click.echo(f"  {kind:<12} {child['metadata']['name']:<40} {_child_state(kind, child)}")
    events = [
        e
        for e in kube.list("Event", namespace)
        if (e.get("involvedObject") or {}).get("uid") == obj["metadata"]["uid"]
    ]
    events.sort(key=lambda e: e.get("lastTimestamp") or "")
    click.echo("Events:")
    for e in events[-10:]:
        click.echo(
            f"  {e.get('lastTimestamp', '')} {e.get('type', ''):<8} {e.get('reason', ''):<20} "
            f"{e.get('message', '')}"
        )
