"""Commands that describe: plugins, stores, stats, caps."""

from __future__ import annotations

from typing import Any

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from asyncstore.cli._common import emit_json, parse_target, run, state
from asyncstore.cli._transforms import transform_rows
from asyncstore.registry import Registry, default_registry


def _plugin_rows(registry: Registry, kind: str, verbose: bool) -> list[dict[str, Any]]:
    rows = []
    for info in registry.plugins():
        row: dict[str, Any] = {
            "kind": kind,
            "name": info.name,
            "target": info.target,
            "distribution": info.distribution,
            "version": info.version,
        }
        if info.conflicts:
            row["error"] = "also claimed by " + ", ".join(info.conflicts)
        elif verbose and kind == "module":
            description = registry.describe(info.name)
            if description.error:
                row["error"] = description.error
            else:
                row["summary"] = description.summary
                row["capabilities"] = description.capabilities
                row["options"] = [
                    {
                        "name": o.name,
                        "required": o.required,
                        "default": o.default,
                        "type": o.annotation,
                        "description": o.description,
                    }
                    for o in description.options
                ]
        rows.append(row)
    return rows


@click.command()
@click.option("--verbose", "-v", is_flag=True, help="Import each plugin and describe it.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def plugins(verbose: bool, as_json: bool) -> None:
    """List installed storage modules and transforms (without importing them)."""
    rows = _plugin_rows(default_registry(), "module", verbose)
    rows += transform_rows(verbose)
    if as_json:
        emit_json(rows)
        return
    table = Table("kind", "name", "distribution", "version", "target", box=None)
    if verbose:
        table.add_column("summary / options")
    for row in rows:
        cells = [
            escape(str(row[k] or "-"))
            for k in ("kind", "name", "distribution", "version", "target")
        ]
        if verbose:
            if "error" in row:
                cells.append(f"[red]broken: {escape(row['error'])}[/red]")
            else:
                options = ", ".join(
                    o["name"] + ("" if o["required"] else "?") for o in row.get("options", [])
                )
                cells.append(escape(f"{row.get('summary') or ''}\noptions: {options or 'none'}"))
        elif "error" in row:
            cells[-1] += f"  [red]({escape(row['error'])})[/red]"
        table.add_row(*cells)
    Console(soft_wrap=True).print(table)


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def stores(as_json: bool) -> None:
    """List the named stores of the config file, secrets masked."""
    config = state().config
    where = str(config.path) if config.path else None
    named = {
        name: {"module": store.masked_module(), **store.masked_options()}
        for name, store in sorted(config.stores.items())
    }
    if as_json:
        emit_json({"config": where, "stores": named})
        return
    click.echo(f"config: {where or 'none found'}")
    for name, options in named.items():
        details = ", ".join(f"{k}={v}" for k, v in options.items() if k != "module")
        click.echo(f"  {name:<16} {options['module']:<10} {details}")


@click.command()
@click.argument("store")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def stats(store: str, as_json: bool) -> None:
    """Show a store's statistics (capacity and module-specific figures)."""
    spec = parse_target(store).store

    async def main() -> dict[str, Any]:
        async with state().open(spec) as module:
            return await module.statistics()

    _print_mapping(run(main), as_json)


@click.command()
@click.argument("store")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def caps(store: str, as_json: bool) -> None:
    """Show a store's capabilities."""
    spec = parse_target(store).store

    async def main() -> dict[str, Any]:
        async with state().open(spec) as module:
            return module.capabilities()

    _print_mapping(run(main), as_json)


def _print_mapping(data: dict[str, Any], as_json: bool, indent: str = "") -> None:
    if as_json:
        emit_json(data)
        return
    for name, value in data.items():
        if isinstance(value, dict):
            click.echo(f"{indent}{name}:")
            _print_mapping(value, False, indent + "  ")
        else:
            click.echo(f"{indent}{name}: {value}")
