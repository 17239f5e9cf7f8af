"""Render the figures of a harness run into ``docs/reliability.md``.

    python -m tests.reliability.report FIGURES.json docs/reliability.md

``make reliability`` runs the harness at full scale with ``ASYNCSTORE_RELIABILITY_FIGURES``
pointing at a fresh file, then this script, only if every test passed. Each known section
gets a paragraph saying what it checks and what passing means, then a table of its rows
(columns from the rows' keys, in the order they first appear); sections the run did not
reach say so; sections this script does not know are rendered after the others, generically.
The output holds no code blocks, so formatters leave it alone.
"""

from __future__ import annotations

import json
import math
import os
import platform
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

COMMAND = "make reliability"
"""The command that produces the report."""

SECTIONS: dict[str, str] = {
    "Crash tests": (
        "A child process streaming large puts is killed with SIGKILL at random moments, "
        "again and again, on each backend. After every kill the key must hold exactly one "
        "whole version (the old one, the new one, or none if there was none before), never a "
        "torn or mixed object, and once the store's cleanup has run no temporary file or "
        "multipart upload may be left. Passing means every kill is accounted for as old, new "
        "or absent and nothing is left behind."
    ),
    "Fault injection": (
        "The S3 backend talks to its server through a proxy that breaks a share of the "
        "requests (connection resets, lost responses, truncated bodies, 500 and 503 SlowDown "
        "answers, delays) while a mixed workload runs. Every operation must either succeed "
        "with the right answer or raise a documented `StorageError`; a write reported as "
        "failed may have landed, but then the key holds the old or the new bytes, never "
        "others. Passing means no wrong answer, and the server's objects equal the model of "
        "what was written at the end."
    ),
    "Fuzzed input": (
        "Hypothesis draws hostile keys, prefixes, metadata, byte sources, ranges and seeks "
        "against every module. Bad input must raise the documented error class before any "
        "I/O and store nothing (for the filesystem backend, nothing changes around its root "
        "either); good input must round-trip exactly. Passing means no example had an "
        "unexpected outcome."
    ),
    "Model-based tests": (
        "Random sequences of operations run against each module and, side by side, against "
        "a reference model of the contract (keys mapped to bytes, metadata and content "
        "type). Every answer (contents, sizes, listings, errors) is compared with the "
        "model's. Passing means the module and the model never disagreed."
    ),
    "Long-lived process": (
        "One module instance serves a long run of mixed operations (put, whole and ranged "
        "get, stat, a listing page, delete, copy) from concurrent tasks over a bounded set "
        "of keys, in a child process whose own RSS, open descriptors and sockets are sampled "
        "at quiescent points; every read is checked against what was written. After a "
        "warm-up, the settled RSS may grow by at most the bound shown (the smallest steady "
        "leak per operation that bound catches is given too), and descriptors and sockets "
        "may rise by at most one pooled connection per concurrent task. Passing means no "
        "wrong answer and no growth beyond those bounds."
    ),
    "Secrets": (
        "Credentials and keys (S3 secret access keys, a session token, an SSE-C key, encrypt "
        "master keys from the config file and from key files, a password given to a memory "
        "store) are used in working and failing ways: wrong secrets, a missing bucket, "
        "wrong and tampered keys, malformed options. Every log record (all loggers at DEBUG, "
        "botocore's included), every error with its chained causes and formatted traceback, "
        "the repr and str of every module and config object, and the output of CLI commands "
        "(with `--debug` too) are searched for each secret and the hex and base64 forms of "
        "key bytes. The S3 access key id is not secret (it is sent in every request). "
        "Passing means no leak."
    ),
}
"""The known sections, in report order, with what each checks and what passing means."""

_INTRO = (
    "The reliability harness (`tests/reliability/`) runs at full scale for this report. "
    "The regular test run (`make test`) runs a quick version of every part, with the same "
    "assertions. A table lists what one full run measured; the run passed, or this file "
    "would not have been rewritten."
)


@dataclass(frozen=True)
class Environment:
    """Where and when the figures were produced."""

    date: str
    python: str
    platform: str
    cpus: int

    @classmethod
    def current(cls) -> Environment:
        """Describe this machine, now."""
        try:
            cpus = len(os.sched_getaffinity(0))
        except AttributeError:  # not on Linux
            cpus = os.cpu_count() or 1
        return cls(
            date=datetime.now(timezone.utc).strftime("%Y-%m-%d"),
            python=platform.python_version(),
            platform=f"{platform.system()} {platform.release()} {platform.machine()}",
            cpus=cpus,
        )


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def cell(value: Any) -> str:
    """Format one table cell: numbers readably, text escaped for a Markdown table."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        if value.is_integer() and abs(value) < 1e15:
            return f"{int(value):,}"
        if abs(value) >= 100:
            return f"{value:,.0f}"
        return f"{value:.3g}"
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return " ".join(text.split()).replace("|", "\\|")


def heading(key: str) -> str:
    """Turn a row key into a column heading (``places_checked`` → ``places checked``)."""
    return cell(key.replace("_", " "))


def table(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """Render rows as a Markdown table; numeric columns are right-aligned."""
    columns: list[str] = []
    for row in rows:
        columns.extend(key for key in row if key not in columns)
    numeric = [
        all(_is_number(row[c]) for row in rows if row.get(c) is not None)
        and any(row.get(c) is not None for row in rows)
        for c in columns
    ]
    lines = [
        "| " + " | ".join(heading(c) for c in columns) + " |",
        "|" + "|".join("---:" if n else "---" for n in numeric) + "|",
    ]
    lines += [
        "| " + " | ".join(cell(row.get(c)) if c in row else "" for c in columns) + " |"
        for row in rows
    ]
    return lines


def render(figures: Mapping[str, Sequence[Mapping[str, Any]]], environment: Environment) -> str:
    """Return the Markdown report of ``figures`` (section → rows)."""
    cpus = "1 CPU" if environment.cpus == 1 else f"{environment.cpus} CPUs"
    lines = [
        "# Reliability",
        "",
        f"Generated by `{COMMAND}` on {environment.date} with Python {environment.python} "
        f"on {environment.platform}, {cpus}. Do not edit: run `{COMMAND}` again.",
        "",
        _INTRO,
    ]
    unknown = [name for name in figures if name not in SECTIONS]
    for name in [*SECTIONS, *unknown]:
        rows = figures.get(name, [])
        lines += ["", f"## {name}", ""]
        lines.append(SECTIONS.get(name, "Figures recorded under this heading by the harness."))
        lines.append("")
        if rows:
            lines += table(rows)
        else:
            lines.append("Not run: this report's run recorded no figures for this part.")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> None:
    """Render FIGURES.json into the Markdown file named second."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 2:
        raise SystemExit("usage: python -m tests.reliability.report FIGURES.json OUTPUT.md")
    source, target = Path(args[0]), Path(args[1])
    # No file at all: no test recorded anything, so every section says it was not run.
    figures = json.loads(source.read_text()) if source.exists() else {}
    target.write_text(render(figures, Environment.current()))


if __name__ == "__main__":
    main()
