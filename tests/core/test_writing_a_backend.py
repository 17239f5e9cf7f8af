"""The writing-a-backend guide is true: its example installs, registers and passes the suite."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.install import pip_install_into, run_package_tests

DOCS = Path(__file__).resolve().parents[2] / "docs"
GUIDE = DOCS / "writing-a-backend.md"
EXAMPLE = DOCS / "example-backend"


def test_every_snippet_is_in_the_example() -> None:
    text = GUIDE.read_text()
    snippets = re.findall(r"<!-- file: (\S+) -->\n```\w+\n(.*?)```", text, re.S)
    assert len(snippets) >= 4
    for path, snippet in snippets:
        assert snippet in (DOCS / path).read_text(), f"the guide's snippet of {path} is stale"


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("site")
    pip_install_into(EXAMPLE, target)
    return target


def run(installed: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(installed)}
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=300
    )


def test_the_installed_example_is_listed_and_opens(installed: Path, tmp_path: Path) -> None:
    result = run(
        installed,
        "-c",
        (
            "import sys, asyncstore\n"
            "print([(p.name, p.distribution) for p in asyncstore.plugins()])\n"
            "print('imported before open:', 'asyncstore_dictstore' in sys.modules)\n"
            "store = asyncstore.open_store('dict://?label=demo')\n"
            "print(type(store).__name__, store.label, store.name)\n"
        ),
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert "('dict', 'asyncstore-dictstore')" in result.stdout
    assert "imported before open: False" in result.stdout
    assert "DictStore demo dict://" in result.stdout


def test_the_example_passes_the_suite(installed: Path, tmp_path: Path) -> None:
    result = run_package_tests(EXAMPLE / "tests", root=tmp_path, pythonpath=installed)
    assert result.returncode == 0, result.stdout[-3000:]
    passed = int(re.search(r"(\d+) passed", result.stdout).group(1))  # type: ignore[union-attr]
    assert passed > 100
