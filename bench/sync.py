"""Benchmark of SyncStore against awaiting the same calls directly (4 KiB objects).

Run with ``python bench/sync.py [rounds]`` (default 10). Sides alternate in windows of a
quarter of a second and medians are printed; a ratio compares windows a fraction of a second
apart, because the load of a shared machine changes more slowly than that.

- **per call**: the time SyncStore adds to one call (memory module, one thread).
- **throughput**: 8 threads calling one SyncStore against 8 async tasks awaiting one module,
  each doing the same operations (put, then open + read + close) on the same keys, over the
  memory and fs modules; with the process CPU time per operation of each side, a view that
  depends less on how much of the machine the process gets.
- **bounds over memory**: what the GIL allows. No two threads run Python at once, so a
  threaded operation costs at least the adapter's and the module's own work, measured by
  driving every call's coroutine in the calling thread (no hand-off at all), plus its two
  round trips to the loop, measured with 8 threads calling a no-op coroutine. The same
  hand-off to a plain Python thread (a queue and locks, no event loop) is the floor for any
  design that runs the modules on one loop thread.
"""

from __future__ import annotations

import _thread
import statistics
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from typing import NamedTuple, TypeVar, cast

import anyio
import anyio.to_thread

from asyncstore import StorageModule
from asyncstore.config import open_store
from asyncstore.sync import SyncStore, _portal

T = TypeVar("T")

DATA = b"x" * 4096
CALLS = 5000
WORKERS = 8
WINDOW = 0.25  # seconds per measurement window
ROUND_TRIPS = 2  # per operation: put, then open + read + close (one trip for a small object)


def median(values: list[float]) -> float:
    return statistics.median(values)


class Run(NamedTuple):
    """One measurement window."""

    operations: int
    seconds: float
    cpu: float  # process CPU time, every thread included

    @property
    def rate(self) -> float:
        return self.operations / self.seconds

    @property
    def cpu_per_operation(self) -> float:
        return self.cpu / max(1, self.operations)


# ---- per call ----------------------------------------------------------------------------


def per_call_round(store: SyncStore) -> dict[str, tuple[float, float]]:
    module = store.module

    async def direct_get_size() -> float:
        began = time.perf_counter()
        for _ in range(CALLS):
            await module.get_size("k")
        return (time.perf_counter() - began) / CALLS

    async def direct_put_read() -> float:
        began = time.perf_counter()
        for _ in range(CALLS):
            await module.put(DATA, key="k")
            async with await module.get_read_stream("k") as stream:
                await stream.read()
        return (time.perf_counter() - began) / CALLS

    def sync_get_size() -> float:
        began = time.perf_counter()
        for _ in range(CALLS):
            store.get_size("k")
        return (time.perf_counter() - began) / CALLS

    def sync_put_read() -> float:
        began = time.perf_counter()
        for _ in range(CALLS):
            store.put(DATA, key="k")
            with store.get_read_stream("k") as stream:
                stream.read()
        return (time.perf_counter() - began) / CALLS

    return {
        "get_size": (_portal.call(direct_get_size), sync_get_size()),
        "put + read 4 KiB": (_portal.call(direct_put_read), sync_put_read()),
    }


def per_call_overhead(rounds: int) -> None:
    with SyncStore.open("memory://") as store:
        store.put(DATA, key="k")
        results = [per_call_round(store) for _ in range(rounds)]
    print(f"per call (memory, one thread, {rounds} rounds; medians)")
    for name in results[0]:
        direct = median([r[name][0] for r in results])
        sync = median([r[name][1] for r in results])
        added = median([r[name][1] - r[name][0] for r in results])
        print(
            f"  {name:18} await {direct * 1e6:7.1f} us   SyncStore {sync * 1e6:7.1f} us   "
            f"added {added * 1e6:6.1f} us"
        )


# ---- throughput --------------------------------------------------------------------------


