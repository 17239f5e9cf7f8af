"""The examples of docs/cli.md run as written and print what the page shows."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "cli.md"


def examples() -> list[tuple[str, str]]:
    """Return (command, expected output) pairs from the console blocks, in order."""
    pairs: list[tuple[str, str]] = []
    for block in re.findall(r"```console\n(.*?)```", DOC.read_text(), re.S):
        command: str | None = None
        expected: list[str] = []
        for line in block.splitlines():
            if line.startswith("$ "):
                if command is not None:
                    pairs.append((command, "\n".join(expected)))
                command, expected = line[2:], []
            else:
                expected.append(line)
        if command is not None:
            pairs.append((command, "\n".join(expected)))
    return pairs


def matches(expected: str, actual: str) -> bool:
    """Compare output; a line of '...' stands for any lines, '...' within a line for any text."""
    pattern = ""
    for line in expected.splitlines():
        if line == "...":
            pattern += r"(?:.*\n)*?"
        else:
            pattern += ".*".join(map(re.escape, line.split("..."))) + r"\n"
    return (
        re.fullmatch(
            pattern + r"(?:.*\n)*" if expected.endswith("...") else pattern,
            actual + ("\n" if actual and not actual.endswith("\n") else ""),
        )
        is not None
    )


def test_the_page_has_examples() -> None:
    assert len(examples()) >= 15


def test_examples_run_as_documented(tmp_path: Path) -> None:
    toml = re.search(r"```toml\n(.*?)```", DOC.read_text(), re.S)
    assert toml
    (tmp_path / "asyncstore.toml").write_text(toml.group(1))
    bindir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": bindir + os.pathsep + os.environ["PATH"], "COLUMNS": "200"}
    env.pop("ASYNCSTORE_CONFIG", None)
    for command, expected in examples():
        result = subprocess.run(
            command, shell=True, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
        )
        output = result.stdout + result.stderr
        assert result.returncode == 0, f"$ {command}\n{output}"
        if not matches(expected, output):
            pytest.fail(f"$ {command}\nexpected:\n{expected}\n--- got:\n{output}")
