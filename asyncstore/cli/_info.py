"""Commands that describe: plugins, stores, stats, caps."""

from __future__ import annotations

from typing import Any

import click

from asyncstore.cli._common import emit_json, parse_target, run, state
from asyncstore.cli._table import print_table
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
    headers = ["kind", "name", "distribution", "version", "target"]
    if verbose:
        headers.append("summary / options")
    cells: list[list[str]] = []
    colors: dict[str, str] = {}
    for row in rows:
        line = [str(row[k] or "-") for k in ("kind", "name", "distribution", "version", "target")]
        if verbose:
            if "error" in row:
                line.append(f"broken: {row['error']}")
                colors[line[-1]] = "red"
            else:
                options = ", ".join(
                    o["name"] + ("" if o["required"] else "?") for o in row.get("options", [])
                )
                line.append(f"{row.get('summary') or ''}\noptions: {options or 'none'}")
        elif "error" in row:
            line[-1] += f"  ({row['error']})"
            colors[line[-1]] = "red"
        cells.append(line)
    print_table(headers, cells, colors=colors)


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
