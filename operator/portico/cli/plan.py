"""`portico plan`: offline admission and the operator's own decision, with no cluster.

For every Portal: the CRD's schema, then its CEL rules, then the cross-checks
against the PortalInstances (and Namespaces) in the same files. The children of
a valid portal are what `core.decide.decide()` writes for it from its creation to
Ready, in a world built from the files (offline.py); they go to stdout, one line
per problem to stderr.
"""

from __future__ import annotations

import datetime
import json
import sys
from dataclasses import dataclass, field
from typing import Any, TextIO

import click
import yaml

from portico import domain
from portico.api import crds, model, validation
from portico.cli import offline
from portico.core import names, references
from portico.settings import Settings

KINDS = ("Portal", "PortalInstance", "PortalInvitation", "Namespace")


class InputError(Exception):
    """Input that is not a set of Portico objects at all (exit 2)."""


@dataclass
class Documents:
    portals: list[dict[str, Any]] = field(default_factory=list)
    instances: list[dict[str, Any]] = field(default_factory=list)
    invitations: list[dict[str, Any]] = field(default_factory=list)
    namespace_labels: dict[str, dict[str, str]] = field(default_factory=dict)


def _read(name: str, stdin: TextIO) -> str:
    if name == "-":
        return stdin.read()
    try:
        with open(name, encoding="utf-8") as handle:
            return handle.read()
    except OSError as err:
        raise InputError(f"{name}: cannot read: {err.strerror or err}") from None
    except UnicodeDecodeError:
        raise InputError(f"{name}: not a text file") from None


def load(names: list[str], stdin: TextIO | None = None) -> Documents:
    docs = Documents()
    stdin = stdin or sys.stdin  # looked up per call: click swaps it in tests
    for name in names:
        try:
            parsed = [d for d in yaml.safe_load_all(_read(name, stdin)) if d is not None]
        except yaml.YAMLError as err:
            mark = getattr(err, "problem_mark", None)
            where = f" (line {mark.line + 1})" if mark else ""
            raise InputError(f"{name}: not valid YAML{where}") from None
        for index, doc in enumerate(parsed, 1):
            kind = doc.get("kind") if isinstance(doc, dict) else None
            where = f"{name}: document {index}"
            if kind not in KINDS:
                raise InputError(f"{where}: kind {kind!r} is not one of {', '.join(KINDS)}")
            if kind == "Namespace":
                meta = doc.get("metadata") or {}
                docs.namespace_labels[str(meta.get("name"))] = dict(meta.get("labels") or {})
                continue
            if doc.get("apiVersion") != crds.API_VERSION:
                raise InputError(
                    f"{where}: apiVersion {doc.get('apiVersion')!r} of a {kind} must be "
                    f"{crds.API_VERSION}"
                )
            if not isinstance(doc.get("metadata"), dict) or not doc["metadata"].get("name"):
                raise InputError(f"{where}: {kind} has no metadata.name")
            {"Portal": docs.portals, "PortalInstance": docs.instances}.get(
                kind, docs.invitations
            ).append(doc)
    return docs


@dataclass
class Verdict:
    label: str
    problems: list[str]
    children: list[dict[str, Any]]
    # (kind, name) → what the operator fills in from the cluster when it applies the child
    notes: dict[tuple[str, str], str] = field(default_factory=dict)
    # Admitted, but worth a second look (printed, never a non-zero exit).
    warnings: list[str] = field(default_factory=list)