def run_threads(work: Callable[[int, float], int], seconds: float = WINDOW) -> Run:
    """Run ``work(number, deadline)`` (returning its operation count) in 8 threads."""
    counts: list[int] = []
    ready = threading.Barrier(WORKERS + 1)
    deadline = 0.0

    def worker(number: int) -> None:
        ready.wait()
        counts.append(work(number, deadline))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(WORKERS)]
    for thread in threads:
        thread.start()
    cpu = time.process_time()
    began = time.perf_counter()
    deadline = began + seconds
    ready.wait()
    for thread in threads:
        thread.join()
    return Run(sum(counts), time.perf_counter() - began, time.process_time() - cpu)


def threaded(store: SyncStore) -> Run:
    def thread_worker(number: int, deadline: float) -> int:
        index = 0
        while time.perf_counter() < deadline:
            key = f"{number}/{index % 50}"
            store.put(DATA, key=key)
            with store.get_read_stream(key) as stream:
                stream.read()
            index += 1
        return index

    return run_threads(thread_worker)


async def tasks(module: StorageModule) -> Run:
    counts: list[int] = []

    async def task_worker(number: int, deadline: float) -> None:
        index = 0
        while time.perf_counter() < deadline:
            key = f"{number}/{index % 50}"
            await module.put(DATA, key=key)
            async with await module.get_read_stream(key) as stream:
                await stream.read()
            index += 1
        counts.append(index)

    cpu = time.process_time()
    began = time.perf_counter()
    async with anyio.create_task_group() as group:
        for number in range(WORKERS):
            group.start_soon(task_worker, number, began + WINDOW)
    return Run(sum(counts), time.perf_counter() - began, time.process_time() - cpu)


def throughput(url: str, label: str, rounds: int) -> None:
    thread_runs: list[Run] = []
    task_runs: list[Run] = []

    async def main() -> None:
        async with open_store(url) as module:
            for _ in range(rounds):
                task_runs.append(await tasks(module))
                # The threads run while this loop waits in a worker thread, as a host's would.
                thread_runs.append(await anyio.to_thread.run_sync(threaded, store))
            task_runs.append(await tasks(module))

    with SyncStore.open(url) as store:
        anyio.run(main)
    # Each thread window against the mean of the task windows either side of it.
    ratios = [
        run.rate / ((task_runs[index].rate + task_runs[index + 1].rate) / 2)
        for index, run in enumerate(thread_runs)
    ]
    quartiles = statistics.quantiles(ratios)
    thread_cpu = median([run.cpu_per_operation for run in thread_runs])
    task_cpu = median([run.cpu_per_operation for run in task_runs])
    print(
        f"  {label:6} {WORKERS} threads {median([r.rate for r in thread_runs]):7.0f} ops/s   "
        f"{WORKERS} tasks {median([r.rate for r in task_runs]):7.0f} ops/s   "
        f"ratio {median(ratios):.2f} (quartiles {quartiles[0]:.2f}-{quartiles[2]:.2f})\n"
        f"  {'':6} CPU per op: threads {thread_cpu * 1e6:5.0f} us, tasks {task_cpu * 1e6:5.0f} us"
        f"   ratio {task_cpu / thread_cpu:.2f}"
    )


# ---- bounds ------------------------------------------------------------------------------


async def _nothing() -> None:
    pass


def loop_hand_offs() -> Run:
    """8 threads calling a no-op coroutine on the loop thread."""

    def work(number: int, deadline: float) -> int:
        count = 0
        while time.perf_counter() < deadline:
            _portal.call(_nothing)
            count += 1
        return count

    return run_threads(work)


def plain_hand_offs() -> Run:
    """8 threads handing a no-op to a plain Python thread: the cheapest hand-off in CPython.

    A queue, a semaphore that wakes the server only when it sleeps, and a lock per caller
    released when its call is done.
    """
    queue: deque[tuple[Callable[[], object], _thread.LockType]] = deque()
    wake = threading.Semaphore(0)
    state = {"sleeping": False, "stop": False}

    def serve() -> None:
        while not state["stop"]:
            while queue:
                func, done = queue.popleft()
                func()
                done.release()
            state["sleeping"] = True
            if not queue:
                wake.acquire()
            state["sleeping"] = False

    server = threading.Thread(target=serve, daemon=True)
    server.start()

    def work(number: int, deadline: float) -> int:
        done = _thread.allocate_lock()
        done.acquire()
        count = 0
        while time.perf_counter() < deadline:
            queue.append((tuple, done))
            if state["sleeping"]:
                wake.release()
            done.acquire()
            count += 1
        return count

    try:
        return run_threads(work)
    finally:
        state["stop"] = True
        wake.release()
        server.join()


