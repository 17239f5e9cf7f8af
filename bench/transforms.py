"""Benchmark stream transforms against plain copies and the raw zlib primitive.

    python bench/transforms.py                 # 256 MiB copies, 64 MiB of text to gzip
    python bench/transforms.py --mib 64 --gzip-mib 16 --repeat 3   # a quicker run

Measures, in one run:
  * ``identity`` in this process, run on an object from one store into another, against a
    plain copy of the same object between the same stores (``put`` of the source's read
    stream): fs to fs (files in a temporary directory, no fsync) and memory to memory;
  * the same with ``isolation="process"`` (a worker process, bytes over two pipes);
  * ``gzip`` (level 6) from memory to memory, against zlib alone compressing the same
    bytes in the same 1 MiB chunks in one loop (no storage, no streams).

Every ratio is the median of the ratios of runs made back to back (baseline, then
transform), so that load changes hit both alike; a ratio is baseline time / transform time
(1.0: as fast as the baseline). Times are CPU time by default: this process's (all its
threads) plus that of the transform worker processes (read from /proc), so that other work
on a shared machine does not count; --clock wall measures elapsed time instead (on an idle
machine with cores to spare, a worker process then also runs alongside its host). Both are
printed; the floors apply to the chosen clock. Contents are checked after the timed runs.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import tempfile
import time
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import anyio

from asyncstore import run_transform
from asyncstore.memory import MemoryModule
from asyncstore.module import StorageModule
from asyncstore_fs import FileSystemModule

MiB = 1 << 20


def text_block() -> bytes:
    lines = (
        f"2026-11-24T18:{i % 60:02d}:{i % 59:02d}Z INFO request id={i:08x} path=/api/v1/items/"
        f"{i * 7919 % 100000} status={200 if i % 13 else 404} took={i % 97}ms\n"
        for i in range(40000)
    )
    return "".join(lines).encode()


_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def workers_cpu() -> float:
    """CPU seconds used so far by the transform worker processes alive now."""
    from asyncstore.transforms import _pool

    total = 0.0
    for worker in [w for idle in _pool._idle.values() for w in idle]:
        try:
            fields = open(f"/proc/{worker.pid}/stat").read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / _TICK  # utime, stime
    return total


def cpu() -> float:
    return time.process_time() + workers_cpu()


clock: Callable[[], float] = cpu


async def timed(action: Callable[[], Awaitable[Any]]) -> tuple[float, float]:
    """Run ``action``; return (the chosen clock's seconds, wall seconds)."""
    start, wall = clock(), time.perf_counter()
    await action()
    return clock() - start, time.perf_counter() - wall


async def digest(store: StorageModule, key: str) -> str:
    sha = hashlib.sha256()
    async with await store.get_read_stream(key) as stream:
        async for chunk in stream:
            sha.update(chunk)
    return sha.hexdigest()


@dataclass
class Figures:
    """The ratios (chosen clock, then wall) and seconds of back-to-back pairs."""

    ratios: list[float]
    baselines: list[float]
    transforms: list[float]
    wall_ratios: list[float]


async def copy_pair(
    source: StorageModule, target: StorageModule, repeat: int, isolation: str
) -> Figures:

    async def plain() -> None:
        async with await source.get_read_stream("object") as stream:
            await target.put(stream, key="copied")

    async def transformed() -> None:
        await run_transform(
            "identity",
            inputs=[(source, "object")],
            outputs=[(target, "transformed")],
            isolation=isolation,
        )

    await plain()
    await transformed()  # warm-up: imports, threads, page cache, a worker's start
    ratios, plains, transforms, walls = [], [], [], []
    for _ in range(repeat):
        baseline, baseline_wall = await timed(plain)
        measured, measured_wall = await timed(transformed)
        plains.append(baseline)
        transforms.append(measured)
        ratios.append(baseline / measured)
        walls.append(baseline_wall / measured_wall)
    wanted = await digest(source, "object")
    assert await digest(target, "copied") == wanted
    assert await digest(target, "transformed") == wanted
    return Figures(ratios, plains, transforms, walls)


async def gzip_pair(data: bytes, repeat: int) -> Figures:
    view = memoryview(data)

    def raw() -> int:
        compressor = zlib.compressobj(6, zlib.DEFLATED, 31)
        size = 0
        for at in range(0, len(view), MiB):
            size += len(compressor.compress(view[at : at + MiB]))
        return size + len(compressor.flush())

    async with MemoryModule() as store:
        await store.put(data, key="text")

        async def transformed() -> None:
            await run_transform("gzip", inputs=[(store, "text")], outputs=[(store, "text.gz")])

        async def raw_async() -> None:
            raw()

        await transformed()
        ratios, raws, transforms, walls = [], [], [], []
        for _ in range(repeat):
            baseline, baseline_wall = await timed(raw_async)
            measured, measured_wall = await timed(transformed)
            raws.append(baseline)
            transforms.append(measured)
            ratios.append(baseline / measured)
            walls.append(baseline_wall / measured_wall)
        async with await store.get_read_stream("text.gz") as stream:
            assert zlib.decompress(await stream.read(), 47) == data
    return Figures(ratios, raws, transforms, walls)


def line(name: str, size: int, figures: Figures, floor: float) -> str:
    ratio = statistics.median(figures.ratios)
    baseline = statistics.median(figures.baselines)
    measured = statistics.median(figures.transforms)
    low, high = min(figures.ratios), max(figures.ratios)
    verdict = "ok" if ratio >= floor else f"BELOW {floor}"
    return (
        f"{name:<46} {ratio:5.2f}x [{low:.2f}-{high:.2f}]  wall {statistics.median(figures.wall_ratios):4.2f}x  "
        f"(baseline {size / baseline / MiB:6.0f} MiB/s, transform {size / measured / MiB:6.0f} "
        f"MiB/s; floor {floor}: {verdict})"
    )


async def main(options: argparse.Namespace) -> None:
    size = options.mib * MiB
    block = os.urandom(4 * MiB)
    data = block * (size // len(block))
    text = text_block()
    gzip_data = (text * (options.gzip_mib * MiB // len(text) + 1))[: options.gzip_mib * MiB]
    print(
        f"{options.clock} time; median [min-max] of {options.repeat} back-to-back pairs; "
        f"{options.mib} MiB objects"
    )
    with tempfile.TemporaryDirectory(dir=options.dir) as root:
        async with (
            FileSystemModule(root=os.path.join(root, "a"), fsync=False) as fs_a,
            FileSystemModule(root=os.path.join(root, "b"), fsync=False) as fs_b,
        ):
            await fs_a.put(data, key="object")
            for isolation, floor in (("inline", 0.9), ("process", 0.5)):
                figures = await copy_pair(fs_a, fs_b, options.repeat, isolation)
                print(line(f"identity {isolation} fs -> fs / plain copy", size, figures, floor))
    async with MemoryModule() as mem_a, MemoryModule() as mem_b:
        await mem_a.put(data, key="object")
        for isolation, floor in (("inline", 0.9), ("process", 0.5)):
            figures = await copy_pair(mem_a, mem_b, options.repeat, isolation)
            print(line(f"identity {isolation} memory -> memory / plain copy", size, figures, floor))
    figures = await gzip_pair(gzip_data, options.repeat)
    print(line("gzip (level 6) memory -> memory / raw zlib", len(gzip_data), figures, 0.8))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mib", type=int, default=256, help="size of the copied object")
    parser.add_argument("--gzip-mib", type=int, default=64, help="size of the text to gzip")
    parser.add_argument("--repeat", type=int, default=7, help="pairs per figure")
    parser.add_argument("--dir", default=None, help="where the fs stores live (default: TMPDIR)")
    parser.add_argument("--clock", choices=["cpu", "wall"], default="cpu")
    arguments = parser.parse_args()
    if arguments.clock == "wall":
        clock = time.perf_counter
    anyio.run(main, arguments)
