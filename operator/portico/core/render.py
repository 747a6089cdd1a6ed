"""Desired state: a Portal (plus what was observed) → the children Portico applies.

Pure: the same inputs give byte-identical manifests. Manifests come from the
jinja2 templates in `portico/core/templates/`; the runtime configuration is data,
built here and serialised with sorted keys so its checksum is stable.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jinja2
import yaml

from portico.api.model import Portal, PortalInstance
from portico.core import access, features, names, network_policy, scanner, session_keys
from portico.core.session_keys import SessionKeys
from portico.settings import Settings

_NOT_YAML_PRINTABLE = re.compile(
    "[^\x09\x0a\x0d\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]"
)
# libyaml's safe loader when PyYAML has it: rendering runs on every reconcile.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
CONFIG_DIR = "/etc/portico"
SECRETS_DIR = f"{CONFIG_DIR}/secrets"
# The portal's own Secret `<portal>-instance`: its token (and ca.crt) and the session keys.
INSTANCE_DIR = f"{SECRETS_DIR}/instance"
# Not a Secret's name (those have no underscore), so no referenced Secret's mount meets it.
MAIL_LOGIN_DIR = f"{SECRETS_DIR}/_mail"
CONFIG_MOUNTS = {"portal.json": f"{CONFIG_DIR}/portal.json"}
# The runtime's and its Jobs' /tmp (an emptyDir): uploads spool there, nothing else lives.
TMP_SIZE_LIMIT = "64Mi"


@dataclass(frozen=True)
class Facts:
    """What the cluster told the operator that shapes the children."""

    attempt: int = 1
    # False while the attempt has finished or cannot start (a missing prerequisite).
    provision: bool = True
    # The custom host is served only once its domain is verified and claimed.
    custom_host_ready: bool = False
    custom_tls_secret: str = ""
    expired: bool = False
    # spec.state Stopped: the runtime at zero replicas, everything else as it is.
    stopped: bool = False
    # The portico.dev/restart-site token: a new one rolls the runtime's pods.
    site_restart: str = ""
    # Hash of the versions of every mounted Secret, so a rotation rolls the pods.
    secrets_checksum: str = ""
    # Languages to import in translations run N (None: no run wanted).
    translations_run: int = 0
    translations_languages: tuple[str, ...] = ()
    # The instance's credentials (base64 values), copied next to the portal because
    # a pod cannot mount a Secret from another namespace. None: not observed (plan).
    instance_credentials: Mapping[str, str] | None = None
    # Which token the Secret holds (core/token.py): its id, expiry and minting instance.
    instance_secret_annotations: Mapping[str, str] | None = None
    # base64 tls.crt/tls.key converted from the portal's .pfx, for `<portal>-tls`.
    tls_data: Mapping[str, str] | None = None
    # Ask cert-manager for the custom host's certificate (issuerRef, domain verified).
    issue_certificate: bool = False
    # The session keys (core/session_keys.py), held in `<portal>-instance` beside the
    # token: one Secret, one write for a new portal. None: no keys rendered (plan).
    session_keys: SessionKeys | None = None
    # The portals' mail login copied from the operator's Secret (base64 `username` and
    # `password`); None: none configured, or that Secret lacks them.
    mail_login: Mapping[str, str] | None = None


def _quote(value: Any) -> str:
    """Every value goes into YAML as JSON, so no input can change the document's shape."""
    text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    # YAML streams may not hold some characters JSON leaves raw; escape just those.
    return _NOT_YAML_PRINTABLE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


_env = jinja2.Environment(
    loader=jinja2.PackageLoader("portico.core", "templates"),
    undefined=jinja2.StrictUndefined,
    keep_trailing_newline=True,
    autoescape=jinja2.select_autoescape(["html", "html.j2"]),
    trim_blocks=True,
    lstrip_blocks=True,
    auto_reload=False,  # package files: no stat of each template at every render
)
_env.filters["q"] = _quote


def default_url(portal: Portal, settings: Settings) -> str:
    return f"https://{portal.subdomain}.{settings.base_domain}"


def labels(portal: Portal, component: str) -> dict[str, str]:
    return names.labels(portal.name, component)


def image(portal: Portal, settings: Settings) -> str:
    """The runtime image the portal runs: its own, or the operator's default."""
    return portal.runtime.image or settings.runtime_image


def _secret_file(secret: str, key: str) -> str:
    return f"{SECRETS_DIR}/{secret}/{key}"


