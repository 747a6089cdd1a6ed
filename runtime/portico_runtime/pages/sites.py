"""What the page server knows of each portal (pure): Portal and EndpointSlice objects in,
host → site and site → serving pods out.

Only what a visitor may see is kept: the display name, the languages, the phase and
the category of the Ready condition's reason. Messages, instance and Secret names
stay in the Portal's status and Events (docs/runtime-contract.md, "Pages").
"""

from __future__ import annotations

import ipaddress
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

# Reason category of a Failed portal → the generic line its page shows. The operator's
# reasons (operator/portico/core/reasons.py, certificates/result.py) each fall in one;
# tests/unit/test_pages_server.py keeps the two lists in step.
SETTINGS = frozenset(
    {
        "LanguageNotInstalled",
        "AdministratorNotAllowed",
        "CredentialsNotFound",
        "CredentialsNotAllowed",
        "SecretNotFound",
        "SecretKeyMissing",
        "SecretNotLabelled",
        "CertManagerNotEnabled",
        "IssuerNotAllowed",
        "ChildConflict",
        "DomainTaken",
        "HostnameNotAllowed",
    }
)
INSTALLATION = frozenset({"PrerequisiteMissing", "InstallFailed", "ImportFailed"})
CERTIFICATE = frozenset(
    {
        "InvalidPfx",
        "PfxTooExpensive",
        "CertificateCheckTimedOut",
        "InvalidCertificate",
        "InvalidPrivateKey",
        "MissingPrivateKey",
        "KeyMismatch",
        "WeakSignature",
        "WeakKey",
        "MissingServerAuth",
        "CertificateExpired",
        "CertificateNotYetValid",
        "HostnameMismatch",
    }
)
# A portal failing for one of these is not entitled to its URL (no instance, a namespace
# the instance does not allow, an image it does not allow, a subdomain another portal
# holds): the page server shows nothing of it, as for a host no portal has.
UNENTITLED = frozenset(
    {"InstanceNotFound", "NamespaceNotAllowed", "ImageNotAllowed", "SubdomainTaken"}
)


def category(phase: str, reason: str) -> str:
    """The public category of a portal's state: one generic line each, in every language."""
    if phase == "Failed":
        for name, reasons in (
            ("settings", SETTINGS),
            ("installation", INSTALLATION),
            ("certificate", CERTIFICATE),
        ):
            if reason in reasons:
                return name
        return "unavailable"  # a reconcile error, or a reason this page server predates
    if phase == "Expired":
        return "expired"
    if phase in ("Paused", "Stopped", "Deprovisioned"):
        return "stopped"
    if phase == "Ready":  # its page shows only when none of its pods answers
        return "unavailable"
    return "setup"


@dataclass(frozen=True)
class Maintenance:
    """status.maintenance, as the operator applied spec.maintenance (public by design:
    the owner wrote the message for visitors)."""

    message: str = ""
    retry_after: int = 300
    custom: bool = False  # the custom page is in the portal's `-maintenance` ConfigMap


@dataclass(frozen=True)
class Site:
    """One portal as its public page shows it, and where its runtime is."""

    key: tuple[str, str]  # namespace, name (= the runtime Service's name)
    created: str  # creationTimestamp: the older claim of a host wins, as in the operator
    display_name: str
    language: str
    languages: tuple[str, ...]
    hosts: tuple[str, ...]
    phase: str
    category: str
    maintenance: Maintenance | None = None
    # The portal's URL, and its previous hosts (a rename) with their release times: each
    # answers a 308 redirect to URL until then (status.previousSubdomains).
    url: str = ""
    previous: tuple[tuple[str, str], ...] = ()

    def redirect(self, host: str, now: str) -> str:
        """The URL HOST redirects to at NOW (RFC 3339), or '' when it does not."""
        for old, until in self.previous:
            if old == host and now < until and self.url:
                return self.url
        return ""

    # spec.access.allowedSourceRanges; None: open to every address. An entry admission let
    # through but this server cannot read admits nobody (the list only ever narrows).
    allowed: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] | None = None

    def admits(self, address: str) -> bool:
        """Whether a visitor from ADDRESS may reach the site (its allow-list)."""
        if self.allowed is None:
            return True
        try:
            ip = ipaddress.ip_address(address.strip("[]").split("%")[0])
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped  # a dual-stack socket's view of an IPv4 client
        return any(ip in net for net in self.allowed)

    @property
    def serving(self) -> bool:
        """Ready: the operator routes the portal's hosts to its runtime (through its own
        Ingress, which the ingress controller may not have applied yet)."""
        return self.phase == "Ready"


