"""The README's Quick start is true: two commands, and the main job runs on a local fs store."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def quick_start_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block
    return [line.split("#", 1)[0].strip() for line in block.group(1).splitlines() if line.strip()]


def test_quick_start_is_two_make_targets() -> None:
    assert quick_start_commands() == ["make demo", "make test"]
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^demo: install\n\t\$\(BIN\)/python -m asyncstore\.demo$", makefile, re.M)
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in ci


def test_the_main_job_runs_on_the_embedded_fs_store(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "asyncstore.demo"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert f"store: fs://{tmp_path}/.demo-store" in out
    for step in (
        "put       'demo/hello.txt'",
        "stat      size=62023",
        "range     [23, 59) -> b'line 0000",
        "list      demo/ -> ['demo/hello.txt']",
        '"capacity": {"total": ',
        "available now: False",
    ):
        assert step in out, step
    assert (tmp_path / ".demo-store").is_dir()
    assert [p for p in (tmp_path / ".demo-store").rglob("*") if p.is_file()] == []


def test_the_python_example_runs_as_written(tmp_path: Path) -> None:
    text = (ROOT / "README.md").read_text()
    example = re.search(r"```python\n(.*?)```", text, re.S)
    assert example, "the README has no Python example"
    script = tmp_path / "example.py"
    script.write_text(example.group(1))
    result = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "greetings/en.txt 5\n"
