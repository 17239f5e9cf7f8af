"""Installing distributions as users would, and running their own tests, in throwaway places."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Mapping
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


def write_dist(
    site: Path,
    name: str,
    version: str = "1.0",
    *,
    modules: Mapping[str, str] | None = None,
    entry_points: Mapping[str, str] | None = None,
    group: str = "asyncstore.modules",
) -> Path:
    """Write an installed-looking distribution (dist-info and modules) into ``site``."""
    info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    lines = [f"[{group}]"] + [f"{k} = {v}" for k, v in (entry_points or {}).items()]
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n")
    for module, source in (modules or {}).items():
        (site / f"{module}.py").write_text(textwrap.dedent(source))
    return info


def run_package_tests(
    tests: Path,
    *options: str,
    root: Path,
    pythonpath: Path,
    env: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a distribution's own tests with pytest in a fresh interpreter (``env`` added)."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            *options,
            str(tests),
            "--rootdir",
            str(root),
        ],
        capture_output=True,
        text=True,
        cwd=root,
        timeout=300,
        env={**os.environ, **(env or {}), "PYTHONPATH": str(pythonpath)},
    )
