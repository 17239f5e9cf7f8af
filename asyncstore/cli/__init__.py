"""The ``asyncstore`` command line.

Every command takes stores as a config-file name or a URL, and objects as ``STORE:KEY`` or
``URL//KEY`` (``s3://bucket/KEY`` also works where the URL has a host). Errors print as one
line and exit with status 1 (``--debug`` shows the traceback); usage errors exit with 2.
"""

from __future__ import annotations

import click

from asyncstore import __version__
from asyncstore.cli._check import check
from asyncstore.cli._common import ErrorHandlingGroup, State
from asyncstore.cli._copy import cp, sync
from asyncstore.cli._info import caps, plugins, stats, stores
from asyncstore.cli._maintenance import cleanup, repair
from asyncstore.cli._objects import cat, get, ls, put, rm, stat
from asyncstore.cli._scaffold import new_plugin
from asyncstore.cli._scaffold_transform import new_transform
from asyncstore.cli._transforms import run_command

__all__ = ["cli", "main"]


@click.group(cls=ErrorHandlingGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    envvar="ASYNCSTORE_CONFIG",
    help="The config file (default: $ASYNCSTORE_CONFIG, ./asyncstore.toml, the user config dir).",
)
@click.option("--debug", is_flag=True, help="Show tracebacks of errors.")
@click.version_option(__version__, prog_name="asyncstore")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None, debug: bool) -> None:
    """Work with asyncstore stores: list plugins, move objects, check a backend."""
    ctx.obj = State(config_path, debug)


for command in (
    plugins,
    stores,
    put,
    get,
    cat,
    ls,
    stat,
    rm,
    cp,
    sync,
    stats,
    caps,
    check,
    repair,
    cleanup,
    new_plugin,
    run_command,
    new_transform,
):
    cli.add_command(command)


def main() -> None:
    """Run the command line."""
    cli(prog_name="asyncstore")
