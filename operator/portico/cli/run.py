"""`portico run`: the operator process (Kopf underneath)."""

from __future__ import annotations

import dataclasses
import logging
import os
import sys

import click
from pythonjsonlogger.json import JsonFormatter

from portico.settings import Settings, SettingsError, pod_namespace


def json_formatter() -> logging.Formatter:
    """One JSON object per line: time, level, logger, message, any `extra` fields, and the
    traceback (`exc_info`) of a logged exception."""
    return JsonFormatter(
        "%(asctime)s %(levelname)s %(name)s %(message)s",
        rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
        datefmt="%Y-%m-%dT%H:%M:%S%z",
    )


def configure_logging(log_format: str, verbose: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        json_formatter()
        if log_format == "json"
        else logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    # Kopf's debug output includes object bodies; Secrets must never reach a log.
    logging.getLogger("kopf").setLevel(logging.INFO)
    # One line per watch event (every Secret, every Deployment status) drowns the rest.
    logging.getLogger("kopf.objects").setLevel(logging.DEBUG if verbose else logging.WARNING)
    for noisy in ("urllib3", "kubernetes", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


@click.command("run")
@click.option("--kubeconfig", envvar="KUBECONFIG", help="Kubeconfig (default: in-cluster).")
@click.option("--base-domain", help="Portal URLs are https://SUBDOMAIN.BASE_DOMAIN.")
@click.option("-n", "--namespace", "namespaces", multiple=True, help="Watch only these namespaces.")
@click.option("--log-format", type=click.Choice(["text", "json"]))
@click.option("--metrics-port", type=int)
@click.option("--health-port", type=int)
@click.option("--resync-seconds", type=float)
@click.option("-v", "--verbose", is_flag=True)
def run_command(
    kubeconfig: str | None,
    base_domain: str | None,
    namespaces: tuple[str, ...],
    log_format: str | None,
    metrics_port: int | None,
    health_port: int | None,
    resync_seconds: float | None,
    verbose: bool,
) -> None:
    """Run the operator. Settings come from PORTICO_* variables; flags override them."""
    import kopf
    from kopf._core.engines.peering import Identity

    from portico.controller import handlers
    from portico.controller.forgetful import ForgetfulMemories
    from portico.controller.leader import own_identity

    try:
        settings = Settings.from_env(
            base_domain=base_domain,
            watch_namespaces=namespaces or None,
            log_format=log_format,
            metrics_port=metrics_port,
            health_port=health_port,
            resync_seconds=resync_seconds,
        )
        if not settings.instance_credentials_namespaces:  # the operator's own namespace
            settings = dataclasses.replace(
                settings, instance_credentials_namespaces=(pod_namespace(),)
            )
    except SettingsError as err:
        click.echo(f"error: {err}", err=True)
        sys.exit(2)
    configure_logging(settings.log_format, verbose)
    if kubeconfig:
        os.environ["KUBECONFIG"] = kubeconfig  # Kopf's own login reads it from there
    handlers.configure(settings, kubeconfig)
    kopf.run(
        clusterwide=not settings.watch_namespaces,
        namespaces=list(settings.watch_namespaces),
        # No Kopf peering: it pauses every replica of equal priority. One replica
        # reconciles by leader election instead (leader.py).
        standalone=True,
        # Given, so Kopf does not derive one from the login name: the image's uid 65532
        # has no passwd entry, and getpass.getuser() fails on it (seen on the real node).
        identity=Identity(own_identity()),
        liveness_endpoint=f"http://{settings.listen_address}:{settings.health_port}/healthz",
        memories=ForgetfulMemories(),
    )
