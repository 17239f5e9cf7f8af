"""The ``asyncstore`` command line.

Every command takes stores as a config-file name or a URL, and objects as ``STORE:KEY`` or
``URL//KEY`` (``s3://bucket/KEY`` also works where the URL has a host). Errors print as one
line and exit with status 1 (``--debug`` shows the traceback); usage errors exit with 2.

Commands are imported only when they run: each is listed in `COMMANDS` with its module and
its one-line summary (the first sentence of its docstring; a test keeps the two equal), so
``asyncstore --help`` and ``asyncstore plugins`` never load what other commands need.
"""

from __future__ import annotations

import click

from asyncstore import __version__
from asyncstore.cli._common import State
from asyncstore.cli._lazy import LazyCommand, LazyGroup

__all__ = ["COMMANDS", "cli", "main"]

# A new command: write it in a module of this package (importing at the top whatever it
# needs), then add one line here.
COMMANDS = {
    "plugins": LazyCommand(
        "asyncstore.cli._info:plugins",
        "List installed storage modules and transforms (without importing them).",
    ),
    "stores": LazyCommand(
        "asyncstore.cli._info:stores", "List the named stores of the config file, secrets masked."
    ),
    "put": LazyCommand(
        "asyncstore.cli._objects:put",
        "Store a file (or standard input, with -) in a store and print its handle.",
    ),
    "get": LazyCommand(
        "asyncstore.cli._objects:get",
        "Fetch an object into a file (default: its name) or standard output (-).",
    ),
    "cat": LazyCommand("asyncstore.cli._objects:cat", "Write an object to standard output."),
    "ls": LazyCommand("asyncstore.cli._objects:ls", "List objects."),
    "stat": LazyCommand("asyncstore.cli._objects:stat", "Describe an object."),
    "rm": LazyCommand("asyncstore.cli._objects:rm", "Delete objects."),
    "cp": LazyCommand("asyncstore.cli._copy:cp", "Copy objects from any store to any store."),
    "sync": LazyCommand(
        "asyncstore.cli._copy:sync",
        "Copy every object under SOURCE's prefix that DESTINATION lacks or holds differently.",
    ),
    "stats": LazyCommand(
        "asyncstore.cli._info:stats",
        "Show a store's statistics (capacity and module-specific figures).",
    ),
    "caps": LazyCommand("asyncstore.cli._info:caps", "Show a store's capabilities."),
    "check": LazyCommand(
        "asyncstore.cli._check:check",
        "Run the conformance suite against a live store, in a scratch prefix it cleans up.",
    ),
    "repair": LazyCommand(
        "asyncstore.cli._maintenance:repair",
        "Copy to a replicated store's replicas what its primary has and they lack.",
    ),
    "cleanup": LazyCommand(
        "asyncstore.cli._maintenance:cleanup",
        "Remove what interrupted writes left behind in a store.",
    ),
    "new-plugin": LazyCommand(
        "asyncstore.cli._scaffold:new_plugin", "Scaffold a backend distribution."
    ),
    "run": LazyCommand(
        "asyncstore.cli._transforms:run_command",
        "Run TRANSFORM on stored objects; store what it writes, or print it.",
    ),
    "new-transform": LazyCommand(
        "asyncstore.cli._scaffold_transform:new_transform", "Scaffold a transform distribution."
    ),
}


@click.group(
    cls=LazyGroup,
    lazy_commands=COMMANDS,
    context_settings={"help_option_names": ["-h", "--help"]},
)
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


def main() -> None:
    """Run the command line."""
    cli(prog_name="asyncstore")
