"""The "Getting set up" page a portal's URL answers while it cannot serve (never a bare 502).

Pure: Portal + what the reconcile decided → the pages children and the Service
selector. The serving side is `portico-runtime pages` (runtime/); the mechanism is
described in docs/runtime-contract.md. Per portal:

- ConfigMap `<portal>-pages` with `page.json` (name, hosts, phase, reason, message);
- Deployment `<portal>-pages`: one replica of the default runtime image, args `pages`;
- Service `<portal>` selects the runtime's pods when the portal is Ready, or while
  it is Configuring with runtime pods that serve (a spec edit rolls them without
  taking the site down); the pages pod otherwise, so what answers never depends
  on the runtime existing.
"""

from __future__ import annotations

import json
from typing import Any

from portico.api.model import Portal
from portico.core import names, render, scanner
from portico.settings import Settings

# Phases in which the URL shows the page instead of the runtime (an expired trial
# has no runtime to show).
SETUP_PHASES = frozenset({"Configuring", "Failed", "Expired"})
RETRY_AFTER_SECONDS = 30
# The pages pod's resources (pages-deployment.yaml.j2), as the scanner notes read them.
PAGES_RESOURCES = {"requests": {"cpu": "10m", "memory": "32Mi"}, "limits": {"memory": "96Mi"}}


def pages_name(portal: Portal) -> str:
    return names.pages_name(portal.name)


def hosts(portal: Portal, settings: Settings, custom_host: str = "") -> list[str]:
    default = f"{portal.subdomain}.{settings.base_domain}"
    return [default, custom_host] if custom_host else [default]


def page(
    portal: Portal, settings: Settings, phase: str, reason: str, message: str, custom_host: str = ""
) -> dict[str, Any]:
    """`page.json`: only what the Portal's own status says (conditions never hold secrets)."""
    return {
        "portal": f"{portal.namespace}/{portal.name}",
        "displayName": portal.display_name,
        "language": portal.language,
        "hosts": hosts(portal, settings, custom_host),
        "phase": phase,
        "reason": reason,
        "message": message,
        "retryAfter": RETRY_AFTER_SECONDS,
    }


def runtime_serves(phase: str, runtime_up: bool = False) -> bool:
    """Whether the Service points at the runtime (else at the pages pod). RUNTIME_UP:
    runtime pods are available now, of whichever version."""
    return phase not in SETUP_PHASES or (phase == "Configuring" and runtime_up)


def service_selector(portal: Portal, phase: str, runtime_up: bool = False) -> dict[str, str]:
    component = "runtime" if runtime_serves(phase, runtime_up) else "pages"
    return {names.PORTAL_LABEL: portal.name, names.COMPONENT_LABEL: component}


def children(
    portal: Portal,
    settings: Settings,
    page_data: dict[str, Any],
    image: str,
    pull_policy: str = "IfNotPresent",
    replicas: int = 1,
) -> list[dict[str, Any]]:
    """ConfigMap and Deployment `<portal>-pages`. IMAGE: the default runtime image, always
    (a portal's own image may be what is failing)."""
    labels = render.labels(portal, "pages")
    ctx: dict[str, Any] = {
        "portal": portal,
        "owner": portal.owner_reference(),
        "pages_name": pages_name(portal),
        "labels": labels,
        "selector": {names.PORTAL_LABEL: portal.name, names.COMPONENT_LABEL: "pages"},
        "image": image,
        "pull_policy": pull_policy,
        "replicas": replicas,
        "resources": PAGES_RESOURCES,
        "portico_uid": scanner.PORTICO_UID,
        "pod_skips": scanner.pod_skips(image, pull_policy, True, PAGES_RESOURCES),
        "page_json": json.dumps(page_data, ensure_ascii=False, sort_keys=True, indent=2) + "\n",
    }
    return [
        render._render("pages-configmap.yaml.j2", **ctx),
        render._render("pages-deployment.yaml.j2", **ctx),
    ]


def route(
    desired: list[dict[str, Any]],
    portal: Portal,
    settings: Settings,
    phase: str,
    reason: str,
    message: str,
    custom_host: str = "",
    runtime_up: bool = False,
) -> tuple[list[dict[str, Any]], set[tuple[str, str]]]:
    """DESIRED with the Service pointed where visitors should go, plus the pages children;
    and the pages children to keep as they are.

    The page names a reason only when a person must act (Failed): progress within
    Configuring would rewrite it at every step. The pages pod runs only while it may
    be needed: a Ready portal's is scaled to zero and its page left as it was (a
    portal that stops being Ready shows the page once its pod starts).
    """
    out = []
    for manifest in desired:
        if manifest["kind"] == "Service":
            manifest = {**manifest, "spec": {**manifest["spec"]}}
            manifest["spec"]["selector"] = service_selector(portal, phase, runtime_up)
        out.append(manifest)
    if phase != "Failed":
        reason, message = "", ""
    data = page(portal, settings, phase, reason, message, custom_host)
    serving = runtime_serves(phase, runtime_up)
    image = settings.runtime_image
    config, deployment = children(
        portal, settings, data, image, settings.image_pull_policy, 0 if serving else 1
    )
    if serving:
        return [*out, deployment], {("ConfigMap", pages_name(portal))}
    return [*out, config, deployment], set()
