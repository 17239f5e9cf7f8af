"""Measure the cost of `import asyncstore` and of listing plugins, in fresh interpreters.

Run: python bench/import_time.py [--runs N]. Prints medians in milliseconds, next to the
interpreter's own start-up as the baseline.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time


def median_ms(code: str, runs: int) -> float:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True)
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


def self_time_ms(module: str, runs: int) -> float:
    samples = []
    for _ in range(runs):
        result = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", f"import {module}"],
            capture_output=True,
            text=True,
            check=True,
        )
        line = [row for row in result.stderr.splitlines() if row.rstrip().endswith(f"| {module}")][
            -1
        ]
        samples.append(int(line.split("|")[1]) / 1000)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    runs = parser.parse_args().runs
    baseline = median_ms("pass", runs)
    rows = [
        ("python -c pass (baseline)", baseline),
        ("import asyncstore", median_ms("import asyncstore", runs)),
        (
            "import asyncstore; plugins()",
            median_ms("import asyncstore; asyncstore.plugins()", runs),
        ),
    ]
    print(f"{'command':<34}{'median ms':>10}{'over baseline':>15}")
    for name, value in rows:
        print(f"{name:<34}{value:>10.1f}{value - baseline:>15.1f}")
    print(f"{'-X importtime cumulative, asyncstore':<34}{self_time_ms('asyncstore', runs):>10.1f}")


if __name__ == "__main__":
    main()
