"""Traefik v3 as the dev cluster's ingress controller (Kubernetes Ingress provider).

It runs in the real node's network namespace (it dials pod IPs directly) and listens
there on HTTP and HTTPS; forward.py relays the host's loopback ports to it. TLS
comes from each Ingress's `spec.tls[].secretName`; an entry without one (the
portals' default hosts) gets the default TLS store's certificate, a wildcard for
the base domain signed by the dev cluster's CA, set in Traefik's dynamic
configuration (a file: the Ingress provider alone has no TLSStore). The
IngressClass `traefik` is the cluster's default, so an Ingress without a class
is served too.

Its Kubernetes CRD provider is on as well, for the Middlewares a portal's IP allow-list
needs (core/access.py) and the page server's errors Middleware. The CRDs installed for it
(crd_documents) are minimal: each kind the provider watches, with an open schema — the
dev cluster checks Portico's objects, not Traefik's.

Traefik listens in the node's network namespace, as on a node's host network: the
address it sees is the client's own, so an allow-list sees it too. A request relayed from
the host by forward.py comes from the relay (127.0.0.1 in the node's namespace).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

HTTP, HTTPS, PING = 8080, 8443, 8081  # inside the node's namespace
USER = "portico-traefik"
CLASS = "traefik"
CONTROLLER = "traefik.io/ingress-controller"


# The operator's own default base domain; `portico dev up --base-domain` changes it.
DEFAULT_BASE_DOMAIN = "portals.example.com"


def default_store(path: Path, cert: Path, key: Path) -> Path:
    """Traefik's dynamic configuration making CERT/KEY the default TLS store's certificate."""
    store = {"defaultCertificate": {"certFile": str(cert), "keyFile": str(key)}}
    path.write_text(yaml.safe_dump({"tls": {"stores": {"default": store}}}))
    return path


def arguments(dynamic: Path | None = None) -> list[str]:
    files = [f"--providers.file.filename={dynamic}"] if dynamic else []
    return [
        *files,
        f"--entryPoints.web.address=127.0.0.1:{HTTP}",
        f"--entryPoints.websecure.address=127.0.0.1:{HTTPS}",
        "--entryPoints.websecure.http.tls=true",
        f"--entryPoints.traefik.address=127.0.0.1:{PING}",
        "--ping=true",
        "--providers.kubernetesingress=true",
        "--providers.kubernetescrd=true",
        # Ingress status shows where it is served (the host's loopback relay).
        "--providers.kubernetesingress.ingressendpoint.ip=127.0.0.1",
        "--global.checkNewVersion=false",
        "--global.sendAnonymousUsage=false",
        "--log.level=INFO",
    ]


GROUP = "traefik.io"
# Every kind Traefik's CRD provider lists before it serves (it waits for all of them).
CRD_KINDS = (
    ("IngressRoute", "ingressroutes"),
    ("IngressRouteTCP", "ingressroutetcps"),
    ("IngressRouteUDP", "ingressrouteudps"),
    ("Middleware", "middlewares"),
    ("MiddlewareTCP", "middlewaretcps"),
    ("ServersTransport", "serverstransports"),
    ("ServersTransportTCP", "serverstransporttcps"),
    ("TLSOption", "tlsoptions"),
    ("TLSStore", "tlsstores"),
    ("TraefikService", "traefikservices"),
)


def crd_documents() -> list[dict[str, Any]]:
    """Traefik's CRDs (traefik.io/v1alpha1), each with an open spec."""
    open_object = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    schema = {"type": "object", "properties": {"spec": open_object}}
    return [
        {
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": f"{plural}.{GROUP}"},
            "spec": {
                "group": GROUP,
                "scope": "Namespaced",
                "names": {
                    "kind": kind,
                    "listKind": f"{kind}List",
                    "plural": plural,
                    "singular": kind.lower(),
                },
                "versions": [
                    {
                        "name": "v1alpha1",
                        "served": True,
                        "storage": True,
                        "schema": {"openAPIV3Schema": schema},
                    }
                ],
            },
        }
        for kind, plural in CRD_KINDS
    ]


def rbac_documents() -> list[dict[str, Any]]:
    """Read what the Ingress provider watches, write Ingress status; the default class."""
    read = ["get", "list", "watch"]
    rules = [
        {
            "apiGroups": [""],
            "resources": ["services", "endpoints", "secrets", "nodes"],
            "verbs": read,
        },
        {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": read},
        {"apiGroups": [""], "resources": ["configmaps"], "verbs": read},
        {"apiGroups": [GROUP], "resources": [plural for _, plural in CRD_KINDS], "verbs": read},
        {
            "apiGroups": ["networking.k8s.io", "extensions"],
            "resources": ["ingresses", "ingressclasses"],
            "verbs": read,
        },
        {
            "apiGroups": ["networking.k8s.io", "extensions"],
            "resources": ["ingresses/status"],
            "verbs": ["update"],
        },
    ]
    return [
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": USER},
            "rules": rules,
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": USER},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": USER,
            },
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": USER}],
        },
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "IngressClass",
            "metadata": {
                "name": CLASS,
                "annotations": {"ingressclass.kubernetes.io/is-default-class": "true"},
            },
            "spec": {"controller": CONTROLLER},
        },
    ]