def _drive(func: Callable[..., Awaitable[T]], *args: object, timeout: float | None = None) -> T:
    """Run a coroutine that never suspends to its end in the calling thread."""
    _portal.check_blocking_allowed("a blocking asyncstore call")
    coroutine = cast("Coroutine[object, None, T]", func(*args))
    try:
        coroutine.send(None)
    except StopIteration as done:
        return cast("T", done.value)
    coroutine.close()
    raise RuntimeError("the call suspended: driving it inline needs a module that never does")


def inline_operations(store: SyncStore) -> Run:
    """One thread using the store with every call's coroutine driven in that thread.

    Possible over the memory module, which never suspends: what is left is the adapter's
    own work and the module's, with no hand-off at all.
    """
    call = _portal.call
    _portal.call = _drive  # type: ignore[assignment]
    try:
        count = 0
        cpu = time.process_time()
        began = time.perf_counter()
        while time.perf_counter() < began + WINDOW:
            key = f"0/{count % 50}"
            store.put(DATA, key=key)
            with store.get_read_stream(key) as stream:
                stream.read()
            count += 1
        return Run(count, time.perf_counter() - began, time.process_time() - cpu)
    finally:
        _portal.call = call


async def awaited_operations(module: StorageModule) -> Run:
    """One task awaiting the module."""
    count = 0
    cpu = time.process_time()
    began = time.perf_counter()
    while time.perf_counter() < began + WINDOW:
        key = f"0/{count % 50}"
        await module.put(DATA, key=key)
        async with await module.get_read_stream(key) as stream:
            await stream.read()
        count += 1
    return Run(count, time.perf_counter() - began, time.process_time() - cpu)


def bounds(rounds: int) -> None:
    awaited: list[Run] = []
    inline: list[Run] = []
    loop: list[Run] = []
    plain: list[Run] = []

    async def main() -> None:
        async with open_store("memory://") as module:
            for _ in range(rounds):
                awaited.append(await awaited_operations(module))
                inline.append(await anyio.to_thread.run_sync(inline_operations, store))
                loop.append(await anyio.to_thread.run_sync(loop_hand_offs))
                plain.append(await anyio.to_thread.run_sync(plain_hand_offs))

    with SyncStore.open("memory://") as store:
        anyio.run(main)
    print(f"bounds over memory ({rounds} rounds; medians)")
    print(f"  one task awaiting             {1e6 / median([r.rate for r in awaited]):6.1f} us/op")
    no_hand_off = [i.rate / a.rate for i, a in zip(inline, awaited, strict=True)]
    print(
        f"  SyncStore, no hand-off        {1e6 / median([r.rate for r in inline]):6.1f} us/op"
        f"   best ratio {median(no_hand_off):.2f}"
    )
    for name, trips in [("loop", loop), ("plain-thread", plain)]:
        best = [
            (1 / a.rate) / (1 / i.rate + ROUND_TRIPS / t.rate)
            for a, i, t in zip(awaited, inline, trips, strict=True)
        ]
        print(
            f"  + {ROUND_TRIPS} {name + ' hand-offs':22} {1e6 / median([t.rate for t in trips]):6.1f} "
            f"us/trip ({WORKERS} threads, no-op)   best ratio {median(best):.2f}"
        )


if __name__ == "__main__":
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    per_call_overhead(max(3, rounds // 2))
    print(f"throughput ({WORKERS} threads vs {WORKERS} tasks, {rounds} rounds; medians)")
    throughput("memory://", "memory", rounds)
    with tempfile.TemporaryDirectory() as root:
        throughput(f"fs://{root}?fsync=false", "fs", rounds)
    bounds(rounds)