def notes_for(
    portal: model.Portal, instance: model.PortalInstance | None, settings: Settings
) -> dict[tuple[str, str], str]:
    """(kind, name) → what the operator fills in from the cluster when it applies the child."""
    cd = portal.custom_domain
    notes: dict[tuple[str, str], str] = {}
    keys = (
        "; keys: a random session key drawn when applied (never rendered offline), a new "
        f"{names.ROTATE_SESSION_KEYS} value adds a new one and keeps the previous"
    )
    if instance is not None:
        ns, secret = instance.credentials
        notes[("Secret", names.instance_secret_name(portal.name))] = (
            f"token: minted for this portal alone by PortalInstance {instance.name} when "
            f"applied (ca.crt copied from Secret {ns}/{secret} if it has one){keys}"
        )
    else:
        notes[("Secret", names.instance_secret_name(portal.name))] = (
            f"token: minted for this portal alone by its PortalInstance when applied{keys}"
        )
    notes[("Deployment", names.runtime_name(portal.name))] = (
        "pod annotation portico.dev/secrets-checksum follows the mounted Secrets' versions"
    )
    if cd:
        notes[("Ingress", names.runtime_name(portal.name))] = (
            f"host {cd.hostname} is added once its CNAME is verified"
            + (
                f" and TXT record {domain.ownership.challenge_name(cd.hostname)} holds the "
                "portal's token (shown in status.customDomain.ownership once created)"
                if settings.domain_ownership == "Required"
                else ""
            )
        )
    if cd and cd.pfx:
        notes[("Secret", names.tls_secret_name(portal.name))] = (
            f"converted from the .pfx in Secret {cd.pfx.name} at run time (not rendered offline)"
        )
    if portal.additional_languages:
        notes[("Job", names.translations_job_name(portal.name, 1))] = (
            "runs after provisioning succeeds"
        )
    notes[("Ingress", names.runtime_name(portal.name))] = (
        notes.get(("Ingress", names.runtime_name(portal.name)), "")
        + ("; " if cd else "")
        + "created once the runtime serves (Ready); until then the page server answers"
    )
    return notes


def planned(
    raw: dict[str, Any],
    portal: model.Portal,
    instance: model.PortalInstance | None,
    namespace_labels: dict[str, str] | None,
    settings: Settings,
) -> tuple[list[dict[str, Any]], dict[tuple[str, str], str]]:
    """Every child the operator applies to bring the portal to Ready, as decide() plans
    them (offline.py), and what comes from the cluster."""
    linked = instance or offline.assumed_instance(portal)
    now = datetime.datetime.now(datetime.UTC)
    children = offline.lifecycle(raw, portal, linked, namespace_labels, settings, now)
    return children, notes_for(portal, instance, settings)


def insecure_warning(instance: model.PortalInstance) -> str:
    if not instance.insecure:
        return ""
    return (
        "spec.insecure is true: linked portals send their instance token over plain "
        f"http to {instance.url}; use it for a test instance only"
    )


def evaluate(docs: Documents, settings: Settings) -> list[Verdict]:
    verdicts = []
    instances: dict[str, model.PortalInstance] = {}
    for raw in docs.instances:
        label = f"portalinstance/{raw['metadata']['name']}"
        defaulted, instance_problems = validation.admit("PortalInstance", raw)
        if instance_problems:
            verdicts.append(Verdict(label, [f"{label}: {p}" for p in instance_problems], []))
        else:
            instance = model.parse_instance(defaulted)
            instances[instance.name] = instance
            if warning := insecure_warning(instance):
                verdicts.append(Verdict(label, [], [], warnings=[f"{label}: {warning}"]))
    for raw in docs.portals:
        raw.setdefault("metadata", {}).setdefault("namespace", "default")
        label = f"{raw['metadata']['namespace']}/{raw['metadata']['name']}"
        defaulted, field_problems = validation.admit("Portal", raw)
        if field_problems:
            verdicts.append(Verdict(label, [f"{label}: {p}" for p in field_problems], []))
            continue
        portal = model.parse_portal(defaulted)
        linked = instances.get(portal.instance)
        if linked or docs.instances:
            problems = references.check_all(
                portal, linked, docs.namespace_labels.get(portal.namespace), settings.base_domain
            )
        else:
            problems = references.check_hostname(portal, settings.base_domain)
        lines = [str(p) for p in problems]
        children: list[dict[str, Any]] = []
        notes: dict[tuple[str, str], str] = {}
        if not problems:
            labels = docs.namespace_labels.get(portal.namespace)
            try:
                children, notes = planned(defaulted, portal, linked, labels, settings)
            except offline.NotReady as err:
                lines = [str(err)]
        verdicts.append(Verdict(label, [f"{label}: {line}" for line in lines], children, notes))
    verdicts.extend(_invitation(raw, docs) for raw in docs.invitations)
    return verdicts


