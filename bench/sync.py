"""Benchmark of SyncStore against awaiting the same calls directly (4 KiB objects).

Run with ``python bench/sync.py``. Prints the per-call
overhead SyncStore adds (memory module), and the throughput of 8 threads against 8 async
tasks (memory and fs modules).
"""

from __future__ import annotations

import tempfile
import threading
import time

import anyio

from asyncstore import StorageModule
from asyncstore.config import open_store
from asyncstore.sync import SyncStore, _portal

DATA = b"x" * 4096
CALLS = 5000
WORKERS = 8
PER_WORKER = 2000


def per_call_overhead() -> None:
    store = SyncStore.open("memory://")
    store.put(DATA, key="k")
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

    for name, direct, sync in [
        ("get_size", _portal.call(direct_get_size), sync_get_size()),
        ("put + read 4 KiB", _portal.call(direct_put_read), sync_put_read()),
    ]:
        print(
            f"{name:18} await {direct * 1e6:7.1f} us   SyncStore {sync * 1e6:7.1f} us   "
            f"added {(sync - direct) * 1e6:6.1f} us"
        )
    store.close()


def throughput(url: str = "memory://") -> None:
    store = SyncStore.open(url)

    def thread_worker(number: int) -> None:
        for index in range(PER_WORKER):
            key = f"{number}/{index % 50}"
            store.put(DATA, key=key)
            with store.get_read_stream(key) as stream:
                stream.read()

    threads = [threading.Thread(target=thread_worker, args=(n,)) for n in range(WORKERS)]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    threaded = WORKERS * PER_WORKER / (time.perf_counter() - began)
    store.close()

    async def tasks() -> float:
        async with open_store(url) as module:
            return await _run_tasks(module)

    async def _run_tasks(module: StorageModule) -> float:
        async def task_worker(number: int) -> None:
            for index in range(PER_WORKER):
                key = f"{number}/{index % 50}"
                await module.put(DATA, key=key)
                async with await module.get_read_stream(key) as stream:
                    await stream.read()

        began = time.perf_counter()
        async with anyio.create_task_group() as group:
            for number in range(WORKERS):
                group.start_soon(task_worker, number)
        return WORKERS * PER_WORKER / (time.perf_counter() - began)

    awaited = anyio.run(tasks)
    print(
        f"{url.split(':')[0]:6} {WORKERS} threads {threaded:8.0f} ops/s   {WORKERS} tasks {awaited:8.0f} ops/s   "
        f"ratio {threaded / awaited:.2f}"
    )


if __name__ == "__main__":
    per_call_overhead()
    throughput()
    with tempfile.TemporaryDirectory() as root:
        throughput(f"fs://{root}?fsync=false")
