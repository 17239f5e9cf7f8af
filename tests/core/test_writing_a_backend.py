"""The writing-a-backend guide is true: its examples install, register, pass the suite and
`asyncstore check`, and every snippet on the page runs as written."""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.install import pip_install_into, run_package_tests

DOCS = Path(__file__).resolve().parents[2] / "docs"
GUIDE = DOCS / "writing-a-backend.md"
EXAMPLE = DOCS / "example-backend"
SQLITE = DOCS / "examples" / "sqlite"

BLOCK = re.compile(r"(<!-- (?:file: \S+|run) -->\n)?```(\w+)\n(.*?)```", re.S)


def blocks(language: str) -> list[tuple[str, str]]:
    """Return (marker, code) of the guide's blocks in ``language``; marker "" if unmarked."""
    return [
        ((marker or "").strip(), code)
        for marker, lang, code in BLOCK.findall(GUIDE.read_text())
        if lang == language
    ]


def matches(expected: str, actual: str) -> bool:
    """Compare output: a '...' line stands for any lines, '...' in a line for any text."""
    pattern = ""
    for line in expected.splitlines():
        if line == "...":
            pattern += r"(?:.*\n)*?"
        else:
            pattern += ".*".join(map(re.escape, line.split("..."))) + r"\n"
    return re.fullmatch(pattern + r"(?:.*\n)*", actual + "\n") is not None


def test_every_python_snippet_is_checked() -> None:
    snippets = blocks("python")
    assert len(snippets) >= 8
    for marker, code in snippets:
        assert marker, f"an unchecked snippet in the guide:\n{code[:300]}"


def test_file_snippets_are_the_examples() -> None:
    for marker, code in blocks("python") + blocks("toml"):
        if marker.startswith("<!-- file:"):
            path = DOCS / marker.removeprefix("<!-- file: ").removesuffix(" -->")
            assert code in path.read_text(), f"the guide's snippet of {path} is stale"


def test_the_sqlite_example_is_shown_whole_and_is_at_most_80_lines() -> None:
    source = (SQLITE / "asyncstore_sqlite" / "__init__.py").read_text()
    assert len(source.splitlines()) <= 80
    shown = [
        code for marker, code in blocks("python") if "examples/sqlite/asyncstore_sqlite" in marker
    ]
    assert shown == [source]


def test_run_snippets_run_as_written(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(SQLITE)}
    for index, (marker, code) in enumerate(blocks("python")):
        if marker != "<!-- run -->":
            continue
        script = tmp_path / f"snippet_{index}.py"
        script.write_text(code)
        result = subprocess.run(
            [sys.executable, str(script)],
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp_path,
            timeout=120,
        )
        assert result.returncode == 0, f"{code}\n--- failed with:\n{result.stderr}"


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("site")
    pip_install_into(EXAMPLE, target)
    pip_install_into(SQLITE, target)
    return target


def run(installed: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(installed)}
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=300
    )


def test_the_installed_examples_are_listed_and_open(installed: Path, tmp_path: Path) -> None:
    result = run(
        installed,
        "-c",
        (
            "import sys, asyncstore\n"
            "print([(p.name, p.distribution) for p in asyncstore.plugins()])\n"
            "print('imported before open:', 'asyncstore_dictstore' in sys.modules)\n"
            "store = asyncstore.open_store('dict://?label=demo')\n"
            "print(type(store).__name__, store.label, store.name)\n"
            f"store = asyncstore.open_store('sqlite://{tmp_path}/x.db?timeout=2')\n"
            "print(type(store).__name__, store.path, store.timeout)\n"
        ),
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert "('dict', 'asyncstore-dictstore')" in result.stdout
    assert "('sqlite', 'asyncstore-sqlite')" in result.stdout
    assert "imported before open: False" in result.stdout
    assert "DictStore demo dict://" in result.stdout
    assert f"SQLiteModule {tmp_path}/x.db 2.0" in result.stdout


def test_the_dict_example_passes_the_suite(installed: Path, tmp_path: Path) -> None:
    result = run_package_tests(EXAMPLE / "tests", root=tmp_path, pythonpath=installed)
    assert result.returncode == 0, result.stdout[-3000:]
    passed = int(re.search(r"(\d+) passed", result.stdout).group(1))  # type: ignore[union-attr]
    assert passed > 100


def test_the_sqlite_example_passes_the_suite_on_asyncio_and_trio(
    installed: Path, tmp_path: Path
) -> None:
    result = run_package_tests(SQLITE / "tests", "-rA", root=tmp_path, pythonpath=installed)
    assert result.returncode == 0, result.stdout[-3000:]
    assert re.search(r"^PASSED .*\[trio\]$", result.stdout, re.M)
    assert re.search(r"^PASSED .*\[asyncio\]$", result.stdout, re.M)
    assert "SKIPPED" not in result.stdout  # it declares every capability the suite checks
    passed = int(re.search(r"(\d+) passed", result.stdout).group(1))  # type: ignore[union-attr]
    assert passed > 250


def test_the_guides_first_and_last_steps_run_as_shown(installed: Path, tmp_path: Path) -> None:
    """`asyncstore new-plugin` and `asyncstore check` on the installed SQLite example."""
    script = str(Path(sys.executable).parent / "asyncstore")
    env = {**os.environ, "PYTHONPATH": str(installed), "COLUMNS": "200"}
    consoles = [code for _, code in blocks("console")]
    assert consoles[0].startswith("$ asyncstore new-plugin")
    assert consoles[-1].startswith("$ asyncstore check")
    for console in (consoles[0], consoles[-1]):
        command, _, expected = console.partition("\n")
        argv = command.removeprefix("$ asyncstore ").split()
        if argv[0] == "check":  # a scratch database of our own, in place of /tmp/scratch.db
            argv[1] = f"sqlite://{tmp_path}/scratch.db"
            expected = expected.replace("sqlite:///tmp/scratch.db", argv[1])
        result = subprocess.run(
            [script, *argv], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600
        )
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr
        assert matches(expected, result.stdout), f"expected:\n{expected}\n--- got:\n{result.stdout}"
    # check deleted what it wrote, through a fresh module after the suite's own aclose().
    rows = sqlite3.connect(tmp_path / "scratch.db").execute("SELECT count(*) FROM objects")
    assert rows.fetchone() == (0,)
