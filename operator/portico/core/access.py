"""IP allow-list (pure): spec.access.allowedSourceRanges → what the portal's route carries,
and the AccessEnforced condition.

Who enforces the list depends on the operator's `ingress_controller` setting:

- traefik: a Middleware `<portal>-allowlist` (traefik.io/v1alpha1, `ipAllowList`) named
  on the portal's Ingress. It refuses with BLOCKED_STATUS, which the chart's shared errors
  Middleware next to the page server (setting `pages_error_middleware`) turns into the
  page server's 403 page. A status the runtime never answers keeps the runtime's own 403
  pages (an expired form, a private site) as they are: only the allow-list's refusals
  are replaced.
- ingress-nginx: annotations on the Ingress: the list (`allowlist-source-range`, and its
  former name for older controllers), `custom-http-errors: 403` with proxy interception
  off, so only nginx's own refusal goes to the controller's default backend (the page
  server, `--default-backend-service`) and the runtime's 403s pass untouched.
- anything else: the route is not guarded; AccessEnforced is False
  (AllowListNotEnforced) and a Warning Event says so.

The page server guards everything it answers itself (pages, and requests it passes on to a
runtime whose route is not applied yet), whatever the controller. The address checked is
the one the ingress controller's connection comes from (Traefik's default ipStrategy,
nginx's $remote_addr): an X-Forwarded-For sent by a client is never believed.
"""

from __future__ import annotations

from typing import Any

from portico.api.model import Portal
from portico.core import names
from portico.core.conditions import Condition, false, true
from portico.settings import Settings

TRAEFIK, NGINX = "traefik", "ingress-nginx"
CONTROLLERS = (TRAEFIK, NGINX)
# What Traefik's ipAllowList answers a blocked client; the errors Middleware rewrites it to
# 403 with the page server's page (a runtime never answers 418).
BLOCKED_STATUS = 418
NOT_ENFORCED = "AllowListNotEnforced"
CONDITION = "AccessEnforced"
NGINX_PREFIX = "nginx.ingress.kubernetes.io/"
TRAEFIK_MIDDLEWARES = "traefik.ingress.kubernetes.io/router.middlewares"


def ranges(portal: Portal) -> tuple[str, ...]:
    return portal.allowed_source_ranges


def traefik_name(namespace: str, name: str) -> str:
    """A Middleware as Traefik's Ingress provider names it (`<namespace>-<name>@provider`)."""
    return f"{namespace}-{name}@kubernetescrd"


def middleware(portal: Portal, settings: Settings) -> dict[str, Any] | None:
    """The Traefik Middleware child (None: no list, or not Traefik)."""
    if settings.ingress_controller != TRAEFIK or not ranges(portal):
        return None
    allow: dict[str, Any] = {"sourceRange": list(ranges(portal))}
    if settings.pages_error_middleware:
        allow["rejectStatusCode"] = BLOCKED_STATUS
    return {
        "apiVersion": "traefik.io/v1alpha1",
        "kind": "Middleware",
        "metadata": {
            "name": names.allowlist_name(portal.name),
            "namespace": portal.namespace,
            "labels": names.labels(portal.name, "access"),
            "ownerReferences": [portal.owner_reference()],
        },
        "spec": {"ipAllowList": allow},
    }


def ingress_annotations(portal: Portal, settings: Settings) -> dict[str, str]:
    """What the portal's Ingress carries for its list (empty: no list)."""
    listed = ranges(portal)
    if not listed:
        return {}
    if settings.ingress_controller == TRAEFIK:
        chain = []
        if settings.pages_error_middleware:
            namespace, name = settings.pages_error_middleware.split("/")
            chain.append(traefik_name(namespace, name))  # outermost: sees the refusal
        chain.append(traefik_name(portal.namespace, names.allowlist_name(portal.name)))
        return {TRAEFIK_MIDDLEWARES: ",".join(chain)}
    if settings.ingress_controller == NGINX:
        joined = ",".join(listed)
        return {
            NGINX_PREFIX + "allowlist-source-range": joined,
            NGINX_PREFIX + "whitelist-source-range": joined,
            NGINX_PREFIX + "custom-http-errors": "403",
            NGINX_PREFIX + "disable-proxy-intercept-errors": "true",
        }
    return {}


def condition(portal: Portal, settings: Settings) -> Condition | None:
    """AccessEnforced while the portal has a list (None: open, no condition)."""
    listed = ranges(portal)
    if not listed:
        return None
    count = f"{len(listed)} range{'s' if len(listed) > 1 else ''}"
    if settings.ingress_controller in CONTROLLERS:
        return true(
            CONDITION,
            "Enforced",
            f"spec.access.allowedSourceRanges ({count}) is enforced by "
            f"{settings.ingress_controller} and the page server: other addresses get a 403 page",
        )
    which = settings.ingress_controller or "not set"
    return false(
        CONDITION,
        NOT_ENFORCED,
        f"spec.access.allowedSourceRanges ({count}) is NOT enforced on the portal's route: the "
        f"operator's ingress controller setting is {which}, and only traefik and ingress-nginx "
        "can enforce it (only the page server's pages are guarded). Set the operator's "
        "ingressController to traefik or ingress-nginx if that is what serves the portals, or "
        "restrict access in front of your ingress controller",
    )
