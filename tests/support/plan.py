"""`portico plan` run in-process, as the tests of its command line call it."""

from __future__ import annotations

import subprocess

from click.testing import CliRunner

from portico.cli import main


def plan(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """In-process through click (fast); `test_console_script` covers the real binary."""
    result = CliRunner().invoke(
        main, ["plan", "--base-domain", "portals.example.com", *args], input=stdin
    )
    return subprocess.CompletedProcess(args, result.exit_code, result.stdout, result.stderr)
