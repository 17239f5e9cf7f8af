"""Installing a distribution from a source folder into a throwaway target, as users would."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def pip_install_into(source: Path, target: Path) -> None:
    """``pip install`` the distribution at ``source`` into the folder ``target`` (no deps)."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(target),
            str(source),
        ],
        check=True,
        capture_output=True,
        timeout=300,
        cwd=target.parent,
    )
