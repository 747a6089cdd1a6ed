"""`portico dev` reaches the operator's command line through an entry point, not an import."""

from __future__ import annotations

import subprocess
import sys
from importlib import metadata
from pathlib import Path

from portico.cli import COMMANDS_GROUP, main
from portico_dev.commands import dev

PORTICO = str(Path(sys.executable).with_name("portico"))


def test_portico_dev_registers_its_group_and_the_cli_loads_it() -> None:
    (entry,) = [e for e in metadata.entry_points(group=COMMANDS_GROUP) if e.name == "dev"]
    assert entry.value == "portico_dev.commands:dev"
    assert entry.dist is not None and entry.dist.name == "portico-dev"
    assert main.commands["dev"] is dev


def test_portico_dev_on_the_command_line() -> None:
    result = subprocess.run(
        [PORTICO, "dev", "images", "--help"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "--import" in result.stdout and "standin" in result.stdout


def test_the_operator_runs_without_portico_dev() -> None:
    """What the operator's image has: `portico` with no `portico_dev` importable at all."""
    blocker = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'portico_dev':\n"
        "            raise ModuleNotFoundError(name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "from importlib import metadata\n"
        "real = metadata.entry_points\n"
        "metadata.entry_points = lambda **kw: [\n"
        "    e for e in real(**kw) if e.group != 'portico.commands']\n"
        "from portico.cli import main\n"
        "main(['--help'])\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", blocker], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "plan" in result.stdout and "run" in result.stdout and " dev " not in result.stdout


def test_kubectl_portico_is_installed_with_the_portal_commands() -> None:
    """The kubectl plugin convention: an executable `kubectl-portico` on PATH."""
    (entry,) = [
        e for e in metadata.entry_points(group="console_scripts") if e.name == "kubectl-portico"
    ]
    assert entry.value == "portico.cli:kubectl_main"
    plugin = Path(sys.executable).with_name("kubectl-portico")
    result = subprocess.run([str(plugin), "--help"], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    for command in ("doctor", "status", "restart", "plan"):
        assert f"  {command} " in result.stdout, result.stdout
    assert " run " not in result.stdout and " dev " not in result.stdout
