"""Benchmark what the view middleware add to a 4 KiB get: readonly, prefix and mount.

    python bench/views.py                    # memory and fs, asyncio
    python bench/views.py --backend trio     # the same on trio
    python bench/views.py --stores fs --pairs 41 --gets 500

A get opens a stream of a stored 4 KiB object, reads it whole and closes the stream: the
small read a web application serves most. Each view reads the same object of the same bare
store instance as the bare store's own get it is compared with:

  * readonly          ReadOnlyModule(inner=store)
  * prefix            PrefixModule(inner=store, prefix="bench/views")
  * mount, root       MountModule(mounts={"": store, "media/": other}): the root mount
  * mount, media/     MountModule(mounts={"media/": store, "": other}): a handle renamed

Timing runs in pairs, back to back in one process: a batch of --gets gets from the bare store
and one from the view (in alternating order, so that neither always runs first). Each
figure printed is a median: the bare and the view time per get over the pairs, and the
overhead, the median of the pairs' ratios (view / bare), so that a change of load on a shared
machine hits both sides of a ratio alike. Times are the process's CPU time by default (fs
reads run in worker threads, which count too), so that other processes do not; --clock wall
measures elapsed time. Contents are checked before timing.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import anyio

import asyncstore_fs as fs
from asyncstore.memory import MemoryModule
from asyncstore.middleware.mount import MountModule
from asyncstore.middleware.prefix import PrefixModule
from asyncstore.middleware.readonly import ReadOnlyModule
from asyncstore.module import StorageModule

KEY = "objects/4k.bin"
DATA = bytes(range(256)) * 16  # 4 KiB
PREFIX = "bench/views/"
LIMIT = 0.05
clock = time.process_time  # set by --clock


@dataclass
class Result:
    store: str
    view: str
    bare: float
    viewed: float
    ratio: float


def get_loop(store: StorageModule, key: str, count: int) -> Callable[[], Awaitable[float]]:
    async def run() -> float:
        started = clock()
        for _ in range(count):
            async with await store.get_read_stream(key) as stream:
                await stream.read()
        return clock() - started

    return run


async def views_of(bare: StorageModule) -> list[tuple[str, StorageModule, str, str]]:
    """The views of ``bare``: each with the handle of the object, and its key in ``bare``."""
    await bare.put(DATA, key=KEY)
    await bare.put(DATA, key=PREFIX + KEY)
    other = MemoryModule()
    return [
        ("readonly", ReadOnlyModule(inner=bare), KEY, KEY),
        ("prefix", PrefixModule(inner=bare, prefix=PREFIX), KEY, PREFIX + KEY),
        ("mount, root", MountModule(mounts={"": bare, "media/": other}), KEY, KEY),
        ("mount, media/", MountModule(mounts={"media/": bare, "": other}), "media/" + KEY, KEY),
    ]


async def measure(name: str, bare: StorageModule, pairs: int, gets: int) -> list[Result]:
    results = []
    for view_name, view, handle, key in await views_of(bare):
        async with await view.get_read_stream(handle) as stream:
            assert await stream.read() == DATA and stream.info.handle == handle
        plain, viewed = get_loop(bare, key, gets), get_loop(view, handle, gets)
        await plain()
        await viewed()  # warm both up
        bare_times: list[float] = []
        view_times: list[float] = []
        for index in range(pairs):
            if index % 2:
                view_times.append(await viewed())
                bare_times.append(await plain())
            else:
                bare_times.append(await plain())
                view_times.append(await viewed())
        ratios = [v / b for v, b in zip(view_times, bare_times, strict=True)]
        results.append(
            Result(
                name,
                view_name,
                statistics.median(bare_times) / gets,
                statistics.median(view_times) / gets,
                statistics.median(ratios),
            )
        )
    return results


async def run(stores: list[str], pairs: int, gets: int) -> list[Result]:
    results: list[Result] = []
    for name in stores:
        if name == "memory":
            results += await measure("memory", MemoryModule(), pairs, gets)
        else:
            with tempfile.TemporaryDirectory() as directory:
                store = fs.FileSystemModule(root=directory, fsync=False)
                results += await measure("fs", store, pairs, gets)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stores", default="memory,fs", help="comma-separated: memory, fs")
    parser.add_argument("--pairs", type=int, default=21, help="timed pairs per view")
    parser.add_argument("--gets", type=int, default=0, help="gets per batch (default: by store)")
    parser.add_argument("--backend", choices=["asyncio", "trio"], default="asyncio")
    parser.add_argument("--clock", choices=["cpu", "wall"], default="cpu")
    args = parser.parse_args()
    global clock
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    results: list[Result] = []
    for name in args.stores.split(","):
        gets = args.gets or (4000 if name == "memory" else 400)
        results += anyio.run(run, [name], args.pairs, gets, backend=args.backend)
    print(
        f"4 KiB get: open, read, close; {args.pairs} pairs, {args.clock} time, {args.backend}; "
        "medians"
    )
    print()
    print("| store | view | bare store | through the view | view : bare | overhead |")
    print("|---|---|---|---|---|---|")
    for r in results:
        verdict = "ok" if r.ratio - 1 <= LIMIT else f"over {LIMIT:.0%}"
        print(
            f"| {r.store} | {r.view} | {r.bare * 1e6:.2f} µs | {r.viewed * 1e6:.2f} µs | "
            f"{r.ratio:.3f} | {(r.ratio - 1) * 100:+.1f} % ({verdict}) |"
        )


if __name__ == "__main__":
    main()
