"""run: a transform on stored objects, into stores or standard output.

Also the rows ``plugins`` shows for transforms.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from contextlib import AsyncExitStack
from typing import Any

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from asyncstore.cli._common import emit_json, human_size, parse_target, require_key, run, state
from asyncstore.config import public_spec
from asyncstore.module import StorageModule

PROGRESS_FROM = 8 << 20
"""Inputs of at least this many bytes in all get a progress bar (on a terminal)."""

_SIZE = re.compile(r"(\d+)\s*([kmgt]?)(i?b)?", re.IGNORECASE)


def parse_size(text: str) -> int:
    """Parse a byte count such as ``536870912``, ``512M`` or ``1GiB``.

    Raises:
        click.BadParameter: If the text is not a size.
    """
    match = _SIZE.fullmatch(text.strip())
    if not match:
        raise click.BadParameter(f"{text!r} is not a size (bytes, or with K, M, G, T)")
    power = " kmgt".index((match.group(2) or " ").lower())
    return int(match.group(1)) << (10 * power)


def _object(text: str) -> tuple[str, str]:
    target = parse_target(text)
    return target.store, require_key(target)


def _params(pairs: tuple[str, ...]) -> dict[str, str]:
    params: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise click.BadParameter(f"{pair!r} is not NAME=VALUE", param_hint="-p")
        params[name] = value
    return params


def transform_rows(verbose: bool) -> list[dict[str, Any]]:
    """The rows ``plugins`` shows for transforms; with ``verbose``, each one imported."""
    from asyncstore.transforms import default_transforms

    registry = default_transforms()
    rows: list[dict[str, Any]] = []
    for info in registry.plugins():
        row: dict[str, Any] = {
            "kind": "transform",
            "name": info.name,
            "target": info.target,
            "distribution": info.distribution,
            "version": info.version,
        }
        if info.conflicts:
            row["error"] = "also claimed by " + ", ".join(info.conflicts)
        elif verbose:
            description = registry.describe(info.name)
            if description.error:
                row["error"] = description.error
            else:
                row["summary"] = description.summary
                row["inputs"] = description.inputs
                row["outputs"] = description.outputs
                row["options"] = [
                    {
                        "name": name,
                        "required": False,
                        "default": None,
                        "type": "str",
                        "description": text,
                    }
                    for name, text in (description.params or {}).items()
                ]
        rows.append(row)
    return rows


@click.command(name="run")
@click.argument("transform")
@click.argument("inputs", nargs=-1, required=True, metavar="STORE:KEY...")
@click.option(
    "-p",
    "--param",
    "params",
    multiple=True,
    metavar="NAME=VALUE",
    help="A parameter of the transform (repeatable).",
)
@click.option(
    "-o",
    "--output",
    "outputs",
    multiple=True,
    metavar="STORE:KEY|-",
    help="Where an output goes (repeatable, in order); - is standard output (the default).",
)
@click.option(
    "--isolation",
    type=click.Choice(["inline", "process"]),
    default="inline",
    show_default=True,
    help="Run in this process, or in a worker process.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=60.0,
    show_default=True,
    help="Process isolation: seconds the worker may stay silent.",
)
@click.option(
    "--memory-limit",
    default="1G",
    show_default=True,
    metavar="SIZE",
    help="Process isolation: the worker's memory limit (bytes, or 512M, 2G...).",
)
@click.option(
    "--progress/--no-progress",
    default=None,
    help="Show progress (default: on a terminal, for inputs of 8 MiB or more).",
)
@click.option("--json", "as_json", is_flag=True, help="Print what was written as JSON.")
def run_command(
    transform: str,
    inputs: tuple[str, ...],
    params: tuple[str, ...],
    outputs: tuple[str, ...],
    isolation: str,
    timeout: float,
    memory_limit: str,
    progress: bool | None,
    as_json: bool,
) -> None:
    """Run TRANSFORM on stored objects; store what it writes, or print it.

    Each output to a store is stored in one atomic write, and only if the transform
    succeeds. Give one -o per output the transform writes, in order.
    """
    given = _params(params)
    limit = parse_size(memory_limit)
    sources = [_object(text) for text in inputs]
    targets: list[tuple[str, str] | None] = [
        None if text == "-" else _object(text) for text in outputs or ("-",)
    ]
    if as_json and None in targets:
        raise click.UsageError("--json prints to standard output: give every output a -o STORE:KEY")

    async def main() -> Any:
        from asyncstore.transforms import InputStream, run_transform
        from asyncstore.transforms._execute import check_call, resolve

        # The transform, its parameters and the number of outputs are checked before any I/O.
        instance = resolve(transform)
        check_call(instance, len(sources), len(targets), given)
        async with AsyncExitStack() as stack:
            opened: dict[str, StorageModule] = {}

            async def store_of(spec: str) -> StorageModule:
                if spec not in opened:
                    opened[spec] = await stack.enter_async_context(state().open(spec))
                return opened[spec]

            streams = []
            for spec, key in sources:
                store = await store_of(spec)
                stream = await store.get_read_stream(key)
                stack.push_async_callback(stream.aclose)
                streams.append((store, stream))
            total = sum(stream.size for _, stream in streams)
            show = (
                progress
                if progress is not None
                else (sys.stderr.isatty() and total >= PROGRESS_FROM)
            )
            bar = _bar(show, total)
            stack.enter_context(bar)
            task = bar.add_task(transform, total=total)
            advance: Callable[[int], None] = lambda count: bar.advance(task, count)  # noqa: E731
            ins = [
                InputStream.from_read_stream(stream, store=store.name, on_read=advance)
                for store, stream in streams
            ]
            outs: list[object] = []
            for target in targets:
                if target is None:
                    outs.append(sys.stdout.buffer)
                else:
                    outs.append((await store_of(target[0]), target[1]))
            return await run_transform(
                instance,
                inputs=ins,
                outputs=outs,
                params=given,
                isolation=isolation,
                timeout=timeout,
                memory_limit=limit,
            )

    result = run(main)
    rows = []
    for target, output in zip(targets, result.outputs, strict=True):
        rows.append(
            {
                "output": "-" if target is None else f"{public_spec(target[0])}:{target[1]}",
                "size": output.size,
                "content_type": output.content_type,
                "metadata": dict(output.metadata),
            }
        )
    if as_json:
        emit_json({"transform": result.transform, "bytes_read": result.bytes_read, "outputs": rows})
        return
    for row in rows:
        meta = " ".join(f"{k}={v}" for k, v in row["metadata"].items())
        click.echo(
            f"{result.transform}: wrote {human_size(row['size'])} to {row['output']}"
            + (f" ({row['content_type']})" if row["content_type"] else "")
            + (f"; metadata: {meta}" if meta else ""),
            err=True,
        )


def _bar(show: bool, total: int) -> Progress:
    columns = (
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        DownloadColumn(binary_units=True),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    console = Console(stderr=True, force_terminal=show or None)
    return Progress(*columns, console=console, disable=not show, transient=False)
