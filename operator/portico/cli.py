"""The `portico` command line: one group, each subcommand in its own module."""

from __future__ import annotations

import click


@click.group()
@click.version_option(package_name="portico")
def main() -> None:
    """Portico: self-service web portals on Kubernetes."""


# Subcommands register themselves below (one line each).
from portico.plan import plan_command  # noqa: E402

main.add_command(plan_command)
