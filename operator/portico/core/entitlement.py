"""What a portal is entitled to, and what its mounted Secrets say (pure).

The instance link, the image policy, the subdomain claim and the Secrets the
runtime mounts: each problem is a named reason with its fix.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

from portico.api.model import Portal, PortalInstance
from portico.core import image_patterns, references, render
from portico.core.conditions import Condition, false, true
from portico.core.observed import Observed, missing_message, unlabelled_message
from portico.core.reasons import Failure
from portico.settings import Settings

# Without these a portal holds no name: it neither claims nor contends for a subdomain or
# custom host, and gets no routing on the shared domain.
UNENTITLED = frozenset(
    {Failure.INSTANCE_NOT_FOUND, Failure.NAMESPACE_NOT_ALLOWED, Failure.IMAGE_NOT_ALLOWED}
)


def image_allowed(
    portal: Portal, instance: PortalInstance | None, settings: Settings
) -> references.Problem | None:
    """The instance's credentials go only to images its allowedImages (or the default) cover."""
    image = render.image(portal, settings)
    if instance is None or image == settings.runtime_image:
        return None
    if image_patterns.allowed(image, instance.allowed_images):
        return None
    return references.Problem(
        Failure.IMAGE_NOT_ALLOWED,
        f"image {image} is not allowed by PortalInstance {instance.name} (allowedImages: "
        f"{', '.join(instance.allowed_images) or 'only the default runtime'}); remove "
        "spec.runtime.image or ask the instance's owner to allow it",
    )


def may_claim(
    portal: Portal,
    instance: PortalInstance | None,
    namespace_labels: Mapping[str, str],
    settings: Settings,
) -> bool:
    """Whether PORTAL is entitled to hold or contend for a name: its instance exists,
    allows its namespace, and allows its image."""
    if portal.state == "Deprovisioned":  # its host is released (core/site.py)
        return False
    link = references.check_instance_link(portal, instance, namespace_labels)
    if any(p.reason in UNENTITLED for p in link):
        return False
    return image_allowed(portal, instance, settings) is None


def credentials_problem(instance: PortalInstance, settings: Settings) -> references.Problem | None:
    """The instance's credentials are read only from the namespaces the operator allows."""
    ns, secret = instance.credentials
    allowed = settings.instance_credentials_namespaces
    if not allowed or ns in allowed:
        return None
    return references.Problem(
        Failure.CREDENTIALS_NOT_ALLOWED,
        f"PortalInstance {instance.name} names credentials Secret {ns}/{secret}, but Portico "
        f"reads instance credentials only from namespace {', '.join(allowed)}; move the "
        "Secret there and fix spec.credentialsSecretRef (or add the namespace to the "
        "operator's instanceCredentialsNamespaces setting)",
    )


def link_problems(o: Observed, settings: Settings) -> list[references.Problem]:
    problems = references.check_hostname(o.portal, settings.base_domain)
    problems += references.check_instance_link(o.portal, o.instance, o.namespace_labels)
    if o.instance and (problem := credentials_problem(o.instance, settings)):
        problems.append(problem)
    elif o.instance and o.credentials is None:
        ns, secret = o.instance.credentials
        problems.append(
            references.Problem(
                Failure.CREDENTIALS_NOT_FOUND,
                f"the credentials Secret {ns}/{secret} of PortalInstance {o.instance.name} "
                "does not exist; create it or fix the instance's spec.credentialsSecretRef",
            )
        )
    if problem := image_allowed(o.portal, o.instance, settings):
        problems.append(problem)
    return problems


def subdomain_blocker(o: Observed) -> Condition | None:
    me = f"{o.portal.namespace}/{o.portal.name}"
    if reserved := o.subdomain_reserved:
        return false(
            "Ready",
            Failure.SUBDOMAIN_TAKEN,
            f"subdomain {o.portal.subdomain} belonged to a deleted portal in namespace "
            f"{reserved.namespace} and stays reserved for that namespace until "
            f"{reserved.until} (so a re-created portal there keeps it); choose another "
            "subdomain (create a new Portal), or this portal takes it then",
        )
    if o.subdomain_owner and o.subdomain_owner != me:
        return false(
            "Ready",
            Failure.SUBDOMAIN_TAKEN,
            f"subdomain {o.portal.subdomain} is already used by portal {o.subdomain_owner}; "
            "choose another subdomain (create a new Portal) or delete that portal",
        )
    return None


def mounted_secrets(o: Observed) -> tuple[list[Condition], list[Condition]]:
    """(AnalyticsConfigured, problems for the runtime) from the Secrets the runtime mounts."""
    portal = o.portal

    def missing(name: str, key: str, what: str) -> Condition | None:
        secret = o.secrets.get(name)
        if secret is None:
            return false(
                "",
                Failure.SECRET_NOT_FOUND,
                missing_message(portal.namespace, name, what, f"key {key}", portal.name),
            )
        if not secret.labelled:
            return false(
                "",
                Failure.SECRET_NOT_LABELLED,
                unlabelled_message(portal.namespace, name, what, portal.name),
            )
        if key not in secret.keys:
            return false(
                "", Failure.SECRET_KEY_MISSING, f"Secret {name} ({what}) has no key {key}; add it"
            )
        return None

    analytics: list[Condition] = []
    ci, ce = portal.customer_insights, portal.cloud_events
    if ci or ce:
        problem = (
            ci and missing(ci.shared_key.name, ci.shared_key.key, "analytics shared key")
        ) or (ce and ce.headers and missing(ce.headers.name, ce.headers.key, "CloudEvents headers"))
        sinks = [x for x in (ci and ci.hub_uri, ce and ce.url) if x]
        analytics.append(
            Condition("AnalyticsConfigured", "False", problem.reason, problem.message)
            if problem
            else true(
                "AnalyticsConfigured",
                "Configured",
                f"sending interactions to {' and '.join(sinks)}",
            )
        )
    runtime = [
        p
        for idp in portal.authentication.identity_providers
        if (
            p := missing(
                idp.client_secret.name,
                idp.client_secret.key,
                f"client secret of identity provider {idp.name}",
            )
        )
    ]
    return analytics, runtime


def secrets_checksum(o: Observed) -> str:
    """Changes whenever a mounted Secret does, so the runtime rolls and reads the new value."""
    mounted = {ref.name for ref in o.portal.secret_refs}
    versions = sorted(
        f"{name}={s.resource_version if s else '-'}"
        for name, s in o.secrets.items()
        if name in mounted
    )
    if o.credentials:
        versions.append(f"instance={o.credentials.resource_version}")
    return hashlib.sha256("\n".join(versions).encode()).hexdigest()[:16]
