"""The legacy example of docs/sync.md is true: it installs, passes `check`, and the session runs."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli.test_docs import matches
from tests.install import pip_install_into

DOCS = Path(__file__).resolve().parents[2] / "docs"
GUIDE = DOCS / "sync.md"
EXAMPLE = DOCS / "example-legacy"
SCRIPT = str(Path(sys.executable).parent / "asyncstore")

# Among the capabilities a seven-method legacy module (and a wrapper over one) lacks, and
# the checks that need new_data: checks are skipped only for capabilities declared False.
NOT_DECLARED = {"named_keys", "list", "metadata", "new_data", "assign"}
NEEDS_NEW_DATA = {
    "test_new_data_is_not_available",
    "test_new_data_handles_are_unique",
    "test_assign_after_new_data",
    "test_failing_source_on_new_data_leaves_it_unavailable",
}


def _block(marker: str, language: str) -> str:
    text = GUIDE.read_text()
    match = re.search(
        rf"<!-- example: {re.escape(marker)} -->\n```{language}\n(.*?)```", text, re.S
    )
    assert match, f"docs/sync.md has no {marker} example"
    return match.group(1)


def test_every_snippet_is_in_the_example() -> None:
    snippets = re.findall(
        r"<!-- file: (example-legacy/\S+) -->\n```\w+\n(.*?)```", GUIDE.read_text(), re.S
    )
    assert len(snippets) >= 5
    for path, snippet in snippets:
        assert snippet in (DOCS / path).read_text(), f"docs/sync.md's snippet of {path} is stale"


def test_the_example_modules_have_the_guides_seven_methods() -> None:
    sys.path.insert(0, str(EXAMPLE))
    try:
        from legacy_blobstore.files import FileModule
        from legacy_blobstore.scramble import ScrambleModule
    finally:
        sys.path.remove(str(EXAMPLE))
    seven = {
        "__init__",
        "available",
        "put",
        "get_read_stream",
        "delete",
        "statistics",
        "capabilities",
    }
    for cls in (FileModule, ScrambleModule):
        public = {n for n, v in vars(cls).items() if callable(v) and not n.startswith("_")}
        assert public | {"__init__"} == seven, cls


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("site")
    pip_install_into(EXAMPLE, target)
    return target


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "asyncstore.toml").write_text(_block("asyncstore.toml", "toml"))
    return tmp_path


def _environment(installed: Path) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(installed), "COLUMNS": "200"}
    env["PATH"] = str(Path(SCRIPT).parent) + os.pathsep + env["PATH"]
    env.pop("ASYNCSTORE_CONFIG", None)
    return env


def _asyncstore(
    installed: Path, workdir: Path, *args: str, text: bool = True
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SCRIPT, *args],
        cwd=workdir,
        env=_environment(installed),
        capture_output=True,
        text=text,
        timeout=300,
    )


@pytest.mark.parametrize("store", ["files", "secure"])
def test_check_passes_skipping_only_what_is_declared_missing(
    installed: Path, workdir: Path, store: str
) -> None:
    capabilities = json.loads(_asyncstore(installed, workdir, "caps", store, "--json").stdout)
    assert {name for name, value in capabilities.items() if value is False} >= NOT_DECLARED
    assert capabilities["legacy_missing"] == ["new_data", "assign", "get_size"]
    result = _asyncstore(installed, workdir, "check", store, "--json")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    report = json.loads(result.stdout)
    assert report["failed"] == 0 and report["left"] == []
    outcomes = {name: entry["outcome"] for name, entry in report["results"].items()}
    assert sum(outcome == "passed" for outcome in outcomes.values()) > 75
    skipped_for: dict[str, set[str]] = {}
    for name, entry in report["results"].items():
        if entry["outcome"] == "skipped":
            reason = re.fullmatch(r"\w+ declares '(\w+)' unsupported", entry["detail"])
            assert reason, f"{name} was skipped for no declared capability: {entry['detail']}"
            assert capabilities.get(reason.group(1)) is False, name
            skipped_for.setdefault(reason.group(1), set()).add(name)
    assert skipped_for["new_data"] == NEEDS_NEW_DATA
    # Everything the checks stored was deleted again.
    assert [p for p in (workdir / "blobs").iterdir() if not p.name.startswith(".")] == []


def test_the_documented_session_runs(installed: Path, workdir: Path) -> None:
    commands: list[tuple[str, str]] = []
    for line in _block("session", "console").splitlines():
        if line.startswith("$ "):
            commands.append((line[2:], ""))
        else:
            command, expected = commands[-1]
            commands[-1] = (command, expected + line + "\n")
    assert any("put report.txt secure:" in command for command, _ in commands)
    for command, expected in commands:
        result = subprocess.run(
            command,
            shell=True,
            cwd=workdir,
            env=_environment(installed),
            capture_output=True,
            text=True,
            timeout=300,
        )
        output = result.stdout + result.stderr
        assert result.returncode == 0, f"$ {command}\n{output}"
        assert matches(expected.rstrip("\n"), output), f"$ {command}\n{expected}--- got:\n{output}"
    handle = (workdir / "handle.txt").read_text().strip()
    assert json.loads(handle)["id"]
    # The round trip went through the wrapper: the scrambled file was in the inner store.
    assert [p for p in (workdir / "blobs").iterdir() if not p.name.startswith(".")] == []


def test_the_wrapper_keeps_scrambled_bytes_in_the_inner_store(
    installed: Path, workdir: Path
) -> None:
    (workdir / "plain.txt").write_text("attack at dawn")
    handle = _asyncstore(installed, workdir, "put", "plain.txt", "secure").stdout.strip()
    stored = (workdir / "blobs" / json.loads(handle)["id"]).read_bytes()
    assert len(stored) == 14 and b"attack" not in stored
    # The same handle through the inner store gives the scrambled bytes; through the
    # wrapper, the original (ranges included).
    inner = _asyncstore(installed, workdir, "cat", f"files:{handle}", text=False)
    assert inner.stdout == stored
    ranged = _asyncstore(installed, workdir, "cat", f"secure:{handle}", "--range", "7-")
    assert ranged.stdout == "at dawn"
    assert _asyncstore(installed, workdir, "rm", f"secure:{handle}").returncode == 0
    missing = _asyncstore(installed, workdir, "cat", f"secure:{handle}")
    assert missing.returncode == 1 and "no such object" in missing.stderr
