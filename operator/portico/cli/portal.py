"""`portico restart`, `portico rotate-session-keys` and `portico status`: what a person does
and reads about one portal."""

from __future__ import annotations

import datetime
import json
import sys
from typing import Any

import click
import kubernetes
import yaml

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


def resolve_namespace(namespace: str | None, kubeconfig: str | None) -> str:
    """-n when given, else the kubeconfig context's namespace (as kubectl does), else
    `default`."""
    if namespace:
        return namespace
    try:
        _, current = kubernetes.config.list_kube_config_contexts(config_file=kubeconfig)  # type: ignore[no-untyped-call]
    except Exception:  # no kubeconfig (in a pod): the default, as kubectl has it
        return "default"
    return str((current or {}).get("context", {}).get("namespace") or "default")


common = [
    click.argument("name"),
    click.option(
        "-n",
        "--namespace",
        help="The portal's namespace (default: the kubeconfig context's, else default).",
    ),
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
    name: str, namespace: str | None, kubeconfig: str | None, recheck: bool, site: bool
) -> None:
    """Restart provisioning of portal NAME with the same values (or just re-check it, or
    restart its site: new runtime pods)."""
    if recheck and site:
        click.echo("error: --recheck and --site ask for different things; give one", err=True)
        sys.exit(2)
    namespace = resolve_namespace(namespace, kubeconfig)
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
def rotate_session_keys_command(name: str, namespace: str | None, kubeconfig: str | None) -> None:
    """Give portal NAME a new session key; sessions signed with the one before stay valid."""
    namespace = resolve_namespace(namespace, kubeconfig)
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


def status_view(kube: Kube, obj: dict[str, Any]) -> dict[str, Any]:
    """What `portico status` shows, as data: `-o json|yaml` prints it, the table reads it."""
    meta, spec, status = obj["metadata"], obj["spec"], obj.get("status") or {}
    name, namespace = meta["name"], meta["namespace"]
    selector = f"{names.PORTAL_LABEL}={name}"
    children = [
        {"kind": kind, "name": child["metadata"]["name"], "state": _child_state(kind, child)}
        for kind in names.CHILD_KINDS
        for child in kube.list(kind, namespace, selector)
    ]
    events = [
        e
        for e in kube.list("Event", namespace)
        if (e.get("involvedObject") or {}).get("uid") == meta["uid"]
    ]
    events.sort(key=lambda e: e.get("lastTimestamp") or "")
    return {
        "portal": f"{namespace}/{name}",
        "phase": status.get("phase", "Pending"),
        "url": status.get("url"),
        "customDomainUrl": status.get("customDomainUrl"),
        "customDomain": status.get("customDomain") or {},
        "type": spec.get("type"),
        "template": spec.get("template"),
        "state": spec.get("state", "Running"),
        "maintenance": bool((spec.get("maintenance") or {}).get("enabled")),
        "provisioning": status.get("provisioning") or {},
        "conditions": [
            {k: c.get(k, "") for k in ("type", "status", "reason", "message")}
            for c in status.get("conditions") or ()
        ],
        "children": children,
        "events": [
            {k: e.get(k, "") for k in ("lastTimestamp", "type", "reason", "message")}
            for e in events[-10:]
        ],
    }


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
@click.option(
    "-o", "--output", type=click.Choice(["table", "json", "yaml"]), default="table",
    show_default=True,
)  # fmt: skip
def status_command(name: str, namespace: str | None, kubeconfig: str | None, output: str) -> None:
    """Show portal NAME: phase, conditions, children and recent events in one view."""
    namespace = resolve_namespace(namespace, kubeconfig)
    kube = _kube(kubeconfig)
    view = status_view(kube, _portal(kube, namespace, name))
    if output == "json":
        click.echo(json.dumps(view, indent=2))
        return
    if output == "yaml":
        click.echo(yaml.safe_dump(view, sort_keys=False), nl=False)
        return
    click.echo(f"Portal {view['portal']}: {view['phase']}")
    click.echo(f"  URL:       {view['url'] or '-'}")
    if view["customDomainUrl"]:
        click.echo(f"  Custom:    {view['customDomainUrl']}")
    _custom_domain(view["customDomain"])
    click.echo(f"  Type:      {view['type']}   Template: {view['template']}")
    maintenance = "on" if view["maintenance"] else "off"
    click.echo(f"  State:     {view['state']}   Maintenance: {maintenance}")
    prov = view["provisioning"]
    if prov:
        click.echo(
            f"  Attempt:   {prov.get('attempt')} ({prov.get('state')}, Job {prov.get('job')})"
        )
    click.echo("Conditions:")
    for c in view["conditions"]:
        click.echo(f"  {c['type']:<21} {c['status']:<7} {c['reason']:<22} {c['message']}")
    click.echo("Children:")
    for child in view["children"]:
        click.echo(f"  {child['kind']:<12} {child['name']:<40} {child['state']}")
    click.echo("Events:")
    for e in view["events"]:
        click.echo(f"  {e['lastTimestamp']} {e['type']:<8} {e['reason']:<20} {e['message']}")
