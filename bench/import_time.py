"""Measure start-up: `import asyncstore`, listing plugins, and the command line, in fresh
interpreters, against the interpreter's own start-up.

Run: python bench/import_time.py [--runs N]. Prints, per command, in milliseconds: the median
and the fastest wall time, the median CPU time (user + system of the child: steadier than wall
time on a loaded machine, whose load average is printed too), the median wall time over the
baseline, and the goal.

Children run as an installed package does: with compiled bytecode (one warm-up run writes
it, even where PYTHONDONTWRITEBYTECODE is set in this shell).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time

ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def child_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measure(argv: list[str], runs: int) -> tuple[float, float, float]:
    """Return the median wall, fastest wall and median CPU milliseconds of running ``argv``."""
    subprocess.run(argv, check=True, env=ENV, capture_output=True)  # warm-up: bytecode, caches
    walls, cpus = [], []
    for _ in range(runs):
        cpu = child_cpu()
        start = time.perf_counter()
        subprocess.run(argv, check=True, env=ENV, stdout=subprocess.DEVNULL)
        walls.append((time.perf_counter() - start) * 1000)
        cpus.append((child_cpu() - cpu) * 1000)
    return statistics.median(walls), min(walls), statistics.median(cpus)


def self_time_ms(module: str, runs: int) -> float:
    samples = []
    for _ in range(runs):
        result = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", f"import {module}"],
            capture_output=True,
            text=True,
            check=True,
            env=ENV,
        )
        line = [row for row in result.stderr.splitlines() if row.rstrip().endswith(f"| {module}")][
            -1
        ]
        samples.append(int(line.split("|")[1]) / 1000)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=9)
    runs = parser.parse_args().runs
    script = shutil.which("asyncstore", path=os.path.dirname(sys.executable)) or "asyncstore"
    python = sys.executable
    rows: list[tuple[str, list[str], str]] = [
        ("python -c pass (baseline)", [python, "-c", "pass"], ""),
        ("import asyncstore", [python, "-c", "import asyncstore"], "<= 30 over baseline"),
        (
            "import asyncstore; plugins()",
            [python, "-c", "import asyncstore; asyncstore.plugins()"],
            "",
        ),
        ("asyncstore --help", [script, "--help"], "<= 150"),
        ("asyncstore plugins", [script, "plugins"], "<= 150"),
    ]
    baseline = 0.0
    load = os.getloadavg()[0]
    print(f"median of {runs} runs (load average {load:.1f} on {os.cpu_count()} CPUs)")
    print(f"{'command':<32}{'wall ms':>9}{'fastest':>9}{'cpu ms':>9}{'over baseline':>15}  goal")
    for name, argv, goal in rows:
        wall, fastest, cpu = measure(argv, runs)
        if not baseline:
            baseline = wall
        print(f"{name:<32}{wall:>9.1f}{fastest:>9.1f}{cpu:>9.1f}{wall - baseline:>15.1f}  {goal}")
    importtime = self_time_ms("asyncstore", runs)
    print(f"{'-X importtime cumulative, asyncstore':<50}{importtime:>9.1f}  <= 30")


if __name__ == "__main__":
    main()
