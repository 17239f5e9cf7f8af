"""The command line starts fast: commands are imported only when they run, and only the
commands that draw progress bars load rich (timings are measured in bench/import_time.py)."""

from __future__ import annotations

import importlib
import json
import pkgutil
import subprocess
import sys

import click

import asyncstore.cli
from asyncstore.cli import COMMANDS, cli


def loaded_by(*argv: str) -> set[str]:
    """Run the command line in a fresh interpreter; return the modules it imported."""
    script = (
        "import json, sys\n"
        "from asyncstore.cli import main\n"
        f"sys.argv = ['asyncstore', *{list(argv)!r}]\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    return set(json.loads(result.stdout.splitlines()[-1]))


def test_every_command_is_listed_with_its_own_summary() -> None:
    defined = {}
    for info in pkgutil.iter_modules(asyncstore.cli.__path__, "asyncstore.cli."):
        module = importlib.import_module(info.name)
        for value in vars(module).values():
            callback = getattr(value, "callback", None)
            if isinstance(value, click.Command) and callback.__module__ == info.name:
                defined[value.name] = f"{info.name}:{callback.__name__}"
    assert {name: lazy.target for name, lazy in COMMANDS.items()} == defined
    for name, lazy in COMMANDS.items():
        command = cli.get_command(click.Context(cli), name)
        assert command is not None
        assert lazy.summary == command.get_short_help_str(200), name


def test_help_imports_no_command() -> None:
    modules = loaded_by("--help")
    commands = {lazy.target.partition(":")[0] for lazy in COMMANDS.values()}
    assert not modules & commands
    for heavy in ("rich", "asyncstore.config", "asyncstore.registry", "importlib_metadata"):
        assert heavy not in modules, heavy


def test_plugins_imports_its_own_command_only_and_no_rich() -> None:
    modules = loaded_by("plugins", "--json")
    assert "asyncstore.cli._info" in modules
    others = {lazy.target.partition(":")[0] for lazy in COMMANDS.values()} - {
        "asyncstore.cli._info"
    }
    assert not modules & others
    assert not {m for m in modules if m == "rich" or m.startswith("rich.")}


def test_a_command_that_draws_progress_loads_rich() -> None:
    assert "rich.progress" in loaded_by("cp", "--help")