def runtime_config(
    portal: Portal, instance: PortalInstance | None, settings: Settings
) -> dict[str, Any]:
    """`portal.json`: everything the runtime needs, secrets only as file paths."""
    config: dict[str, Any] = {
        "apiVersion": "portico.dev/v1alpha1",
        "portal": {
            "name": portal.name,
            "namespace": portal.namespace,
            "displayName": portal.display_name,
            "type": portal.type,
            "subdomain": portal.subdomain,
            "url": default_url(portal, settings),
            "audience": portal.audience,
            "template": portal.template,
            "administrator": portal.administrator,
        },
        "instance": {
            "name": portal.instance,
            "url": instance.url if instance else "",
            "credentialsDir": INSTANCE_DIR,
        },
        "language": portal.language,
        "languages": list(portal.languages),
        "features": features.features(portal.template),
        "solutions": features.solutions(portal.template),
        "authentication": {
            "localSignIn": portal.authentication.local_sign_in,
            "registration": portal.authentication.registration,
            "identityProviders": [
                {
                    "name": idp.name,
                    "issuer": idp.issuer,
                    "clientId": idp.client_id,
                    "clientSecretFile": _secret_file(idp.client_secret.name, idp.client_secret.key),
                }
                for idp in portal.authentication.identity_providers
            ],
        },
        "webRoles": [_web_role(r) for r in portal.web_roles],
        "visibility": {"mode": portal.visibility, "allow": _members(portal.private_allow)},
        "sessions": {"keysFile": f"{INSTANCE_DIR}/{session_keys.KEYS}"},
        "analytics": {},
    }
    mail = _portal_mail(settings)
    if mail:
        config["mail"] = mail
    if portal.custom_domain:
        config["portal"]["customDomain"] = portal.custom_domain.hostname
    if ci := portal.customer_insights:
        config["analytics"]["customerInsights"] = {
            "hubUri": ci.hub_uri,
            "policyName": ci.policy_name,
            "interactions": list(ci.interactions),
            "sharedKeyFile": _secret_file(ci.shared_key.name, ci.shared_key.key),
            "searchStrings": ci.search_strings,
            "tokenSeconds": settings.interactions_token_seconds,
        }
    if ce := portal.cloud_events:
        config["analytics"]["cloudEvents"] = {
            "url": ce.url,
            "interactions": list(ce.interactions),
            "searchStrings": ce.search_strings,
        }
        if ce.headers:
            config["analytics"]["cloudEvents"]["headersFile"] = _secret_file(
                ce.headers.name, ce.headers.key
            )
    if config["analytics"]:
        config["analytics"]["queueSize"] = settings.interactions_queue_size
    if instance is not None and instance.insecure:
        # Only when set: portals of other instances keep their config (and checksum).
        config["instance"]["insecure"] = True
    return config


def _members(raw: dict[str, Any]) -> dict[str, Any]:
    return {
        "emails": list(raw.get("emails") or []),
        "emailDomains": list(raw.get("emailDomains") or []),
        "claims": [{"claim": c["claim"], "value": c["value"]} for c in raw.get("claims") or []],
    }


def _web_role(raw: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": raw["name"],
        "description": raw.get("description", ""),
        "members": _members(raw.get("members") or {}),
    }


def _portal_mail(settings: Settings) -> dict[str, Any]:
    """The mail server the runtime sends password-reset links through: the operator's mail
    settings (PORTICO_MAIL_HOST, _PORT, _FROM, _TLS) and, with
    PORTICO_MAIL_PORTAL_CREDENTIALS_SECRET, the login the operator copies into the
    portal's Secret `<portal>-mail` (files read per message; never in this file)."""
    host = settings.mail_host
    if not host:
        return {}
    mail: dict[str, Any] = {
        "host": host,
        "port": settings.mail_port,
        "from": settings.mail_from,
        "tls": settings.mail_tls,
    }
    if settings.mail_portal_credentials_secret:
        mail["usernameFile"] = f"{MAIL_LOGIN_DIR}/username"
        mail["passwordFile"] = f"{MAIL_LOGIN_DIR}/password"
    return mail


def _secret_volumes(portal: Portal) -> list[dict[str, Any]]:
    """One volume per referenced Secret, holding just the keys the runtime reads."""
    keys: dict[str, set[str]] = {}
    for ref in portal.secret_refs:
        keys.setdefault(ref.name, set()).add(ref.key)
    return [
        {"volume": f"secret-{i}", "secret": name, "keys": sorted(keys[name])}
        for i, name in enumerate(sorted(keys))
    ]


def _render(template: str, **context: Any) -> dict[str, Any]:
    text = _env.get_template(template).render(**context)
    manifest: dict[str, Any] = yaml.load(text, Loader=_LOADER)  # both loaders are safe
    return manifest


def checksum(data: Any) -> str:
    return hashlib.sha256(_quote(data).encode()).hexdigest()


