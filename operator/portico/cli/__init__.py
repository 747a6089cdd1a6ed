"""The `portico` command line: one group, each subcommand in its own module."""

from __future__ import annotations

from importlib import metadata

import click


@click.group()
@click.version_option(package_name="portico")
def main() -> None:
    """Portico: self-service web portals on Kubernetes."""


# Subcommands register themselves below (one line each).
from portico.cli.plan import plan_command  # noqa: E402

main.add_command(plan_command)
from portico.cli.domain import check_domain_command, inspect_cert_command  # noqa: E402

main.add_command(check_domain_command)
main.add_command(inspect_cert_command)
from portico.cli.run import run_command  # noqa: E402

main.add_command(run_command)
from portico.cli.portal import (  # noqa: E402
    restart_command,
    rotate_session_keys_command,
    status_command,
)

main.add_command(restart_command)
main.add_command(rotate_session_keys_command)
main.add_command(status_command)
from portico.cli.doctor import doctor_command  # noqa: E402

main.add_command(doctor_command)


@click.group()
@click.version_option(package_name="portico")
def kubectl_main() -> None:
    """kubectl portico: Portico's portal commands as a kubectl plugin (the `kubectl-portico`
    executable on PATH). The kubeconfig is kubectl's: KUBECONFIG, else ~/.kube/config."""


# The commands about one portal (and `plan`); `run` and `dev` stay with `portico`.
for _command in (
    doctor_command,
    status_command,
    restart_command,
    rotate_session_keys_command,
    plan_command,
):
    kubectl_main.add_command(_command)


# Commands of other distributions (portico-dev's `portico dev`) come through an entry
# point group, so the operator's package neither contains nor imports them.
COMMANDS_GROUP = "portico.commands"
for _entry in metadata.entry_points(group=COMMANDS_GROUP):
    _command = _entry.load()
    if isinstance(_command, click.Command):
        main.add_command(_command, _entry.name)
