"""Operator settings, from flags or PORTICO_* environment variables.

Each one is described in docs/install.md ("Values").
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields

from portico.core import issuers

# Portico's own runtime (runtime/Dockerfile); push it and set runtimeImage to its name.
DEFAULT_RUNTIME_IMAGE = "ghcr.io/portico-dev/portico-runtime:0.1.0"
SA_NAMESPACE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"


def pod_namespace() -> str:
    """The operator pod's namespace (its service account's), else `default` (a local run)."""
    try:
        with open(SA_NAMESPACE, encoding="utf-8") as handle:
            return handle.read().strip() or "default"
    except OSError:
        return "default"


@dataclass(frozen=True)
class Settings:
    base_domain: str = "portals.example.com"
    # The base domain's claim (core/base_domain.py): the chart's host policy and the
    # release ("namespace/name") that must hold it. Empty: no check (a local run).
    host_policy: str = ""
    release: str = ""
    # The default hosts are listed under the Ingress's spec.tls with no secretName: the
    # ingress controller's default certificate (a wildcard for the base domain, set up
    # once: Traefik's default TLS store, ingress-nginx's --default-ssl-certificate)
    # serves them, and no namespace holds a copy of its key.
    default_host_tls: bool = False
    trial_days: float = 30.0
    runtime_image: str = DEFAULT_RUNTIME_IMAGE
    # Where no registry is reachable (the dev cluster's real node) images are preloaded: Never.
    image_pull_policy: str = "IfNotPresent"
    default_replicas: int = 1
    ingress_class: str = ""
    # The ingress controller that serves the portals (core/access.py): traefik or
    # ingress-nginx enforce a portal's IP allow-list on its route; empty (any other):
    # not enforced there, and the portal's AccessEnforced condition says so.
    ingress_controller: str = ""
    # Traefik: the errors Middleware ("namespace/name", the chart's, next to the page
    # server) that turns an allow-list refusal into the page server's 403 page. Empty:
    # Traefik's own plain 403.
    pages_error_middleware: str = ""
    # Namespaced mode: watch (and hold Roles in) only these; comma-separated in the
    # environment; empty means every namespace. PORTICO_NAMESPACES is its former name.
    watch_namespaces: tuple[str, ...] = ()
    # Where a PortalInstance's credentialsSecretRef may point; empty: the operator's own
    # namespace only (a tenant who may write an instance must not make Portico read
    # another team's Secrets). `portico run` fills it in; offline (plan) it is open.
    instance_credentials_namespaces: tuple[str, ...] = ()
    # Lifetime asked for each portal's instance token; renewed with a third of it left.
    instance_token_ttl_seconds: int = 86400
    # A deleted portal's subdomain and custom host stay reserved for its namespace this
    # long (a GitOps delete-and-recreate keeps them); kept in ConfigMap RESERVATIONS.
    claim_grace_seconds: float = 86400.0
    # A renamed portal's old subdomain redirects (308) to the new one this long, held by
    # the portal meanwhile (no one else can take it), then it is released (7 days).
    rename_grace_seconds: float = 604800.0
    dns_nameservers: tuple[str, ...] = ()
    dns_port: int = 53
    dns_timeout: float = 5.0
    dns_authoritative: bool = False
    # Required: a custom host is routed and certified only once its `_portico-challenge`
    # TXT record holds the portal's token (no subdomain takeover through a dangling
    # CNAME). Optional: the CNAME alone is enough (the record is still published and
    # checked in status); for installs that predate the check, until every host has it.
    domain_ownership: str = "Required"
    # First DNS re-check after this many seconds, doubling (with jitter) up to 10 minutes.
    dns_recheck_seconds: float = 5.0
    # Where /metrics and /healthz listen: every interface in a pod, loopback for local runs.
    listen_address: str = "0.0.0.0"
    metrics_port: int = 9090
    # A scrape of /metrics must bring a bearer token the API server accepts (TokenReview)
    # for a user who may `get` the non-resource URL /metrics (SubjectAccessReview).
    metrics_auth: bool = False
    health_port: int = 8081
    log_format: str = "text"
    provision_backoff_limit: int = 1
    # A finished provisioning or translations Job is deleted (with its pods) this long
    # after it ends (ttlSecondsAfterFinished); status keeps what it did.
    job_ttl_seconds: int = 86400
    # A NetworkPolicy per portal (core/network_policy.py). Selectors are `key=value`
    # label terms: the ingress controller's namespace (required when on) and pods (empty:
    # any pod there); the cluster DNS; where the instance and the other endpoints a
    # portal's configuration names may be (address ranges, in-cluster namespaces).
    portal_network_policy: bool = False
    network_policy_ingress_namespaces: tuple[str, ...] = ()
    network_policy_ingress_pods: tuple[str, ...] = ()
    network_policy_dns_namespaces: tuple[str, ...] = ("kubernetes.io/metadata.name=kube-system",)
    network_policy_dns_pods: tuple[str, ...] = ("k8s-app=kube-dns",)
    network_policy_egress_cidrs: tuple[str, ...] = ("0.0.0.0/0", "::/0")
    network_policy_egress_namespaces: tuple[str, ...] = ()
    # Manage cert-manager Certificates for issuerRef (needs cert-manager and its RBAC).
    cert_manager: bool = False
    # The only issuers an issuerRef may name, `Kind/name` or `Kind.group/name` (comma-
    # separated in the environment; core/issuers.py); empty: none (IssuerNotAllowed).
    allowed_issuers: tuple[str, ...] = ()
    # Every portal is reconciled at least this often (drift, expiry, re-checks).
    resync_seconds: float = 300.0
    # Portals reconciled at once (never two reconciles of one portal): each spends most
    # of its time waiting on the API server's answers to its writes.
    reconcile_workers: int = 16
    # Certificates are converted in this many worker processes (certificates/isolation.py),
    # each check stopped after this much CPU time or wall-clock time.
    certificate_workers: int = 2
    certificate_cpu_seconds: int = 10
    certificate_timeout_seconds: float = 30.0
    # Converted certificates kept (one per portal with a custom domain; least recent out).
    certificate_cache_size: int = 1024
    # Progress within Configuring is batched (core/pacing.py; 0: every step is written);
    # phase changes, a new generation's first status and failures are written at once.
    status_hold_seconds: float = 10.0
    # One replica reconciles: the holder of the Lease `portico-leader` (see leader.py).
    leader_election: bool = False
    # Where the Lease lives; empty: the pod's own namespace (else `default`).
    leader_election_namespace: str = ""
    # client-go's defaults, in seconds: renew deadline < lease duration, so a leader that
    # cannot renew stops writing before the Lease may be taken over.
    leader_election_lease_duration: float = 15.0
    leader_election_renew_deadline: float = 10.0
    leader_election_retry_period: float = 2.0
    # Each runtime pod keeps up to this many interactions per analytics sink in memory while
    # the sink is slow or away; past it the oldest are dropped (and counted).
    interactions_queue_size: int = 10_000
    # The hub's SharedAccessSignature tokens the runtime mints live this long (renewed early).
    interactions_token_seconds: int = 300
    # Invitation e-mail (PortalInvitation delivery Email). No host: Email invitations
    # report MailNotConfigured. The credentials Secret ("namespace/name") holds
    # `username` and `password`; STARTTLS is used when the server offers it unless
    # mail_tls is "none", and required with "starttls"; "tls" is TLS from the first byte.
    mail_host: str = ""
    mail_port: int = 25
    mail_from: str = ""
    mail_credentials_secret: str = ""
    # The login the portals' runtimes use with the same server (password-reset e-mail):
    # "namespace/name" of a Secret with `username` and `password`, copied into each
    # portal's Secret `<portal>-mail` (pods cannot mount another namespace's Secret).
    # Empty: the runtimes send without a login.
    mail_portal_credentials_secret: str = ""
    mail_tls: str = "opportunistic"
    mail_timeout: float = 10.0
    # Redemptions are read back from the instance this often while an invitation can be
    # used; a failed delivery is retried after this many seconds, doubling up to 10 min.
    invitation_poll_seconds: float = 60.0
    invitation_retry_seconds: float = 5.0
    # Lifecycle notifications (core/notifications.py) besides the Events: e-mailed to each
    # portal's spec.administrator through the mail server above, and/or POSTed to a
    # webhook signed with HMAC-SHA256 under the key `key` of the Secret
    # "namespace/name". A failed delivery is retried after this many seconds, doubling
    # up to 10 minutes.
    notification_email: bool = False
    notification_webhook_url: str = ""
    notification_webhook_secret: str = ""
    notification_webhook_timeout: float = 10.0
    notification_retry_seconds: float = 5.0

    @property
    def own_namespace(self) -> str:
        """Where the operator keeps its own objects (the Lease, the claim reservations)."""
        return self.leader_election_namespace or pod_namespace()

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        """PORTICO_BASE_DOMAIN, PORTICO_TRIAL_DAYS, ...; explicit overrides win."""
        env = os.environ if env is None else env
        if "PORTICO_WATCH_NAMESPACES" not in env and "PORTICO_NAMESPACES" in env:
            env = {**env, "PORTICO_WATCH_NAMESPACES": env["PORTICO_NAMESPACES"]}  # deprecated
        values: dict[str, object] = {}
        for f in fields(cls):
            name = "PORTICO_" + f.name.upper()
            raw = env.get(name)
            if raw is not None:
                values[f.name] = _parse(name, raw, f.default)
        values.update({k: v for k, v in overrides.items() if v is not None})
        settings = cls(**values)  # type: ignore[arg-type]
        if settings.image_pull_policy not in ("Always", "IfNotPresent", "Never"):
            raise SettingsError(
                f"PORTICO_IMAGE_PULL_POLICY={settings.image_pull_policy!r}: "
                "use Always, IfNotPresent or Never"
            )
        if settings.ingress_controller not in ("", "traefik", "ingress-nginx"):
            raise SettingsError(
                f"PORTICO_INGRESS_CONTROLLER={settings.ingress_controller!r}: use traefik, "
                "ingress-nginx, or leave it empty for any other controller"
            )
        middleware = settings.pages_error_middleware
        if middleware and (middleware.count("/") != 1 or not all(middleware.split("/"))):
            raise SettingsError(
                f"PORTICO_PAGES_ERROR_MIDDLEWARE={middleware!r}: use NAMESPACE/NAME"
            )
        if settings.domain_ownership not in ("Required", "Optional"):
            raise SettingsError(
                f"PORTICO_DOMAIN_OWNERSHIP={settings.domain_ownership!r}: use Required or Optional"
            )
        if settings.log_format not in ("text", "json"):
            raise SettingsError(f"PORTICO_LOG_FORMAT={settings.log_format!r}: use text or json")
        if settings.trial_days <= 0 or settings.resync_seconds <= 0:
            raise SettingsError("PORTICO_TRIAL_DAYS and PORTICO_RESYNC_SECONDS must be positive")
        _check_network_policy(settings)
        if settings.job_ttl_seconds < 60:
            raise SettingsError("PORTICO_JOB_TTL_SECONDS must be at least 60")
        if settings.status_hold_seconds < 0:
            raise SettingsError("PORTICO_STATUS_HOLD_SECONDS must not be negative")
        if settings.host_policy and settings.release.count("/") != 1:
            raise SettingsError(
                f"PORTICO_RELEASE={settings.release!r}: with PORTICO_HOST_POLICY, "
                "use NAMESPACE/NAME (the chart sets both)"
            )
        if settings.claim_grace_seconds < 0 or settings.rename_grace_seconds < 0:
            raise SettingsError(
                "PORTICO_CLAIM_GRACE_SECONDS and PORTICO_RENAME_GRACE_SECONDS must not be negative"
            )
        if not 60 <= settings.instance_token_ttl_seconds <= 86400:
            raise SettingsError("PORTICO_INSTANCE_TOKEN_TTL_SECONDS must be from 60 to 86400")
        if settings.interactions_queue_size < 1 or settings.interactions_token_seconds < 30:
            raise SettingsError(
                "PORTICO_INTERACTIONS_QUEUE_SIZE must be at least 1 and "
                "PORTICO_INTERACTIONS_TOKEN_SECONDS at least 30"
            )
        if settings.mail_tls not in ("opportunistic", "starttls", "tls", "none"):
            raise SettingsError(
                f"PORTICO_MAIL_TLS={settings.mail_tls!r}: use opportunistic, starttls, tls or none"
            )
        if settings.mail_host and "@" not in settings.mail_from:
            raise SettingsError(
                "PORTICO_MAIL_FROM must be an e-mail address when a mail host is set"
            )
        for variable, secret in (
            ("PORTICO_MAIL_CREDENTIALS_SECRET", settings.mail_credentials_secret),
            ("PORTICO_MAIL_PORTAL_CREDENTIALS_SECRET", settings.mail_portal_credentials_secret),
        ):
            if secret and (secret.count("/") != 1 or not all(secret.split("/"))):
                raise SettingsError(f"{variable}={secret!r}: use NAMESPACE/NAME")
        if settings.invitation_poll_seconds <= 0 or settings.invitation_retry_seconds <= 0:
            raise SettingsError(
                "PORTICO_INVITATION_POLL_SECONDS and PORTICO_INVITATION_RETRY_SECONDS "
                "must be positive"
            )
        _check_notifications(settings)
        bad = [e for e in settings.allowed_issuers if issuers.parse_entry(e) is None]
        if bad:
            raise SettingsError(
                f"PORTICO_ALLOWED_ISSUERS: {', '.join(bad)}: write each as Kind/name or "
                "Kind.group/name (Kind: Issuer or ClusterIssuer; name or *)"
            )
        if settings.reconcile_workers < 1:
            raise SettingsError("PORTICO_RECONCILE_WORKERS must be at least 1")
        if min(settings.certificate_workers, settings.certificate_cpu_seconds) < 1 or (
            settings.certificate_timeout_seconds <= 0 or settings.certificate_cache_size < 1
        ):
            raise SettingsError(
                "PORTICO_CERTIFICATE_WORKERS, _CPU_SECONDS, _TIMEOUT_SECONDS and _CACHE_SIZE "
                "must be positive"
            )
        lease, renew, retry = (
            settings.leader_election_lease_duration,
            settings.leader_election_renew_deadline,
            settings.leader_election_retry_period,
        )
        if not (lease > renew > retry * 1.2 and retry > 0):
            raise SettingsError(
                "PORTICO_LEADER_ELECTION_*: need LEASE_DURATION > RENEW_DEADLINE > "
                f"1.2 x RETRY_PERIOD > 0 (got {lease}, {renew}, {retry})"
            )
        return settings


class SettingsError(ValueError):
    """A setting that cannot be used; the message names the variable."""


def _check_notifications(settings: Settings) -> None:
    if settings.notification_email and not settings.mail_host:
        raise SettingsError(
            "PORTICO_NOTIFICATION_EMAIL needs the mail server: set PORTICO_MAIL_HOST and "
            "PORTICO_MAIL_FROM"
        )
    url, secret = settings.notification_webhook_url, settings.notification_webhook_secret
    if url and not url.startswith(("https://", "http://")):
        raise SettingsError(f"PORTICO_NOTIFICATION_WEBHOOK_URL={url!r}: use an http(s) URL")
    if url and (secret.count("/") != 1 or not all(secret.split("/"))):
        raise SettingsError(
            "PORTICO_NOTIFICATION_WEBHOOK_SECRET must be NAMESPACE/NAME of the Secret whose "
            "key `key` signs the webhook's requests when PORTICO_NOTIFICATION_WEBHOOK_URL is set"
        )
    if settings.notification_retry_seconds <= 0 or settings.notification_webhook_timeout <= 0:
        raise SettingsError(
            "PORTICO_NOTIFICATION_RETRY_SECONDS and PORTICO_NOTIFICATION_WEBHOOK_TIMEOUT "
            "must be positive"
        )


def _check_network_policy(settings: Settings) -> None:
    for name in (
        "network_policy_ingress_namespaces",
        "network_policy_ingress_pods",
        "network_policy_dns_namespaces",
        "network_policy_dns_pods",
        "network_policy_egress_namespaces",
    ):
        bad = [t for t in getattr(settings, name) if "=" not in t or not t.split("=", 1)[0]]
        if bad:
            raise SettingsError(f"PORTICO_{name.upper()}={','.join(bad)!r}: use key=value,...")
    if settings.portal_network_policy and not settings.network_policy_ingress_namespaces:
        raise SettingsError(
            "PORTICO_NETWORK_POLICY_INGRESS_NAMESPACES must name the labels of the ingress "
            "controller's namespace (e.g. kubernetes.io/metadata.name=traefik) when "
            "PORTICO_PORTAL_NETWORK_POLICY is on: without it no visitor could reach a portal"
        )


def _parse(name: str, raw: str, default: object) -> object:
    """Read RAW as the type of DEFAULT; a bad value is a one-line error naming NAME."""
    if isinstance(default, bool):
        if raw.strip().lower() not in ("1", "true", "yes", "0", "false", "no", ""):
            raise SettingsError(f"{name}={raw!r}: expected true or false")
        return raw.strip().lower() in ("1", "true", "yes")
    if isinstance(default, int | float):
        try:
            return type(default)(raw)
        except ValueError:
            kind = "a whole number" if isinstance(default, int) else "a number"
            raise SettingsError(f"{name}={raw!r}: expected {kind}") from None
    if isinstance(default, tuple):
        return tuple(x.strip() for x in raw.split(",") if x.strip())
    return raw
