"""Benchmark asyncstore-fs against raw system calls, aiofiles and peers (fsspec, obstore, OpenDAL).

    pip install -e ./asyncstore_fs -r bench/requirements.txt
    python bench/fs.py                      # the full run (a few minutes)
    python bench/fs.py --large-mib 256 --small-count 2000 --repeat 3   # a quick one

Measures, in one run and with equal durability (no fsync unless a row says so):
  * one large object put and get, streamed in 1 MiB chunks, against a raw os.write loop,
    a raw readinto loop with a reused buffer, an aiofiles loop and the peers;
  * many small objects with N concurrent tasks: put, get, stat and delete operations per
    second, against a plain one-thread loop doing the same atomic write (temp + rename);
  * peak RSS growth while streaming a large object through put and get (a child process).
Every figure is the median of --repeat runs. Contents are checked after each timed get.
Peers that are not installed are skipped with a note.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import anyio.to_thread

from asyncstore_fs import FileSystemModule

MiB = 1 << 20
CHUNK = MiB


def chunk_pool() -> list[bytes]:
    return [hashlib.sha256(bytes([i])).digest() * (CHUNK // 32) for i in range(8)]


POOL = chunk_pool()


def expected_digest(n_chunks: int) -> str:
    digest = hashlib.sha256()
    for i in range(n_chunks):
        digest.update(POOL[i % len(POOL)])
    return digest.hexdigest()


def file_digest(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while block := file.read(8 * MiB):
            digest.update(block)
    return digest.hexdigest()


async def chunks(n_chunks: int) -> AsyncIterator[bytes]:
    for i in range(n_chunks):
        yield POOL[i % len(POOL)]


def median_rate(samples: list[float], amount: float) -> float:
    return amount / statistics.median(samples)


def drop(path: str) -> None:
    if os.path.isdir(path):
        shutil.rmtree(path)
    elif os.path.exists(path):
        os.unlink(path)


# ---- large objects ------------------------------------------------------------------------


class Large:
    """Put and get functions for one contender, each timed by the runner."""

    def __init__(self, base: str, n_chunks: int) -> None:
        self.base = base
        self.n = n_chunks


def raw_put(path: str, n: int, fsync: bool) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        for i in range(n):
            view = memoryview(POOL[i % len(POOL)])
            while view:
                view = view[os.write(fd, view) :]
        if fsync:
            os.fsync(fd)
    finally:
        os.close(fd)


def raw_get_readinto(path: str) -> int:
    buffer = bytearray(CHUNK)
    total = 0
    with open(path, "rb", buffering=0) as file:
        while count := file.readinto(buffer):
            total += count
    return total


def raw_get_bytes(path: str) -> int:
    total = 0
    fd = os.open(path, os.O_RDONLY)
    try:
        while block := os.read(fd, CHUNK):
            total += len(block)
    finally:
        os.close(fd)
    return total


async def aiofiles_put(path: str, n: int) -> None:
    import aiofiles

    async with aiofiles.open(path, "wb") as file:
        async for chunk in chunks(n):
            await file.write(chunk)


async def aiofiles_get(path: str) -> int:
    import aiofiles

    total = 0
    async with aiofiles.open(path, "rb") as file:
        while block := await file.read(CHUNK):
            total += len(block)
    return total


async def large_benchmarks(args: argparse.Namespace, base: str) -> list[tuple[str, str, float]]:
    n = args.large_mib
    size = n * MiB
    want = expected_digest(n)
    rows: list[tuple[str, str, float]] = []

    async def measure(
        label: str,
        put: Callable[[str], Awaitable[Any]] | None,
        gets: list[tuple[str, Callable[[str], Awaitable[int]]]],
        path: str,
        cleanup: Callable[[], Any] = lambda: None,
    ) -> None:
        put_times, get_times = [], {name: [] for name, _ in gets}
        for _ in range(args.repeat):
            if put is not None:
                drop(path)  # every contender writes a new file
                os.sync()
                start = time.perf_counter()
                await put(path)
                put_times.append(time.perf_counter() - start)
            if file_digest(path) != want:
                raise SystemExit(f"{label}: stored content is wrong")
            for name, get in gets:
                start = time.perf_counter()
                got = await get(path)
                get_times[name].append(time.perf_counter() - start)
                if got != size:
                    raise SystemExit(f"{label} {name}: read {got} bytes, not {size}")
        if put_times:
            rows.append((label, "put", median_rate(put_times, size)))
        for name, times in get_times.items():
            rows.append((label, name, median_rate(times, size)))
        cleanup()
        drop(path)

    def sync(function: Callable[..., Any], *a: Any) -> Callable[[str], Awaitable[Any]]:
        async def run(path: str) -> Any:
            return function(path, *a)

        return run

    raw_path = os.path.join(base, "raw.bin")
    await measure(
        "raw os.write / readinto",
        sync(raw_put, n, False),
        [("get readinto", sync(raw_get_readinto)), ("get bytes", sync(raw_get_bytes))],
        raw_path,
    )
    await measure("raw + fsync", sync(raw_put, n, True), [], raw_path)
    await measure(
        "aiofiles 1 MiB",
        lambda p: aiofiles_put(p, n),
        [("get bytes", aiofiles_get)],
        os.path.join(base, "aiofiles.bin"),
    )

    for fsync in (False, True):
        root = os.path.join(base, f"asyncstore-{fsync}")
        store = FileSystemModule(root=root, fsync=fsync)

        async def put(path: str, store: FileSystemModule = store) -> None:
            await store.put(chunks(n), key="large/object")

        async def get_into(path: str, store: FileSystemModule = store) -> int:
            buffer = bytearray(CHUNK)
            total = 0
            async with await store.get_read_stream("large/object") as stream:
                while count := await stream.readinto(buffer):
                    total += count
            return total

        async def get_bytes(path: str, store: FileSystemModule = store) -> int:
            total = 0
            async with await store.get_read_stream("large/object") as stream:
                async for block in stream:
                    total += len(block)
            return total

        gets = [("get readinto", get_into), ("get bytes", get_bytes)] if not fsync else []
        label = "asyncstore-fs" + (" fsync" if fsync else "")
        await measure(label, put, gets, os.path.join(root, "large", "object"))
        await store.aclose()
        drop(root)

    try:
        import fsspec
    except ImportError:
        print("note: fsspec not installed, skipped")
    else:
        fs = fsspec.filesystem("file")

        def fs_put(path: str) -> None:
            with fs.open(path, "wb") as file:
                for i in range(n):
                    file.write(POOL[i % len(POOL)])

        def fs_get(path: str) -> int:
            total = 0
            with fs.open(path, "rb", block_size=CHUNK) as file:
                while block := file.read(CHUNK):
                    total += len(block)
            return total

        await measure(
            "fsspec local (sync)",
            sync(fs_put),
            [("get bytes", sync(fs_get))],
            os.path.join(base, "fsspec.bin"),
        )

    try:
        import obstore
        from obstore.store import LocalStore
    except ImportError:
        print("note: obstore not installed, skipped")
    else:
        ob_root = os.path.join(base, "obstore")
        os.makedirs(ob_root, exist_ok=True)
        ob = LocalStore(prefix=ob_root)

        async def ob_put(path: str) -> None:
            await obstore.put_async(ob, "large.bin", chunks(n), chunk_size=CHUNK)

        async def ob_get(path: str) -> int:
            total = 0
            response = await obstore.get_async(ob, "large.bin")
            async for block in response.stream(min_chunk_size=CHUNK):
                total += len(block)
            return total

        await measure(
            "obstore LocalStore",
            ob_put,
            [("get bytes", ob_get)],
            os.path.join(ob_root, "large.bin"),
        )
        drop(ob_root)

    try:
        import opendal
    except ImportError:
        print("note: opendal not installed, skipped")
    else:
        od_root = os.path.join(base, "opendal")
        op = opendal.AsyncOperator("fs", root=od_root)

        async def od_put(path: str) -> None:
            file = await op.open("large.bin", "wb")
            async for chunk in chunks(n):
                await file.write(chunk)
            await file.close()

        async def od_get(path: str) -> int:
            total = 0
            file = await op.open("large.bin", "rb")
            while block := await file.read(CHUNK):
                total += len(block)
            await file.close()
            return total

        await measure(
            "opendal fs", od_put, [("get bytes", od_get)], os.path.join(od_root, "large.bin")
        )
        drop(od_root)
    return rows


# ---- small objects ------------------------------------------------------------------------


async def run_concurrently(
    count: int, concurrency: int, op: Callable[[int], Awaitable[Any]]
) -> float:
    counter = iter(range(count))

    async def worker() -> None:
        for index in counter:
            await op(index)

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - start


def sync_loop(count: int, op: Callable[[int], Any]) -> float:
    start = time.perf_counter()
    for index in range(count):
        op(index)
    return time.perf_counter() - start


PAYLOAD = os.urandom(4096)


class Contender:
    """One contender of the small-object benchmark: its operations and how to set up."""

    def __init__(
        self,
        label: str,
        ops: dict[str, Callable[[int], Any]],
        *,
        n: int,
        blocking: bool = False,
        prepare: Callable[[], Any] | None = None,
        check: Callable[[int], Any] | None = None,
        close: Callable[[], Any] | None = None,
    ) -> None:
        self.label, self.ops, self.n, self.blocking = label, ops, n, blocking
        self.prepare, self.check, self.close = prepare, check, close
        self.samples: dict[str, list[float]] = {name: [] for name in ops}


async def _maybe_await(value: Any) -> Any:
    return await value if asyncio.iscoroutine(value) or isinstance(value, Awaitable) else value


async def small_benchmarks(
    args: argparse.Namespace, base: str
) -> list[tuple[str, dict[str, float]]]:
    count = args.small_count
    payload = PAYLOAD[: args.small_size] if args.small_size <= 4096 else os.urandom(args.small_size)
    keys = [f"d{i % 100:02d}/obj-{i}" for i in range(count)]
    contenders: list[Contender] = []

    # A plain one-thread loop doing the same atomic write: temporary file + rename.
    raw_root = os.path.join(base, "raw-small")

    def raw_prepare() -> None:
        drop(raw_root)
        for d in range(100):
            os.makedirs(os.path.join(raw_root, f"d{d:02d}"))

    def raw_put(i: int) -> None:
        path = os.path.join(raw_root, keys[i])
        temp = path + ".tmp"
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        os.write(fd, payload)
        os.close(fd)
        os.rename(temp, path)

    def raw_get(i: int) -> bytes:
        fd = os.open(os.path.join(raw_root, keys[i]), os.O_RDONLY)
        try:
            return os.read(fd, 1 << 20)
        finally:
            os.close(fd)

    contenders.append(
        Contender(
            "plain loop, 1 thread",
            {
                "put": raw_put,
                "get": raw_get,
                "stat": lambda i: os.stat(os.path.join(raw_root, keys[i])),
                "delete": lambda i: os.unlink(os.path.join(raw_root, keys[i])),
            },
            n=count,
            blocking=True,
            prepare=raw_prepare,
            check=raw_get,
        )
    )

    for fsync in (False, True):
        store = FileSystemModule(root=os.path.join(base, f"small-{fsync}"), fsync=fsync)

        async def put(i: int, store: FileSystemModule = store) -> None:
            await store.put(payload, key=keys[i])

        async def get(i: int, store: FileSystemModule = store) -> bytes:
            async with await store.get_read_stream(keys[i]) as stream:
                return await stream.read()

        async def stat(i: int, store: FileSystemModule = store) -> None:
            await store.stat(keys[i])

        async def delete(i: int, store: FileSystemModule = store) -> None:
            await store.delete(keys[i])

        if fsync:
            ops = {"put": put, "delete": delete}
            label, n = f"asyncstore-fs fsync ({args.fsync_count})", args.fsync_count
        else:
            ops = {"put": put, "get": get, "stat": stat, "delete": delete}
            label, n = "asyncstore-fs", count
        contenders.append(Contender(label, ops, n=n, check=get, close=store.aclose))

    import aiofiles
    import aiofiles.os

    af_root = os.path.join(base, "aiofiles-small")

    def af_prepare() -> None:
        drop(af_root)
        for d in range(100):
            os.makedirs(os.path.join(af_root, f"d{d:02d}"))

    async def af_put(i: int) -> None:
        async with aiofiles.open(os.path.join(af_root, keys[i]), "wb") as file:
            await file.write(payload)

    async def af_get(i: int) -> bytes:
        async with aiofiles.open(os.path.join(af_root, keys[i]), "rb") as file:
            return await file.read()

    contenders.append(
        Contender(
            "aiofiles",
            {
                "put": af_put,
                "get": af_get,
                "stat": lambda i: aiofiles.os.stat(os.path.join(af_root, keys[i])),
                "delete": lambda i: aiofiles.os.remove(os.path.join(af_root, keys[i])),
            },
            n=count,
            prepare=af_prepare,
            check=af_get,
        )
    )

    try:
        import fsspec
    except ImportError:
        print("note: fsspec not installed, skipped")
    else:
        fs = fsspec.filesystem("file", auto_mkdir=True)
        fs_root = os.path.join(base, "fsspec-small")

        def fs_path(i: int) -> str:
            return os.path.join(fs_root, keys[i])

        async def fs_get(i: int) -> bytes:
            return await anyio.to_thread.run_sync(fs.cat_file, fs_path(i))

        contenders.append(
            Contender(
                "fsspec local (thread per op)",
                {
                    "put": lambda i: anyio.to_thread.run_sync(fs.pipe_file, fs_path(i), payload),
                    "get": fs_get,
                    "stat": lambda i: anyio.to_thread.run_sync(fs.info, fs_path(i)),
                    "delete": lambda i: anyio.to_thread.run_sync(fs.rm_file, fs_path(i)),
                },
                n=count,
                check=fs_get,
            )
        )

    try:
        import obstore
        from obstore.store import LocalStore
    except ImportError:
        print("note: obstore not installed, skipped")
    else:
        ob_root = os.path.join(base, "obstore-small")
        os.makedirs(ob_root, exist_ok=True)
        ob = LocalStore(prefix=ob_root)

        async def ob_get(i: int) -> bytes:
            response = await obstore.get_async(ob, keys[i])
            return bytes(await response.bytes_async())

        contenders.append(
            Contender(
                "obstore LocalStore",
                {
                    "put": lambda i: obstore.put_async(ob, keys[i], payload),
                    "get": ob_get,
                    "stat": lambda i: obstore.head_async(ob, keys[i]),
                    "delete": lambda i: obstore.delete_async(ob, keys[i]),
                },
                n=count,
                check=ob_get,
            )
        )

    try:
        import opendal
    except ImportError:
        print("note: opendal not installed, skipped")
    else:
        op = opendal.AsyncOperator("fs", root=os.path.join(base, "opendal-small"))

        async def od_get(i: int) -> bytes:
            return bytes(await op.read(keys[i]))

        contenders.append(
            Contender(
                "opendal fs",
                {
                    "put": lambda i: op.write(keys[i], payload),
                    "get": od_get,
                    "stat": lambda i: op.stat(keys[i]),
                    "delete": lambda i: op.delete(keys[i]),
                },
                n=count,
                check=od_get,
            )
        )

    # Round-robin over the contenders in every repeat, so that all of them meet the same
    # filesystem weather (its metadata speed drifts a lot from minute to minute).
    for _ in range(args.repeat):
        for contender in contenders:
            if contender.prepare is not None:
                contender.prepare()
            for name, op_ in contender.ops.items():
                os.sync()  # start every phase with no dirty data from the previous one
                if contender.blocking:
                    elapsed = sync_loop(contender.n, op_)
                else:
                    elapsed = await run_concurrently(contender.n, args.concurrency, op_)
                contender.samples[name].append(elapsed)
                if name == "put" and contender.check is not None:
                    for index in (0, contender.n // 2, contender.n - 1):
                        if await _maybe_await(contender.check(index)) != payload:
                            raise SystemExit(f"{contender.label}: wrong content")
    for contender in contenders:
        if contender.close is not None:
            await contender.close()
    return [
        (c.label, {name: c.n / statistics.median(t) for name, t in c.samples.items()})
        for c in contenders
    ]


# ---- peak RSS -----------------------------------------------------------------------------


def current_rss() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


async def rss_child(base: str, mib: int) -> None:
    """Stream ``mib`` MiB through put and get, sampling the resident set at every chunk."""
    async with FileSystemModule(root=os.path.join(base, "rss"), fsync=False) as store:
        await store.put(b"warm-up", key="w")
        async with await store.get_read_stream("w") as stream:
            await stream.read()
        baseline = peak = current_rss()

        async def sampled_chunks() -> AsyncIterator[bytes]:
            nonlocal peak
            async for chunk in chunks(mib):
                peak = max(peak, current_rss())
                yield bytes(memoryview(chunk))  # a fresh object each time, as a real source

        await store.put(sampled_chunks(), key="rss/object")
        buffer = bytearray(CHUNK)
        async with await store.get_read_stream("rss/object") as stream:
            while await stream.readinto(buffer):
                peak = max(peak, current_rss())
        async with await store.get_read_stream("rss/object") as stream:
            async for _ in stream:
                peak = max(peak, current_rss())
    print((peak - baseline) / MiB)


def peak_rss(base: str, mib: int) -> float:
    out = subprocess.run(
        [sys.executable, __file__, "--rss-child", "--dir", base, "--rss-mib", str(mib)],
        capture_output=True,
        text=True,
        check=True,
    )
    return float(out.stdout.strip().splitlines()[-1])


# ---- report -------------------------------------------------------------------------------


def report_large(rows: list[tuple[str, str, float]]) -> None:
    base = {op: rate for label, op, rate in rows if label == "raw os.write / readinto"}
    base_fsync = {op: rate for label, op, rate in rows if label == "raw + fsync"}
    aio = {op: rate for label, op, rate in rows if label == "aiofiles 1 MiB"}
    print("\nLarge object, 1 MiB chunks (median GB/s; ratios vs raw and vs aiofiles)")
    print(f"{'contender':<26} {'operation':<14} {'GB/s':>7} {'x raw':>7} {'x aiofiles':>11}")
    for label, op, rate in rows:
        reference = base_fsync if "fsync" in label else base
        raw = reference.get(op) or (base.get("get readinto") if op == "get bytes" else None)
        raw_ratio = f"{rate / raw:.2f}" if raw else "-"
        aio_ratio = f"{rate / aio[op]:.2f}" if op in aio and "fsync" not in label else "-"
        print(f"{label:<26} {op:<14} {rate / 1e9:>7.2f} {raw_ratio:>7} {aio_ratio:>11}")


def report_small(results: list[tuple[str, dict[str, float]]], args: argparse.Namespace) -> None:
    ops = ["put", "get", "stat", "delete"]
    reference = dict(results).get("obstore LocalStore", {})
    plain = dict(results).get("plain loop, 1 thread", {})
    print(
        f"\n{args.small_count} objects of {args.small_size} B, {args.concurrency} concurrent tasks "
        "(median ops/s; [x obstore] (x plain loop))"
    )
    print(f"{'contender':<30}" + "".join(f"{op:>24}" for op in ops))
    for label, rates in results:
        cells = []
        for op in ops:
            if op not in rates:
                cells.append(f"{'-':>24}")
                continue
            text = f"{rates[op]:,.0f}"
            if reference.get(op):
                text += f" [{rates[op] / reference[op]:.1f}]"
            if plain.get(op):
                text += f" ({rates[op] / plain[op]:.2f})"
            cells.append(f"{text:>24}")
        print(f"{label:<30}" + "".join(cells))


async def main(args: argparse.Namespace) -> None:
    base = tempfile.mkdtemp(prefix="asyncstore-bench-", dir=args.dir)
    try:
        print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, directory {base}")
        if not args.skip_large:
            report_large(await large_benchmarks(args, base))
        if not args.skip_small:
            report_small(await small_benchmarks(args, base), args)
        if args.rss_mib:
            growth = peak_rss(base, args.rss_mib)
            what = f"streaming {args.rss_mib} MiB through put and get"
            print(f"\nPeak RSS growth {what}: {growth:.1f} MiB")
    finally:
        drop(base)


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--large-mib", type=int, default=1024, help="large object size (MiB)")
    parser.add_argument("--small-count", type=int, default=10_000, help="number of small objects")
    parser.add_argument("--small-size", type=int, default=4096, help="small object size (bytes)")
    parser.add_argument("--fsync-count", type=int, default=1000, help="small puts with fsync")
    parser.add_argument("--concurrency", type=int, default=64, help="concurrent tasks")
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure (median)")
    parser.add_argument(
        "--rss-mib", type=int, default=2048, help="stream size for peak RSS; 0 skips"
    )
    parser.add_argument("--dir", default=None, help="where to write (default: the temp dir)")
    parser.add_argument("--skip-large", action="store_true")
    parser.add_argument("--skip-small", action="store_true")
    parser.add_argument("--rss-child", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args()


if __name__ == "__main__":
    arguments = parse()
    if arguments.rss_child:
        asyncio.run(rss_child(arguments.dir, arguments.rss_mib))
    else:
        asyncio.run(main(arguments))
