"""One definition of every name Portico gives: child names, labels, annotations, kinds, times.

The renderer, the decision, the watches, `portico plan` and the CLI all read
these; nothing else spells a child's name or a label.
"""

from __future__ import annotations

import datetime

MANAGED_BY = {"app.kubernetes.io/managed-by": "portico"}
# Server-side label selector for the child watches: only Portico's objects stream in.
MANAGED_SELECTOR = "app.kubernetes.io/managed-by=portico"
PORTAL_LABEL = "portico.dev/portal"
# Secrets are watched only with this label (any value: by convention who uses the Secret),
# selected on the server: the operator never holds the rest of a namespace's Secrets. Users
# label the Secrets they reference (docs/user-guide.md); Portico labels its own.
SECRET_LABEL = "portico.dev/secret-for"
SECRET_SELECTOR = SECRET_LABEL
# runtime, config, credentials, provision, translations: which part of a portal an object is.
COMPONENT_LABEL = "app.kubernetes.io/component"

# Annotations a person sets on a Portal (never written by the operator).
RESTART = "portico.dev/restart"
RECHECK = "portico.dev/reconcile-requested-at"
REFRESH_TRANSLATIONS = "portico.dev/refresh-translations"
# A new value rotates the portal's session keys (core/session_keys.py).
ROTATE_SESSION_KEYS = "portico.dev/rotate-session-keys"
# Rolls the runtime's pods (not provisioning); echoed in status.lastHandledSiteRestart.
RESTART_SITE = "portico.dev/restart-site"
# Stamped on each child: the hash of what was applied, so unchanged children cost no write.
APPLIED_HASH = "portico.dev/applied-hash"

# Every kind Portico can create, in apply order. Certificates only with cert-manager support.
# NetworkPolicies only when the operator's portal network policy is on. Middlewares
# (Traefik's, for an IP allow-list) only with the traefik ingress controller setting,
# before the Ingress that names them.
CHILD_KINDS = (
    "Secret",
    "ConfigMap",
    "Deployment",
    "Service",
    "Middleware",
    "Ingress",
    "NetworkPolicy",
    "Certificate",
    "Job",
)
# Kinds whose child names are fixed by the portal's name (Jobs are numbered per run).
FIXED_KINDS = tuple(kind for kind in CHILD_KINDS if kind != "Job")


def labels(portal: str, component: str) -> dict[str, str]:
    return {
        **MANAGED_BY,
        "app.kubernetes.io/name": "portal",
        "app.kubernetes.io/instance": portal,
        COMPONENT_LABEL: component,
        PORTAL_LABEL: portal,
    }


def secret_labels(portal: str, component: str) -> dict[str, str]:
    """A Secret child's labels: the Secret watch selects SECRET_LABEL, not MANAGED_BY."""
    return {**labels(portal, component), SECRET_LABEL: portal}


def runtime_selector(portal: str) -> dict[str, str]:
    """The Deployment's selector and the Service's: immutable once created."""
    return {PORTAL_LABEL: portal, COMPONENT_LABEL: "runtime"}


def portal_pods(portal: str) -> dict[str, str]:
    """Every pod of a portal (runtime, pages, Jobs): what its NetworkPolicy selects."""
    return {PORTAL_LABEL: portal}


def network_policy_name(portal: str) -> str:
    return portal


def config_name(portal: str) -> str:
    return f"{portal}-config"


def runtime_name(portal: str) -> str:
    """The Deployment, Service, Ingress and Certificate share the portal's own name."""
    return portal


def maintenance_page_name(portal: str) -> str:
    """The copy of a portal's custom maintenance page that the page server reads."""
    return f"{portal}-maintenance"


def allowlist_name(portal: str) -> str:
    """Traefik's ipAllowList Middleware of a portal with spec.access.allowedSourceRanges."""
    return f"{portal}-allowlist"


def pages_name(portal: str) -> str:
    """The per-portal "Getting set up" ConfigMap and Deployment of releases before the
    shared page server: no longer made; an upgrade prunes them as unwanted children."""
    return f"{portal}-pages"


def instance_secret_name(portal: str) -> str:
    """The portal's own Secret: its instance token (`token`, `ca.crt`; core/token.py) and
    its session keys (`keys`; core/session_keys.py), made by the operator, mounted by the
    runtime."""
    return f"{portal}-instance"


def legacy_session_secret_name(portal: str) -> str:
    """Where releases before one Secret per portal kept the session keys: read once so an
    upgrade keeps them, then pruned as an unwanted child."""
    return f"{portal}-session"


def mail_secret_name(portal: str) -> str:
    """The portal's copy of the operator's mail login for runtimes (`username`, `password`)."""
    return f"{portal}-mail"


def tls_secret_name(portal: str) -> str:
    return f"{portal}-tls"


def provision_job_name(portal: str, attempt: int) -> str:
    return f"{portal}-provision-{attempt}"


def translations_job_name(portal: str, run: int) -> str:
    return f"{portal}-translations-{run}"


def iso(moment: datetime.datetime) -> str:
    """RFC 3339 in UTC, to the second: the form of every time in status."""
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: str) -> datetime.datetime:
    return datetime.datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.UTC)


# PortalInvitations: the link Secret and the instance-side cleanup on delete.
INVITATION_LABEL = "portico.dev/invitation"
INVITATION_FINALIZER = "portico.dev/revoke-invitation"


def invitation_labels(invitation: str, portal: str) -> dict[str, str]:
    """On the link Secret. Not PORTAL_LABEL: the Secret is the invitation's, not the portal's."""
    return {
        **MANAGED_BY,
        "app.kubernetes.io/name": "portal-invitation",
        "app.kubernetes.io/instance": invitation,
        COMPONENT_LABEL: "invitation-link",
        INVITATION_LABEL: invitation,
        "portico.dev/invited-to": portal,
        SECRET_LABEL: invitation,
    }


def invitation_link_name(invitation: str) -> str:
    """The Secret holding the invitation's link (and so its code)."""
    return f"{invitation}-link"
