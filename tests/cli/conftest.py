from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

Run = Callable[..., subprocess.CompletedProcess[str]]

CONFIG = """
[stores.local]
module = "fs"
root = "store"

[stores.other]
module = "fs"
root = "other"

[stores.secret]
module = "memory"
password = "hunter2"
token = "${SOME_TOKEN}"
"""


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "asyncstore.toml").write_text(CONFIG)
    return tmp_path


@pytest.fixture
def cli(workdir: Path) -> Run:
    """Run the asyncstore console script in ``workdir`` as a user would."""
    script = str(Path(sys.executable).parent / "asyncstore")

    def run(
        *args: str,
        input: str | bytes | None = None,
        env: dict[str, str] | None = None,
        text: bool = True,
    ) -> subprocess.CompletedProcess[str]:
        environment = {**os.environ, "COLUMNS": "200", **(env or {})}
        environment.pop("ASYNCSTORE_CONFIG", None)
        return subprocess.run(
            [script, *args],
            cwd=workdir,
            capture_output=True,
            input=input,
            text=text,
            env=environment,
            timeout=300,
        )

    return run
