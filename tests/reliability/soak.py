"""A long-lived process: many mixed operations on one module instance, with resource samples.

Run as a child process so that the figures are the module's own, not the test runner's::

    python -m tests.reliability.soak --backend fs --root DIR --operations 100000
    python -m tests.reliability.soak --backend s3 --endpoint-url URL --bucket NAME ...

S3 credentials come from the environment (``ASYNCSTORE_SOAK_ACCESS_KEY_ID``,
``ASYNCSTORE_SOAK_SECRET_ACCESS_KEY``), never from the command line. The process prints one
JSON report on stdout: operation counts, timing and a resource sample (RSS, open file
descriptors, sockets) taken every ``--sample-every`` operations at a quiescent point (no
operation in flight), so that what is counted is what the module keeps between calls.

The workload: ``--concurrency`` tasks share one module; each owns a slice of a bounded set of
keys (``--keys``) and runs a weighted mix of put (bytes or a chunked async source, with and
without metadata), whole get, ranged get, stat, one page of a listing, delete and copy. Each
task knows what its keys hold, so every read is checked against the bytes last written and
every read of a deleted key must raise `NotFoundError`; a wrong answer stops the run. Errors
raised in finalisers (an unclosed socket's ``ResourceWarning``) are listed in the report.

``--inject-leak-bytes`` and ``--inject-leak-fds-every`` add a deliberate leak (memory kept
per operation, a file descriptor kept every N operations): the harness uses them to show that
its checks catch a real leak.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import hashlib
import json
import os
import random
import resource
import sys
import time
import warnings
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import anyio

from asyncstore import StorageModule
from asyncstore.errors import NotFoundError

KEY_GROUPS = 16
"""Keys are spread over this many prefixes, so one listing page is a realistic slice."""
LIST_PAGE = 50
"""Entries read from one listing before it is closed."""
SIZES = (0, 100, 4096, 65_536, 300_000)
"""Object sizes the workload writes (the last one crosses the fs backend's small-write path)."""
SIZE_WEIGHTS = (1, 4, 4, 2, 1)
OPERATIONS = ("put", "get", "range", "stat", "list", "delete", "copy")
OPERATION_WEIGHTS = (25, 20, 15, 15, 8, 9, 8)
ACCESS_KEY_ENV = "ASYNCSTORE_SOAK_ACCESS_KEY_ID"
"""The environment variable holding the S3 access key id."""
SECRET_KEY_ENV = "ASYNCSTORE_SOAK_SECRET_ACCESS_KEY"
"""The environment variable holding the S3 secret access key."""

_PAGE = os.sysconf("SC_PAGE_SIZE")
_BLOB = hashlib.shake_256(b"asyncstore soak").digest(max(SIZES) + 4096)


def key_name(index: int) -> str:
    """Return the key of slot ``index`` of the working set."""
    return f"soak/{index % KEY_GROUPS:02d}/{index:05d}"


# ---- resource samples -------------------------------------------------------------------------


def rss_bytes() -> int:
    """Return this process's resident set size in bytes."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * _PAGE
    except OSError:  # no /proc: the peak is the best we have
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def open_fds() -> tuple[int, int]:
    """Return how many file descriptors this process has open, and how many are sockets."""
    fds = sockets = 0
    for name in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{name}")
        except OSError:
            continue  # the descriptor listdir itself used, closed already
        fds += 1
        sockets += target.startswith("socket:")
    return fds, sockets


def sample(operations: int) -> dict[str, int]:
    """Take one resource sample, labelled with the operations done so far."""
    fds, sockets = open_fds()
    return {"operations": operations, "rss": rss_bytes(), "fds": fds, "sockets": sockets}


# ---- the workload -----------------------------------------------------------------------------


@dataclass
class _Slot:
    """What a key holds, as far as its owning task knows."""

    offset: int
    size: int

    def data(self) -> bytes:
        return _BLOB[self.offset : self.offset + self.size]


@dataclass
class Counters:
    """What the workload did."""

    operations: dict[str, int] = field(default_factory=lambda: dict.fromkeys(OPERATIONS, 0))
    misses: int = 0
    """Reads, stats and copies of keys that were absent (and correctly reported so)."""
    bytes_written: int = 0
    bytes_read: int = 0


class Worker:
    """One task of the workload: the keys it owns and what they hold."""

    def __init__(
        self, module: StorageModule, keys: list[int], rng: random.Random, counters: Counters
    ) -> None:
        self._module = module
        self._keys = keys
        self._rng = rng
        self._counters = counters
        self._slots: dict[int, _Slot] = {}

    async def run(self, operations: int) -> None:
        """Run ``operations`` operations of the mix."""
        choices = self._rng.choices(OPERATIONS, OPERATION_WEIGHTS, k=operations)
        for operation in choices:
            await getattr(self, f"_{operation}")()
            self._counters.operations[operation] += 1

    def _pick(self) -> tuple[int, str, _Slot | None]:
        index = self._rng.choice(self._keys)
        return index, key_name(index), self._slots.get(index)

    async def _put(self) -> None:
        index, key, _ = self._pick()
        size = self._rng.choices(SIZES, SIZE_WEIGHTS)[0]
        slot = _Slot(self._rng.randrange(4096), size)
        data = slot.data()
        metadata = {"slot": str(index)} if self._rng.random() < 0.5 else None
        if self._rng.random() < 0.2:
            source: Any = _chunks(data, 16_384)
        else:
            source = data
        await self._module.put(source, key=key, metadata=metadata, content_type="text/plain")
        self._slots[index] = slot
        self._counters.bytes_written += size

    async def _read(self, key: str, slot: _Slot | None, start: int, end: int | None) -> None:
        try:
            async with await self._module.get_read_stream(key, start=start, end=end) as stream:
                data = await stream.read()
        except NotFoundError:
            if slot is not None:
                raise AssertionError(f"{key} is missing but holds {slot.size} bytes") from None
            self._counters.misses += 1
            return
        if slot is None:
            raise AssertionError(f"{key} was deleted but a read returned {len(data)} bytes")
        expected = slot.data()[start:end]
        if data != expected:
            raise AssertionError(f"{key}[{start}:{end}] returned other bytes than were written")
        self._counters.bytes_read += len(data)

    async def _get(self) -> None:
        _, key, slot = self._pick()
        await self._read(key, slot, 0, None)

    async def _range(self) -> None:
        _, key, slot = self._pick()
        size = slot.size if slot is not None else 1000
        start = self._rng.randrange(size + 1)
        end = self._rng.randrange(start, size + 1)
        await self._read(key, slot, start, end)

    async def _stat(self) -> None:
        _, key, slot = self._pick()
        try:
            info = await self._module.stat(key)
        except NotFoundError:
            if slot is not None:
                raise AssertionError(f"stat says {key} is missing") from None
            self._counters.misses += 1
            return
        if slot is None or info.size != slot.size:
            raise AssertionError(f"stat of {key} says {info.size} bytes, expected {slot}")

    async def _list(self) -> None:
        prefix = f"soak/{self._rng.randrange(KEY_GROUPS):02d}/"
        seen: list[str] = []
        async with contextlib.aclosing(self._module.list(prefix)) as listing:
            async for info in listing:
                seen.append(info.handle)
                if len(seen) == LIST_PAGE:
                    break
        if seen != sorted(seen) or not all(handle.startswith(prefix) for handle in seen):
            raise AssertionError(f"the listing of {prefix} is out of order or off its prefix")

    async def _delete(self) -> None:
        index, key, _ = self._pick()
        await self._module.delete(key)
        self._slots.pop(index, None)

    async def _copy(self) -> None:
        index, key, slot = self._pick()
        target = self._rng.choice([k for k in self._keys if k != index])
        try:
            await self._module.copy(key, key=key_name(target))
        except NotFoundError:
            if slot is not None:
                raise AssertionError(f"copy says {key} is missing") from None
            self._counters.misses += 1
            return
        if slot is None:
            raise AssertionError(f"copy of deleted {key} succeeded")
        self._slots[target] = slot


async def _chunks(data: bytes, size: int) -> AsyncIterator[bytes]:
    for offset in range(0, len(data), size):
        yield data[offset : offset + size]


# ---- the run ----------------------------------------------------------------------------------


def open_module(args: argparse.Namespace) -> StorageModule:
    """Create the module the run works on."""
    if args.backend == "fs":
        from asyncstore_fs import FileSystemModule

        return FileSystemModule(root=args.root, fsync=False)
    from asyncstore_s3 import S3Module

    return S3Module(
        bucket=args.bucket,
        endpoint_url=args.endpoint_url,
        region=args.region,
        access_key_id=os.environ[ACCESS_KEY_ENV],
        secret_access_key=os.environ[SECRET_KEY_ENV],
    )


async def soak(args: argparse.Namespace) -> dict[str, Any]:
    """Run the workload and return the report."""
    rng = random.Random(args.seed)
    counters = Counters()
    slices = [list(range(w, args.keys, args.concurrency)) for w in range(args.concurrency)]
    leaked: list[bytes] = []
    leaked_fds: list[int] = []
    samples: list[dict[str, int]] = []
    async with open_module(args) as module:
        workers = [Worker(module, keys, random.Random(rng.random()), counters) for keys in slices]
        samples.append(sample(0))
        done = 0
        started = time.perf_counter()
        while done < args.operations:
            batch = min(args.sample_every, args.operations - done)
            shares = [batch // len(workers)] * len(workers)
            for i in range(batch % len(workers)):
                shares[i] += 1
            async with anyio.create_task_group() as group:
                for worker, share in zip(workers, shares, strict=True):
                    group.start_soon(worker.run, share)
            for _ in range(batch):
                if args.inject_leak_bytes:
                    leaked.append(b"\x01" * args.inject_leak_bytes)
                if args.inject_leak_fds_every and (done + 1) % args.inject_leak_fds_every == 0:
                    leaked_fds.append(os.open(os.devnull, os.O_RDONLY))
                done += 1
            samples.append(sample(done))
        seconds = time.perf_counter() - started
    for fd in leaked_fds:
        os.close(fd)
    return {
        "backend": args.backend,
        "operations": done,
        "warmup": args.warmup,
        "concurrency": args.concurrency,
        "keys": args.keys,
        "seconds": seconds,
        "counts": counters.operations,
        "misses": counters.misses,
        "bytes_written": counters.bytes_written,
        "bytes_read": counters.bytes_read,
        "samples": samples,
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(prog="python -m tests.reliability.soak")
    parser.add_argument("--backend", choices=("fs", "s3"), required=True)
    parser.add_argument("--root", help="fs: the store's root directory")
    parser.add_argument("--endpoint-url", help="s3: the endpoint")
    parser.add_argument("--bucket", help="s3: the bucket")
    parser.add_argument("--region", default="us-east-1", help="s3: the region")
    parser.add_argument("--operations", type=int, required=True)
    parser.add_argument("--warmup", type=int, required=True, help="operations before the baseline")
    parser.add_argument("--sample-every", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--keys", type=int, default=512, help="the working set of keys")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--inject-leak-bytes", type=int, default=0)
    parser.add_argument("--inject-leak-fds-every", type=int, default=0)
    args = parser.parse_args(argv)
    if args.backend == "fs" and not args.root:
        parser.error("--backend fs needs --root")
    if args.backend == "s3":
        if not (args.endpoint_url and args.bucket):
            parser.error("--backend s3 needs --endpoint-url and --bucket")
        missing = [name for name in (ACCESS_KEY_ENV, SECRET_KEY_ENV) if name not in os.environ]
        if missing:
            parser.error(f"--backend s3 needs {' and '.join(missing)} in the environment")
    if args.warmup % args.sample_every or not 0 < args.warmup < args.operations:
        parser.error("--warmup must be a multiple of --sample-every, below --operations")
    if args.keys < args.concurrency:
        parser.error("--keys must be at least --concurrency")
    return args


def main(argv: list[str] | None = None) -> None:
    """Run the soak and print its JSON report."""
    args = parse_args(argv)
    # An unclosed socket, file or stream shows up as a ResourceWarning (or another error)
    # raised where nobody can catch it, in a finaliser: collect those for the report.
    unraisable: list[str] = []

    def keep(problem: sys.UnraisableHookArgs) -> None:
        unraisable.append(f"{problem.exc_type.__name__}: {problem.exc_value}"[:500])

    sys.unraisablehook = keep
    warnings.simplefilter("error", ResourceWarning)
    report = anyio.run(soak, args)
    gc.collect()
    report["unraisable"] = unraisable
    json.dump(report, sys.stdout)
    sys.stdout.write("\n")


# ---- judging a report -------------------------------------------------------------------------


@dataclass(frozen=True)
class Summary:
    """What a report says about the process's resources after the warm-up.

    RSS moves in steps as the allocator takes and reuses memory, so one sample is noisy; the
    figures compare *settled* values: the lowest RSS of a window of samples (a tenth of the
    samples after the warm-up, at least three) right after the warm-up, and the lowest of the
    last window. A process that keeps ``n`` bytes per operation shows a growth of about ``n``
    times `measured_operations` minus one window, which is what `resolution` reports.
    """

    operations: int
    """Operations in all."""
    ops_per_second: float
    """Operations per second over the whole run."""
    measured_operations: int
    """Operations after the warm-up."""
    window_operations: int
    """Operations covered by one window of samples."""
    rss_at_warmup: int
    """The settled RSS right after the warm-up (bytes)."""
    rss_growth: int
    """The settled RSS at the end minus `rss_at_warmup` (bytes)."""
    rss_peak_growth: int
    """The highest RSS sample after the warm-up minus `rss_at_warmup` (bytes)."""
    fds_at_warmup: int
    """Open descriptors at the end of the warm-up."""
    fds_min: int
    """The fewest open descriptors from the end of the warm-up on."""
    fds_max: int
    """The most open descriptors from the end of the warm-up on."""
    fds_last: int
    """Open descriptors at the end."""
    sockets_at_warmup: int
    """Open sockets at the end of the warm-up."""
    sockets_min: int
    """The fewest open sockets from the end of the warm-up on."""
    sockets_max: int
    """The most open sockets from the end of the warm-up on."""
    sockets_last: int
    """Open sockets at the end."""

    def resolution(self, rss_bound: int) -> float:
        """Return the smallest leak per operation (bytes) that exceeds ``rss_bound``."""
        return rss_bound / max(1, self.measured_operations - self.window_operations)


def summarize(report: dict[str, Any]) -> Summary:
    """Reduce a report's samples to the figures the harness checks and records."""
    samples = report["samples"]
    at = next(i for i, s in enumerate(samples) if s["operations"] == report["warmup"])
    after = samples[at:]
    window = max(3, (len(after) - 1) // 10)
    if len(after) < 2 * window:
        raise ValueError(f"{len(after)} samples after the warm-up are too few to judge")
    baseline = min(s["rss"] for s in after[:window])
    settled = min(s["rss"] for s in after[-window:])
    fds = [s["fds"] for s in after]
    sockets = [s["sockets"] for s in after]
    return Summary(
        operations=report["operations"],
        ops_per_second=report["operations"] / report["seconds"],
        measured_operations=after[-1]["operations"] - after[0]["operations"],
        window_operations=after[window - 1]["operations"] - after[0]["operations"],
        rss_at_warmup=baseline,
        rss_growth=settled - baseline,
        rss_peak_growth=max(s["rss"] for s in after) - baseline,
        fds_at_warmup=fds[0],
        fds_min=min(fds),
        fds_max=max(fds),
        fds_last=fds[-1],
        sockets_at_warmup=sockets[0],
        sockets_min=min(sockets),
        sockets_max=max(sockets),
        sockets_last=sockets[-1],
    )


def problems(summary: Summary, *, rss_bound: int, fd_slack: int) -> list[str]:
    """Return what is wrong with a run (empty when it shows no leak).

    Args:
        summary: The run's figures.
        rss_bound: The most RSS may grow after the warm-up (bytes).
        fd_slack: How many descriptors (pooled connections) may open after the warm-up.
    """
    found = []
    if summary.rss_growth > rss_bound:
        found.append(
            f"RSS grew by {summary.rss_growth} bytes over {summary.measured_operations} "
            f"operations after the warm-up (bound {rss_bound})"
        )
    if summary.fds_max > summary.fds_at_warmup + fd_slack:
        found.append(
            f"open descriptors rose from {summary.fds_at_warmup} to {summary.fds_max} "
            f"after the warm-up (slack {fd_slack})"
        )
    if summary.sockets_max > summary.sockets_at_warmup + fd_slack:
        found.append(
            f"sockets rose from {summary.sockets_at_warmup} to {summary.sockets_max} "
            f"after the warm-up (slack {fd_slack})"
        )
    return found


if __name__ == "__main__":
    main()
