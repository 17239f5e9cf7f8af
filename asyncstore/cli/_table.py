"""Plain-text tables for command output: aligned columns, cells of several lines, no wrapping.

Deliberately not rich: a command that prints a table should not pay for a terminal toolkit at
start-up (rich is for the progress bars of the commands that copy).
"""

from __future__ import annotations

from collections.abc import Sequence

import click

__all__ = ["print_table"]


def print_table(
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    title: str | None = None,
    colors: dict[str, str] | None = None,
) -> None:
    """Print ``rows`` under ``headers`` in aligned columns, two spaces apart.

    A cell with line breaks spans several lines; the last column is never padded, so long
    text there runs on unwrapped. ``colors`` maps a cell's exact text to a click color, used
    when the output is a terminal.
    """
    colors = colors or {}
    split = [[cell.splitlines() or [""] for cell in row] for row in rows]
    widths = [len(header) for header in headers]
    for row in split:
        for index, lines in enumerate(row[:-1]):
            widths[index] = max(widths[index], *(len(line) for line in lines))
    if title:
        click.echo(title)
    click.echo(_line(list(headers), widths, {}))
    for row in split:
        for depth in range(max(len(lines) for lines in row)):
            cells = [lines[depth] if depth < len(lines) else "" for lines in row]
            click.echo(_line(cells, widths, colors))


def _line(cells: list[str], widths: list[int], colors: dict[str, str]) -> str:
    parts = []
    for index, cell in enumerate(cells):
        padded = cell if index == len(cells) - 1 else cell.ljust(widths[index])
        color = colors.get(cell)
        parts.append(click.style(padded, fg=color) if color else padded)
    return "  ".join(parts).rstrip()
