"""What every part of the reliability harness shares: its scale and the figures it reports.

The regular test run executes a quick version of each part (seconds). With
``ASYNCSTORE_RELIABILITY=full`` (what ``make reliability`` sets) the same tests run at full
scale, and with ``ASYNCSTORE_RELIABILITY_FIGURES=path`` they write the figures they measured
to that JSON file, from which `tests.reliability.report` renders ``docs/reliability.md``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FULL = os.environ.get("ASYNCSTORE_RELIABILITY", "quick") == "full"
"""Whether the harness runs at full scale."""


def scaled(quick: int, full: int) -> int:
    """Return ``full`` in a full harness run, else ``quick``."""
    return full if FULL else quick


@dataclass
class Figures:
    """Rows of measured figures, grouped by report section, in the order they were added."""

    sections: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def add(self, section: str, **row: Any) -> None:
        """Add one row (column name → JSON-serialisable value) to ``section``."""
        self.sections.setdefault(section, []).append(row)

    def save(self, path: Path) -> None:
        """Merge these figures into the JSON file at ``path``."""
        existing: dict[str, list[dict[str, Any]]] = {}
        if path.exists():
            existing = json.loads(path.read_text())
        for section, rows in self.sections.items():
            existing.setdefault(section, []).extend(rows)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(existing, indent=2) + "\n")