def _invitation(raw: dict[str, Any], docs: Documents) -> Verdict:
    """A PortalInvitation: admitted like the API server would, its portal looked for among
    the files' Portals (when there are any), and the link Secret it makes (delivery None)."""
    raw.setdefault("metadata", {}).setdefault("namespace", "default")
    meta = raw["metadata"]
    label = f"{meta['namespace']}/portalinvitation/{meta['name']}"
    defaulted, field_problems = validation.admit("PortalInvitation", raw)
    if field_problems:
        return Verdict(label, [f"{label}: {p}" for p in field_problems], [])
    invitation = model.parse_invitation(defaulted)
    portals = {
        (p["metadata"].get("namespace", "default"), p["metadata"]["name"]) for p in docs.portals
    }
    if docs.portals and (invitation.namespace, invitation.portal) not in portals:
        problem = (
            f"{label}: PortalNotFound: no Portal {invitation.portal} in namespace "
            f"{invitation.namespace} among the files"
        )
        return Verdict(label, [problem], [])
    secret = names.invitation_link_name(invitation.name)
    child = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": secret,
            "namespace": invitation.namespace,
            "labels": names.invitation_labels(invitation.name, invitation.portal),
        },
        "type": "Opaque",
    }
    note = "data.link (with the code) is made once by the operator; never rendered offline"
    return Verdict(label, [], [child], {("Secret", secret): note})


Notes = dict[tuple[str, str, str], str]  # (namespace, kind, name) → note


def _key(child: dict[str, Any]) -> tuple[str, str, str]:
    return (child["metadata"].get("namespace", ""), child["kind"], child["metadata"]["name"])


def _table(children: list[dict[str, Any]], notes: Notes) -> str:
    rows = [("KIND", "NAMESPACE", "NAME", "FROM THE CLUSTER")] + [
        (
            c["kind"],
            c["metadata"].get("namespace", ""),
            c["metadata"]["name"],
            notes.get(_key(c), ""),
        )
        for c in children
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    return "".join(
        "   ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() + "\n" for r in rows
    )


def format_children(children: list[dict[str, Any]], output: str, notes: Notes | None = None) -> str:
    notes = notes or {}
    if output == "json":
        return json.dumps(children, indent=2, ensure_ascii=False) + "\n"
    if output == "table":
        return _table(children, notes)
    docs = []
    for child in children:
        text = yaml.safe_dump(child, sort_keys=False, allow_unicode=True)
        if note := notes.get(_key(child)):
            text = f"# from the cluster: {note}\n{text}"
        docs.append(text)
    return "---\n".join(docs)


@click.command("plan")
@click.argument("files", nargs=-1, required=True)
@click.option("--base-domain", help="The operator's base domain (default: PORTICO_BASE_DOMAIN).")
@click.option(
    "--ingress-controller",
    type=click.Choice(["traefik", "ingress-nginx", "other"]),
    help="The operator's ingressController, which decides how a portal's IP allow-list is "
    "applied (default: PORTICO_INGRESS_CONTROLLER).",
)
@click.option(
    "-o",
    "--output",
    type=click.Choice(["yaml", "table", "json"]),
    default="yaml",
    show_default=True,
)
def plan_command(
    files: tuple[str, ...], base_domain: str | None, ingress_controller: str | None, output: str
) -> None:
    """Validate Portals and PortalInvitations offline and print the children the operator
    would apply.

    FILES are YAML files (or - for stdin) holding Portals, PortalInvitations and, for
    the cross-checks, PortalInstances and Namespaces. Exit 1 when a Portal is
    invalid (one line per problem on stderr), 2 when the input is unusable.
    """
    try:
        docs = load(list(files))
    except InputError as err:
        click.echo(f"error: {err}", err=True)
        sys.exit(2)
    if not docs.portals and not docs.instances and not docs.invitations:
        click.echo("error: no Portal, PortalInstance or PortalInvitation in the input", err=True)
        sys.exit(2)
    controller = "" if ingress_controller == "other" else ingress_controller
    settings = Settings.from_env(base_domain=base_domain, ingress_controller=controller)
    verdicts = evaluate(docs, settings)
    children = [c for v in verdicts for c in v.children]
    notes: Notes = {}
    for v in verdicts:
        for (kind, name), note in v.notes.items():
            namespace = v.label.split("/", 1)[0]
            notes[(namespace, kind, name)] = note
    click.echo(format_children(children, output, notes), nl=False)
    if output == "json":
        for (namespace, kind, name), note in sorted(notes.items()):
            click.echo(f"note: {namespace}/{kind}/{name}: {note}", err=True)
    for v in verdicts:
        for warning in v.warnings:
            click.echo(f"warning: {warning}", err=True)
    problems = [p for v in verdicts for p in v.problems]
    for line in problems:
        click.echo(line, err=True)
    if problems:
        sys.exit(1)
