from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.install import write_dist

REPO = Path(__file__).resolve().parents[2]

DistFactory = Callable[..., Path]


@pytest.fixture
def site_dir(tmp_path: Path) -> Path:
    """A directory put on PYTHONPATH of subprocesses, holding throwaway distributions."""
    path = tmp_path / "site"
    path.mkdir()
    return path


@pytest.fixture
def make_dist(site_dir: Path) -> DistFactory:
    """Create an installed-looking distribution (dist-info + modules) in ``site_dir``."""

    def make(name: str, version: str = "1.0", **kwargs: Any) -> Path:
        return write_dist(site_dir, name, version, **kwargs)

    return make


@pytest.fixture
def run_python(site_dir: Path, tmp_path: Path) -> Callable[[str], subprocess.CompletedProcess[str]]:
    """Run Python code in a fresh interpreter that sees the throwaway distributions."""

    def run(code: str, *, check: bool = True) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "PYTHONPATH": str(site_dir)}
        result = subprocess.run(
            [sys.executable, "-c", textwrap.dedent(code)],
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp_path,
            timeout=120,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"subprocess failed:\n{result.stdout}\n{result.stderr}")
        return result

    return run
