"""A click group whose commands are imported only when one runs, so start-up stays fast.

``asyncstore --help`` lists every command from its summary alone; ``asyncstore plugins``
imports the plugins command's module and nothing else. A command module may therefore import
what it needs (``rich.progress`` for a progress bar, the config machinery) at its top: only
its own commands pay for it.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping

import click

from asyncstore.cli._common import ErrorHandlingGroup

__all__ = ["LazyCommand", "LazyGroup"]


class LazyCommand:
    """Where a command lives (``"package.module:function"``) and its one-line summary."""

    def __init__(self, target: str, summary: str) -> None:
        self.target = target
        self.summary = summary

    def load(self) -> click.Command:
        """Import the command's module and return the command."""
        module, _, attribute = self.target.partition(":")
        command = getattr(importlib.import_module(module), attribute)
        if not isinstance(command, click.Command):  # pragma: no cover - a wrong table entry
            raise TypeError(f"{self.target} is not a click command")
        return command


class LazyGroup(ErrorHandlingGroup):
    """An `ErrorHandlingGroup` that imports a command's module only when the command is used.

    Args:
        lazy_commands: Command name -> `LazyCommand`.
        **kwargs: What `click.Group` takes.
    """

    def __init__(self, *args: object, lazy_commands: Mapping[str, LazyCommand], **kwargs: object):
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.lazy_commands = dict(lazy_commands)

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Return every command name, sorted, without importing any command."""
        return sorted({*super().list_commands(ctx), *self.lazy_commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """Return a command, importing its module on first use."""
        command = super().get_command(ctx, cmd_name)
        if command is None and cmd_name in self.lazy_commands:
            command = self.lazy_commands[cmd_name].load()
            self.add_command(command, cmd_name)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """List the commands with their summaries, importing none of them."""
        rows = []
        for name in self.list_commands(ctx):
            lazy = self.lazy_commands.get(name)
            if lazy is not None and name not in self.commands:
                rows.append((name, lazy.summary))
                continue
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, command.get_short_help_str(formatter.width)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)
