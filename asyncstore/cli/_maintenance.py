"""cleanup and repair: removing leftovers of interrupted writes, filling replicas."""

from __future__ import annotations

from typing import Any

import click

from asyncstore.cli._common import emit_json, parse_target, run, state
from asyncstore.config import public_spec


@click.command()
@click.argument("store")
@click.option("--prefix", default="", help="Only objects whose keys start with this.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def repair(store: str, prefix: str, as_json: bool) -> None:
    """Copy to a replicated store's replicas what its primary has and they lack.

    Objects a replica already holds (available, same size) are skipped, so repeating the
    command is cheap and an interrupted repair resumes.
    """
    spec = parse_target(store).store

    async def main() -> dict[str, Any]:
        async with state().open(spec) as module:
            method = getattr(module, "repair", None)
            if method is None:
                raise click.ClickException(
                    f"store {public_spec(spec)!r} ({type(module).__name__}) has nothing to repair; "
                    "repair works on replicate stores"
                )
            counts: dict[str, Any] = await method(prefix)
            return counts

    counts = run(main)
    if as_json:
        emit_json(counts)
    else:
        click.echo(", ".join(f"{value} {name}" for name, value in counts.items()))
    if counts.get("failed"):
        raise SystemExit(1)


@click.command()
@click.argument("store")
@click.option(
    "--older-than",
    type=click.FloatRange(min=0),
    default=3600.0,
    show_default=True,
    help="Only leftovers older than this many seconds (writes in flight stay untouched).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def cleanup(store: str, older_than: float, as_json: bool) -> None:
    """Remove what interrupted writes left behind in a store.

    Temporary files of a filesystem store, in-progress multipart uploads of an S3 store,
    unreferenced content of a dedup store; complete objects are never touched. Run it from
    a maintenance job; use --older-than 0 only when nothing else writes to the store.
    """
    spec = parse_target(store).store

    async def main() -> dict[str, int]:
        async with state().open(spec) as module:
            return await module.cleanup(older_than=older_than)

    counts = run(main)
    if as_json:
        emit_json(counts)
    elif not counts:
        click.echo("nothing to clean up")
    else:
        click.echo(", ".join(f"{value} {name}" for name, value in sorted(counts.items())))