def _host(url: Any) -> str:
    return (urlsplit(url).hostname or "") if isinstance(url, str) else ""


def _ready_reason(status: Mapping[str, Any]) -> str:
    for cond in status.get("conditions") or ():
        if isinstance(cond, Mapping) and cond.get("type") == "Ready":
            return str(cond.get("reason") or "")
    return ""


def site(portal: Mapping[str, Any]) -> Site | None:
    """The site of a Portal object; None until the operator has given it a status."""
    meta, spec = portal.get("metadata") or {}, portal.get("spec") or {}
    status = portal.get("status") or {}
    phase = str(status.get("phase") or "")
    if not phase or not meta.get("name"):
        return None
    reason = _ready_reason(status)
    hosts: tuple[str, ...] = ()
    previous: tuple[tuple[str, str], ...] = ()
    # A Deprovisioned portal has released its hosts: another portal may hold them now.
    if reason not in UNENTITLED and phase != "Deprovisioned":
        # Hosts the operator says the portal has: its default URL, and the custom one
        # only once the operator serves it (a verified, unclaimed domain).
        found = (_host(status.get("url")), _host(status.get("customDomainUrl")))
        hosts = tuple(h.lower() for h in found if h)
        previous = _previous(status)
    language = str(spec.get("language") or "en-US")
    mode = status.get("maintenance") or {}
    maintenance = None
    if isinstance(mode, Mapping) and mode.get("enabled"):
        maintenance = Maintenance(
            str(mode.get("message") or ""),
            int(mode.get("retryAfterSeconds") or 300),
            mode.get("page") == "Custom",
        )
    extra = [str(x) for x in spec.get("additionalLanguages") or ()]
    return Site(
        allowed=_allowed((spec.get("access") or {}).get("allowedSourceRanges")),
        key=(str(meta.get("namespace") or ""), str(meta["name"])),
        created=str(meta.get("creationTimestamp") or ""),
        display_name=str(spec.get("displayName") or meta["name"]),
        language=language,
        languages=(language, *extra),
        hosts=hosts,
        phase=phase,
        category=category(phase, reason),
        maintenance=maintenance,
        url=str(status.get("url") or "") if previous else "",
        previous=previous,
    )


def _previous(status: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    """(host, releasesAt) of each previous subdomain: under the base domain of status.url."""
    base = _host(status.get("url")).partition(".")[2]
    out = []
    for item in status.get("previousSubdomains") or ():
        if isinstance(item, Mapping) and item.get("subdomain") and base:
            out.append((f"{item['subdomain']}.{base}".lower(), str(item.get("releasesAt") or "")))
    return tuple(out)


def _allowed(raw: Any) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] | None:
    if not raw or not isinstance(raw, list):
        return None
    nets = []
    for entry in raw:
        try:
            nets.append(ipaddress.ip_network(str(entry), strict=False))
        except ValueError:
            continue
    return tuple(nets)


@dataclass(frozen=True)
class Endpoint:
    address: str
    port: int


def endpoints(slice_: Mapping[str, Any]) -> tuple[Endpoint, ...]:
    """The ready, not terminating addresses of an EndpointSlice, on its `http` port."""
    port = next((int(p["port"]) for p in slice_.get("ports") or () if p.get("name") == "http"), 0)
    if not port:
        return ()
    out: list[Endpoint] = []
    for ep in slice_.get("endpoints") or ():
        cond = ep.get("conditions") or {}
        if cond.get("ready") is False or cond.get("terminating") is True:
            continue
        out.extend(Endpoint(a, port) for a in ep.get("addresses") or ())
    return tuple(out)


