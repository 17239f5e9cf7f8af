"""Benchmark the memory module against the same dict store built on the key-value base.

    python bench/kv.py               # about a minute
    python bench/kv.py --repeat 3    # quicker

Answers whether the memory module would lose throughput by being rebuilt on
`asyncstore.kv.KeyValueModule` (a dict behind the four async hooks, as `DictStore` below is):
small puts, opens-and-reads and stats (operations per second), streamed puts and whole reads of
a large object (MiB/s), and listing. Times are the process's CPU time (one thread), each figure
the median of --repeat runs; the ratio is the median of the ratios of back-to-back runs, so
that load on a shared machine hits both alike.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import anyio

from asyncstore.kv import Expected, KeyValueModule
from asyncstore.memory import MemoryModule
from asyncstore.module import StorageModule

MiB = 1 << 20


class DictStore(KeyValueModule):
    """The memory module's job on the key-value base: a dict behind the four hooks."""

    name = "kv-dict"

    def __init__(self) -> None:
        self.data: dict[str, tuple[str, bytes]] = {}

    async def _get(self, key: str, start: int, end: int) -> tuple[str, bytes] | None:
        found = self.data.get(key)
        return None if found is None else (found[0], found[1][start:end])

    async def _set(
        self, key: str, value: bytes, record: str, expected: Expected | None = None
    ) -> bool:
        current = self.data.get(key)
        if expected and (current[0] if current else None) != expected.record:
            return False
        self.data[key] = (record, value)
        return True

    async def _delete(self, key: str, expected: Expected | None = None) -> bool:
        current = self.data.get(key)
        if expected and (current[0] if current else None) != expected.record:
            return False
        self.data.pop(key, None)
        return True

    async def _scan(self, prefix: str) -> AsyncIterator[tuple[str, str]]:
        for key in sorted(k for k in self.data if k.startswith(prefix)):
            if key in self.data:
                yield key, self.data[key][0]


SMALL = b"x" * 1024


async def chunks(total: int) -> AsyncIterator[bytes]:
    block = bytes(range(256)) * (MiB // 256)
    for _ in range(total // MiB):
        yield block


def workloads(
    count: int, large: int
) -> dict[str, tuple[Callable[[StorageModule], Awaitable[None]], float, str]]:
    """Name -> (run against a module, units of work per run, unit)."""

    async def small_puts(store: StorageModule) -> None:
        for index in range(count):
            await store.put(SMALL, key=f"small/{index}")

    async def small_reads(store: StorageModule) -> None:
        for index in range(count):
            async with await store.get_read_stream(f"small/{index}") as stream:
                await stream.read()

    async def stats(store: StorageModule) -> None:
        for index in range(count):
            await store.stat(f"small/{index}")

    async def listing(store: StorageModule) -> None:
        assert len([info async for info in store.list("small/")]) == count

    async def large_put(store: StorageModule) -> None:
        await store.put(chunks(large), key="large")

    async def large_read(store: StorageModule) -> None:
        async with await store.get_read_stream("large") as stream:
            async for _chunk in stream:
                pass

    return {
        "put 1 KiB": (small_puts, count, "ops/s"),
        "open+read 1 KiB": (small_reads, count, "ops/s"),
        "stat": (stats, count, "ops/s"),
        "list": (listing, count, "objects/s"),
        f"put {large // MiB} MiB streamed": (large_put, large / MiB, "MiB/s"),
        f"read {large // MiB} MiB": (large_read, large / MiB, "MiB/s"),
    }


async def timed(run: Callable[[StorageModule], Awaitable[None]], store: StorageModule) -> float:
    start = time.process_time()
    await run(store)
    return time.process_time() - start


async def main(repeat: int, count: int, large: int) -> None:
    memory, kv = MemoryModule(), DictStore()
    print(f"{'workload':<24}{'memory':>12}{'kv base':>12}  {'unit':<10}{'kv/memory':>10}")
    for name, (run, units, unit) in workloads(count, large).items():
        rates: dict[str, list[float]] = {"memory": [], "kv": []}
        ratios = []
        for _ in range(repeat):
            pair = {}
            for label, store in (("memory", memory), ("kv", kv)):
                seconds = await timed(run, store)
                pair[label] = units / seconds if seconds else float("inf")
                rates[label].append(pair[label])
            ratios.append(pair["kv"] / pair["memory"])
        med = {label: statistics.median(values) for label, values in rates.items()}
        print(
            f"{name:<24}{med['memory']:>12.0f}{med['kv']:>12.0f}  {unit:<10}"
            f"{statistics.median(ratios):>10.2f}"
        )
    print("CPU-time rates, medians of the runs; kv/memory > 1 means the kv base is faster")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--count", type=int, default=5000)
    parser.add_argument("--mib", type=int, default=64)
    arguments = parser.parse_args()
    anyio.run(main, arguments.repeat, arguments.count, arguments.mib * MiB)
