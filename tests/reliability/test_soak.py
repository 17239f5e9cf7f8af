"""Long-lived process: many mixed operations on one module instance, no growth after warm-up.

Each backend runs `tests.reliability.soak` in a child process (so the figures are the
module's own, not pytest's): 100,000 operations in a full run, a few thousand otherwise. RSS,
open descriptors and sockets are sampled at quiescent points; after the warm-up the settled
RSS may grow by at most 5 MiB (1 MiB in a quick run, whose fewer operations would otherwise
hide a real leak: the smallest leak per operation each bound catches is recorded), and the
descriptor and socket counts may rise by at most one pooled connection per concurrent task.
`test_the_soak_catches_leaks` shows that these checks fail on a process that leaks.

The full run's warm-up is a fifth of the operations: on the S3 path the allocator's high-water
mark keeps rising for a while in steps of the largest object (while Python's own traced memory
is flat from a few thousand operations on), and a leak still has 80,000 operations to show.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.reliability.harness import Figures, scaled
from tests.reliability.soak import ACCESS_KEY_ENV, SECRET_KEY_ENV, Summary, problems, summarize
from tests.s3server import Endpoint

SECTION = "Long-lived process"
ROOT = Path(__file__).resolve().parents[2]
KiB = 1024
MiB = 1024 * KiB
CONCURRENCY = 8
RSS_BOUND = scaled(1 * MiB, 5 * MiB)
FD_SLACK = CONCURRENCY  # idle pooled connections: at most one per concurrent request


def run_soak(*args: str, env: dict[str, str] | None = None, timeout: float) -> dict[str, Any]:
    """Run the soak child process and return its report."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("ASYNCSTORE_SOAK_")}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.reliability.soak",
            "--concurrency",
            str(CONCURRENCY),
            "--keys",
            "256",
            *args,
        ],
        cwd=ROOT,
        env={**environment, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    report: dict[str, Any] = json.loads(result.stdout)
    return report


def record(figures: Figures, backend: str, report: dict[str, Any], summary: Summary) -> None:
    figures.add(
        SECTION,
        **{
            "backend": backend,
            "operations": summary.operations,
            "warm-up": report["warmup"],
            "ops/s": round(summary.ops_per_second),
            "RSS at warm-up end (MiB)": round(summary.rss_at_warmup / MiB, 1),
            "RSS growth (KiB)": round(summary.rss_growth / KiB),
            "bound (KiB)": RSS_BOUND // KiB,
            "catches leaks of (B/op)": round(summary.resolution(RSS_BOUND)),
            "fds min": summary.fds_min,
            "fds max": summary.fds_max,
            "sockets min": summary.sockets_min,
            "sockets max": summary.sockets_max,
        },
    )


def check(report: dict[str, Any], operations: int) -> Summary:
    assert report["operations"] == operations
    counts = report["counts"]
    assert sum(counts.values()) == operations
    # Every kind of operation ran, and most reads found what they looked for.
    assert all(counts[name] > operations // 50 for name in counts), counts
    assert report["misses"] < operations // 2, report["misses"]
    assert report["unraisable"] == []
    summary = summarize(report)
    assert problems(summary, rss_bound=RSS_BOUND, fd_slack=FD_SLACK) == []
    return summary


def test_long_lived_fs(tmp_path: Path, figures: Figures) -> None:
    operations = scaled(5_000, 100_000)
    report = run_soak(
        "--backend",
        "fs",
        "--root",
        str(tmp_path / "store"),
        "--operations",
        str(operations),
        "--warmup",
        str(scaled(1_000, 20_000)),
        "--sample-every",
        str(scaled(100, 500)),
        timeout=scaled(300, 3600),
    )
    summary = check(report, operations)
    # No descriptor stays open between operations: only the interpreter's own remain.
    assert summary.fds_max == summary.fds_min
    record(figures, "fs", report, summary)


@pytest.mark.slow
def test_long_lived_s3(s3_endpoint: Endpoint, bucket: str, figures: Figures) -> None:
    operations = scaled(2_000, 100_000)
    report = run_soak(
        "--backend",
        "s3",
        "--endpoint-url",
        s3_endpoint.url,
        "--region",
        s3_endpoint.region,
        "--bucket",
        bucket,
        "--operations",
        str(operations),
        "--warmup",
        str(scaled(500, 20_000)),
        "--sample-every",
        str(scaled(100, 500)),
        env={
            ACCESS_KEY_ENV: s3_endpoint.access_key_id,
            SECRET_KEY_ENV: s3_endpoint.secret_access_key,
        },
        timeout=scaled(300, 3 * 3600),
    )
    summary = check(report, operations)
    record(figures, f"s3 ({s3_endpoint.name})", report, summary)


def test_the_soak_catches_leaks(tmp_path: Path) -> None:
    """A process keeping a little memory per operation and a descriptor now and then fails."""
    operations, warmup = 5_000, 1_000
    report = run_soak(
        "--backend",
        "fs",
        "--root",
        str(tmp_path / "store"),
        "--operations",
        str(operations),
        "--warmup",
        str(warmup),
        "--sample-every",
        "100",
        "--inject-leak-bytes",
        "512",
        "--inject-leak-fds-every",
        "250",
        timeout=300,
    )
    summary = summarize(report)
    # A quick run's bound resolves a leak of a few hundred bytes per operation.
    assert summary.resolution(1 * MiB) < 512
    found = problems(summary, rss_bound=1 * MiB, fd_slack=FD_SLACK)
    assert len(found) == 2, found
    assert found[0].startswith("RSS grew") and found[1].startswith("open descriptors rose")