class Directory:
    """Host → site and Service → serving pods, as the watches last said. The watch thread
    writes, request handlers read; a lock keeps the two maps consistent with each other."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sites: dict[tuple[str, str], Site] = {}
        self._hosts: dict[str, Site] = {}
        # (namespace, service) → slice name → its endpoints
        self._slices: dict[tuple[str, str], dict[str, tuple[Endpoint, ...]]] = {}
        # (namespace, portal) → its custom maintenance page (the `-maintenance` ConfigMap)
        self._pages: dict[tuple[str, str], str] = {}
        self.synced = threading.Event()  # both initial lists are in

    def lookup(self, host: str) -> Site | None:
        return self._hosts.get(host.lower().rstrip("."))

    def pods(self, key: tuple[str, str]) -> tuple[Endpoint, ...]:
        slices = self._slices.get(key) or {}
        return tuple(e for eps in slices.values() for e in eps)

    def put_site(self, key: tuple[str, str], new: Site | None) -> None:
        with self._lock:
            old = self._sites.pop(key, None)
            if new is not None:
                self._sites[key] = new
            touched = {h for s in (old, new) if s for h in (*s.hosts, *(p[0] for p in s.previous))}
            for host in touched:
                self._reindex(host)

    def replace_sites(self, sites: Iterable[Site]) -> None:
        with self._lock:
            self._sites = {s.key: s for s in sites}
            self._hosts = {}
            for host in {h for s in self._sites.values() for h in _claimed(s)}:
                self._reindex(host)

    def _reindex(self, host: str) -> None:
        claims = [(_since(s, host), s.key, s) for s in self._sites.values() if host in _claimed(s)]
        if claims:  # the older claim wins, as the operator decides it
            self._hosts[host] = min(claims, key=lambda c: c[:2])[2]
        else:
            self._hosts.pop(host, None)

    def put_slice(self, slice_: Mapping[str, Any], deleted: bool = False) -> None:
        meta = slice_.get("metadata") or {}
        service = (meta.get("labels") or {}).get("kubernetes.io/service-name", "")
        key = (str(meta.get("namespace") or ""), str(service))
        with self._lock:
            slices = dict(self._slices.get(key) or {})
            if deleted:
                slices.pop(meta.get("name", ""), None)
            else:
                slices[meta.get("name", "")] = endpoints(slice_)
            if slices:
                self._slices[key] = slices
            else:
                self._slices.pop(key, None)

    def replace_slices(self, slices: Iterable[Mapping[str, Any]]) -> None:
        fresh: dict[tuple[str, str], dict[str, tuple[Endpoint, ...]]] = {}
        for s in slices:
            meta = s.get("metadata") or {}
            service = (meta.get("labels") or {}).get("kubernetes.io/service-name", "")
            key = (str(meta.get("namespace") or ""), str(service))
            fresh.setdefault(key, {})[str(meta.get("name", ""))] = endpoints(s)
        with self._lock:
            self._slices = fresh

    def maintenance_page(self, key: tuple[str, str]) -> str | None:
        return self._pages.get(key)

    def put_page(self, config_map: Mapping[str, Any], deleted: bool = False) -> None:
        key, html = _page_of(config_map)
        with self._lock:
            if deleted or html is None:
                self._pages.pop(key, None)
            else:
                self._pages[key] = html

    def replace_pages(self, config_maps: Iterable[Mapping[str, Any]]) -> None:
        fresh = {}
        for config_map in config_maps:
            key, html = _page_of(config_map)
            if html is not None:
                fresh[key] = html
        with self._lock:
            self._pages = fresh

    def __len__(self) -> int:
        return len(self._sites)


def _claimed(site: Site) -> tuple[str, ...]:
    return (*site.hosts, *(host for host, _ in site.previous))


def _since(site: Site, host: str) -> str:
    """A previous host is held before any other claim (operator/portico/core/rename.py)."""
    return "" if host not in site.hosts and host in dict(site.previous) else site.created


# The operator's copy of a custom maintenance page: key `page.html` of the ConfigMap
# labelled with the portal's name (operator/portico/core/maintenance.py).
PAGE_KEY = "page.html"
PORTAL_LABEL = "portico.dev/portal"


def _page_of(config_map: Mapping[str, Any]) -> tuple[tuple[str, str], str | None]:
    meta = config_map.get("metadata") or {}
    portal = str((meta.get("labels") or {}).get(PORTAL_LABEL, ""))
    html = (config_map.get("data") or {}).get(PAGE_KEY)
    return (str(meta.get("namespace") or ""), portal), html if isinstance(html, str) else None
