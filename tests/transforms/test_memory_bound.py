"""Back-pressure: a 2 GiB object through ``identity`` (fs to fs) grows the peak RSS by at
most 64 MiB; through a worker process, the host's stays as flat."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

MiB = 1 << 20
ROOT = Path(__file__).resolve().parents[2]


def probe(tmp_path: Path, mib: int, isolation: str) -> dict[str, int]:
    result = subprocess.run(
        [sys.executable, "-m", "tests.transforms.rss_probe", str(tmp_path), str(mib), isolation],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
        check=True,
    )
    figures: dict[str, int] = json.loads(result.stdout.splitlines()[-1])
    return figures


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux's VmHWM")
def test_two_gib_through_identity_keeps_memory_flat(tmp_path: Path) -> None:
    figures = probe(tmp_path, 2048, "inline")
    assert figures["bytes"] == figures["stored"] == 2048 * MiB
    assert figures["growth"] <= 64 * MiB, figures


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux's VmHWM")
def test_the_host_of_a_worker_keeps_memory_flat(tmp_path: Path) -> None:
    figures = probe(tmp_path, 512, "process")
    assert figures["bytes"] == figures["stored"] == 512 * MiB
    assert figures["growth"] <= 64 * MiB, figures