def children(
    portal: Portal,
    instance: PortalInstance | None,
    settings: Settings,
    facts: Facts | None = None,
) -> list[dict[str, Any]]:
    """Every child Portico applies for PORTAL, in apply order."""
    facts = facts or Facts()
    config = runtime_config(portal, instance, settings)
    config_json = json.dumps(config, ensure_ascii=False, sort_keys=True, indent=2) + "\n"
    data = {"portal.json": config_json}
    replicas = portal.runtime.replicas
    if replicas is None:
        replicas = settings.default_replicas
    resources = _resources(portal)
    portico_image = image(portal, settings) == settings.runtime_image
    skips = scanner.pod_skips(
        image(portal, settings), settings.image_pull_policy, portico_image, resources
    )
    ctx: dict[str, Any] = {
        "portal": portal,
        "owner": portal.owner_reference(),
        "settings": settings,
        "facts": facts,
        "config_data": data,
        "config_name": names.config_name(portal.name),
        "instance_secret": names.instance_secret_name(portal.name),
        "secret_label": names.SECRET_LABEL,
        "instance_dir": INSTANCE_DIR,
        "mail_secret": names.mail_secret_name(portal.name),
        "mail_login_dir": MAIL_LOGIN_DIR if settings.mail_portal_credentials_secret else "",
        "runtime_name": names.runtime_name(portal.name),
        "selector": names.runtime_selector(portal.name),
        "config_checksum": checksum(data),
        # subPath mounts: a nested mount inside a ConfigMap volume would fail.
        "config_mounts": [(key, CONFIG_MOUNTS[key]) for key in sorted(data)],
        "image": image(portal, settings),
        "replicas": 0 if facts.expired or facts.stopped else replicas,
        "resources": resources,
        "tmp_size_limit": TMP_SIZE_LIMIT,
        "portico_image": portico_image,
        "portico_uid": scanner.PORTICO_UID,
        "pod_skips": skips,
        "job_annotations": {"portico.dev/config-checksum": checksum(data), **skips},
        "secret_volumes": _secret_volumes(portal),
        "host": f"{portal.subdomain}.{settings.base_domain}",
        "ingress_annotations": access.ingress_annotations(portal, settings),
        "custom_host": portal.custom_domain.hostname
        if portal.custom_domain and facts.custom_host_ready
        else "",
    }
    manifests = [
        _render("configmap.yaml.j2", labels=labels(portal, "config"), **ctx),
        _render("deployment.yaml.j2", labels=labels(portal, "runtime"), **ctx),
        _render("service.yaml.j2", labels=labels(portal, "runtime"), **ctx),
        _render("ingress.yaml.j2", labels=labels(portal, "runtime"), **ctx),
    ]
    if allowlist := access.middleware(portal, settings):
        manifests.insert(-1, allowlist)  # before the Ingress that names it
    if settings.portal_network_policy:
        policy = network_policy.spec(names.portal_pods(portal.name), config, settings)
        manifests.append(
            _render(
                "networkpolicy.yaml.j2",
                labels=labels(portal, "network"),
                network_policy_name=names.network_policy_name(portal.name),
                network_policy=policy,
                **ctx,
            )
        )
    secret = instance_secret(facts)
    if secret is not None:
        data, annotations = secret
        manifests.insert(
            0,
            _render(
                "secret-instance.yaml.j2",
                labels=names.secret_labels(portal.name, "credentials"),
                data=data,
                annotations=annotations,
                **ctx,
            ),
        )
    if facts.mail_login is not None:
        manifests.insert(
            0,
            _render(
                "secret-mail.yaml.j2",
                labels=names.secret_labels(portal.name, "mail"),
                data=dict(sorted(facts.mail_login.items())),
                **ctx,
            ),
        )
    if facts.tls_data is not None:
        manifests.append(
            _render(
                "secret-tls.yaml.j2",
                labels=names.secret_labels(portal.name, "certificate"),
                **ctx,
            )
        )
    if facts.issue_certificate and portal.custom_domain and portal.custom_domain.issuer:
        manifests.append(
            _render("certificate.yaml.j2", labels=labels(portal, "certificate"), **ctx)
        )
    jobs = []
    if facts.provision:
        jobs.append(
            (
                "provisioning",
                "portico.dev/attempt",
                facts.attempt,
                names.provision_job_name(portal.name, facts.attempt),
                ["provision"],
            )
        )
    if facts.translations_run:
        jobs.append(
            (
                "translations",
                "portico.dev/translations-run",
                facts.translations_run,
                names.translations_job_name(portal.name, facts.translations_run),
                ["import-translations", *facts.translations_languages],
            )
        )
    for component, run_label, run, name, args in jobs:
        job_labels = {**labels(portal, component), run_label: str(run)}
        manifests.append(_render("job.yaml.j2", labels=job_labels, job_name=name, args=args, **ctx))
    return manifests


def _resources(portal: Portal) -> dict[str, Any]:
    resources: dict[str, Any] = {
        "requests": {"cpu": "50m", "memory": "64Mi"},
        "limits": {"memory": "256Mi"},
    }
    for kind, values in portal.runtime.resources.items():
        resources[kind] = dict(sorted(values.items()))
    return resources


def instance_secret(facts: Facts) -> tuple[dict[str, str], dict[str, str]] | None:
    """`<portal>-instance`'s data and annotations: the token (when the portal may hold
    one) beside the session keys. Without a token (withdrawn, expired) the keys alone
    stay, so sessions outlive a lapse; None when neither is rendered."""
    if facts.instance_credentials is None and facts.session_keys is None:
        return None
    keys = facts.session_keys or SessionKeys()
    data = {**(facts.instance_credentials or {}), **keys.data}
    annotations = {**(facts.instance_secret_annotations or {}), **keys.annotations}
    return dict(sorted(data.items())), dict(sorted(annotations.items()))
