"""Benchmark the encrypt and compress middleware against their raw primitives.

    pip install -e '.[crypto,zstd]'
    python bench/middleware.py                 # 1 GiB streams (needs about 4 GiB of RAM)
    python bench/middleware.py --mib 256       # a quicker run

Measures, over the memory module:
  * encrypt put and get of one large streamed object, against AESGCM alone sealing and
    opening the same 64 KiB chunks (no storage, no streams);
  * compress put and get of the same size of log-like text, against zstd alone compressing
    and decompressing the same chunks (the layer's default frame size);
  * 4 KiB ranged reads from an object stored through compress -> encrypt -> memory, of
    log-like text and of random bytes: the inner bytes read, and which 64 KiB encrypted
    chunks they fall in (frame data, or the compress trailer and index).

Two raw baselines for reading: "hot" opens the chunks of one 4 MiB block over and over, so
its input stays in the CPU cache; "cold" opens distinct chunks as many as the object holds,
so its input comes from RAM, as a stored object's must. Writing reads the same 4 MiB block
in both the raw loop and the layer, so it has one baseline. "hot+memory" adds to the hot raw
time the memory module's own time (measured alone, scaled to the bytes the layer stores):
the part of a transfer through a layer over memory that the layer cannot avoid.

Times are the process's CPU time by default (everything here runs in one thread), so that
other work on a shared machine does not count; --clock wall measures elapsed time instead.
Every throughput is the median of --repeat runs (a run's get through memory is itself the
median of three reads); every ratio is the median of the ratios of runs made back to back
(raw, then layer), so that load changes hit both alike. Contents are
checked after the timed runs.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import os
import random
import statistics
import struct
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio

from asyncstore.memory import MemoryModule
from asyncstore.middleware._base import WrapperModule
from asyncstore.middleware.compress import DEFAULT_CHUNK_SIZE, TRAILER_SIZE, CompressionModule
from asyncstore.middleware.encrypt import CHUNK_SIZE, HEADER_SIZE, EncryptionModule
from asyncstore.streams import ReadStream, iter_source

MiB = 1 << 20
RECORD = CHUNK_SIZE + 16
clock = time.process_time  # set by --clock


def text_block() -> bytes:
    lines = (
        f"2026-11-24T18:{i % 60:02d}:{i % 59:02d}Z INFO request id={i:08x} path=/api/v1/items/"
        f"{i * 7919 % 100000} status={200 if i % 13 else 404} took={i % 97}ms\n"
        for i in range(20000)
    )
    block = "".join(lines).encode()
    return block[: len(block) - len(block) % MiB]


def random_block() -> bytes:
    return os.urandom(4 * MiB)


async def source(block: bytes, total: int) -> AsyncIterator[memoryview]:
    view = memoryview(block)
    sent = 0
    while sent < total:
        for at in range(0, len(view), MiB):
            if sent >= total:
                return
            yield view[at : at + MiB]
            sent += MiB


def expected_digest(block: bytes, total: int) -> str:
    digest = hashlib.sha256()
    sent = 0
    while sent < total:
        piece = block[: min(len(block), total - sent)]
        digest.update(piece)
        sent += len(piece)
    return digest.hexdigest()


def expected_slice(block: bytes, start: int, count: int) -> bytes:
    at = start % len(block)
    return (block + block)[at : at + count]


class CountingMemory(MemoryModule):
    """Records the byte ranges read through its streams."""

    def __init__(self) -> None:
        super().__init__()
        self.reads: list[tuple[int, int]] = []

    async def get_read_stream(
        self, handle: str, *, start: int = 0, end: int | None = None
    ) -> ReadStream:
        stream = await super().get_read_stream(handle, start=start, end=end)
        original = stream._read_at
        original_into = stream._readinto_at
        original_view = stream._view_at

        async def read_at(offset: int, max_bytes: int) -> bytes:
            data = await original(offset, max_bytes)
            self.reads.append((offset, len(data)))
            return data

        async def readinto_at(offset: int, buffer: memoryview) -> int:
            count = await original_into(offset, buffer)
            self.reads.append((offset, count))
            return count

        def view_at(offset: int, count: int) -> memoryview | None:
            view = original_view(offset, count)
            if view is not None:
                self.reads.append((offset, len(view)))
            return view

        stream._read_at = read_at  # type: ignore[method-assign]
        stream._readinto_at = readinto_at  # type: ignore[method-assign]
        stream._view_at = view_at  # type: ignore[method-assign]
        return stream


# ---- raw baselines ---------------------------------------------------------------------------


class RawAESGCM:
    """AESGCM alone on 64 KiB chunks: sealing a block, opening hot and cold records."""

    def __init__(self, block: bytes, total: int) -> None:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        self.aead = AESGCM(AESGCM.generate_key(bit_length=256))
        self.view = memoryview(block)
        self.total = total
        offsets = range(0, len(block), CHUNK_SIZE)
        self.hot = [
            self.aead.encrypt(i.to_bytes(12, "big"), self.view[at : at + CHUNK_SIZE], b"")
            for i, at in enumerate(offsets)
        ]
        # Distinct records, as many as the object holds: they cannot all be in the cache.
        self.cold = [bytes(bytearray(r)) for _ in range(total // len(block)) for r in self.hot]

    def put(self) -> float:
        aead, view = self.aead, self.view
        start = clock()
        index = 0
        for _ in range(self.total // len(view)):
            for at in range(0, len(view), CHUNK_SIZE):
                aead.encrypt(index.to_bytes(12, "big"), view[at : at + CHUNK_SIZE], b"")
                index += 1
        return clock() - start

    def get_hot(self) -> float:
        aead, records = self.aead, self.hot
        start = clock()
        for _ in range(self.total // len(self.view)):
            for index, record in enumerate(records):
                aead.decrypt(index.to_bytes(12, "big"), record, b"")
        return clock() - start

    def get_cold(self) -> float:
        aead, per_block = self.aead, len(self.hot)
        start = clock()
        for index, record in enumerate(self.cold):
            aead.decrypt((index % per_block).to_bytes(12, "big"), record, b"")
        return clock() - start


class RawZstd:
    """zstd alone on the layer's frame size: compressing a block, decompressing frames."""

    def __init__(self, block: bytes, total: int) -> None:
        import zstandard

        self.compressor = zstandard.ZstdCompressor(level=3, write_checksum=True)
        self.decompressor = zstandard.ZstdDecompressor()
        self.view = memoryview(block)
        self.total = total
        self.hot = [
            self.compressor.compress(self.view[at : at + DEFAULT_CHUNK_SIZE])
            for at in range(0, len(block), DEFAULT_CHUNK_SIZE)
        ]
        self.cold = [bytes(bytearray(f)) for _ in range(total // len(block)) for f in self.hot]

    def put(self) -> float:
        compressor, view = self.compressor, self.view
        start = clock()
        for _ in range(self.total // len(view)):
            for at in range(0, len(view), DEFAULT_CHUNK_SIZE):
                compressor.compress(view[at : at + DEFAULT_CHUNK_SIZE])
        return clock() - start

    def get_hot(self) -> float:
        decompressor, frames = self.decompressor, self.hot
        start = clock()
        for _ in range(self.total // len(self.view)):
            for frame in frames:
                decompressor.decompress(frame)
        return clock() - start

    def get_cold(self) -> float:
        decompressor = self.decompressor
        start = clock()
        for frame in self.cold:
            decompressor.decompress(frame)
        return clock() - start


class SinkModule(MemoryModule):
    """Consumes what is put and keeps nothing: isolates a layer's own cost of writing."""

    async def assign(self, handle: str, source: Any, **kwargs: Any) -> None:
        async for _ in iter_source(source):
            pass


# ---- through the middleware ------------------------------------------------------------------


async def put_sink(
    layer: Callable[[MemoryModule], WrapperModule], block: bytes, total: int
) -> float:
    sink = layer(SinkModule())
    start = clock()
    await sink.put(source(block, total), key="big")
    return clock() - start


async def put_get_memory(
    layer: Callable[[MemoryModule], WrapperModule] | None, block: bytes, total: int, check: bool
) -> tuple[float, float, int]:
    """Return seconds to put into memory and to get from it (through ``layer`` if given), and
    how many bytes the memory module holds.

    The get is the median of three reads of the stored object: the first read after a put
    varies most, with what the put left the allocator and the page tables to do.
    """
    memory = MemoryModule()
    module: MemoryModule | WrapperModule = memory if layer is None else layer(memory)
    start = clock()
    await module.put(source(block, total), key="big")
    put = clock() - start
    stored = (await memory.stat("big")).size
    gets = []
    for _ in range(3):
        start = clock()
        async with await module.get_read_stream("big") as stream:
            async for _ in stream:
                pass
        gets.append(clock() - start)
    get = statistics.median(gets)
    if check:  # a second, untimed pass
        digest = hashlib.sha256()
        async with await module.get_read_stream("big") as stream:
            async for chunk in stream:
                digest.update(chunk)
        assert digest.hexdigest() == expected_digest(block, total), "content mismatch"
    await module.aclose()
    return put, get, stored


# ---- a small ranged read through compress -> encrypt -----------------------------------------


async def frame_span(encrypted: EncryptionModule, start: int, end: int) -> tuple[int, int]:
    """Return where the frames holding ``[start, end)`` lie in the compressed object."""
    async with await encrypted.get_read_stream("big") as stream:
        await stream.seek(stream.size - TRAILER_SIZE)
        _, chunk_size, _, _, index_offset = struct.unpack(">4sIQQQ", await stream.read())
        first, last = start // chunk_size, (end - 1) // chunk_size

        async def frame_end(index: int) -> int:
            if index < 0:
                return 0
            await stream.seek(index_offset + 8 * index)
            value: int = struct.unpack(">Q", await stream.read(8))[0]
            return value

        return await frame_end(first - 1), await frame_end(last)


def chunks_of(start: int, end: int, *, stored: bool) -> set[int]:
    """The encrypted chunks holding bytes ``[start, end)`` of the stored or plaintext object."""
    if stored:
        start, end = max(start, HEADER_SIZE) - HEADER_SIZE, end - HEADER_SIZE
        if end <= 0:
            return set()
        return set(range(start // RECORD, (end - 1) // RECORD + 1))
    return set(range(start // CHUNK_SIZE, (end - 1) // CHUNK_SIZE + 1))


async def ranged_reads(
    block: bytes, total: int, key: str, samples: int
) -> tuple[int, int, int, int, int]:
    """Read 4 KiB at the middle and at ``samples`` random offsets; return the middle's inner
    bytes, chunks and frame-data chunks, and the most frame-data and total chunks any read
    touched."""
    memory = CountingMemory()
    encrypted = EncryptionModule(inner=memory, key=key)
    stack = CompressionModule(inner=encrypted)
    await stack.put(source(block, total), key="big")
    rng = random.Random(1)
    chunk = DEFAULT_CHUNK_SIZE
    # The middle, then random offsets, and offsets that straddle a frame boundary.
    offsets = [total // 2 + 12345]
    offsets += [rng.randrange(total - 4096) for _ in range(samples // 2)]
    offsets += [
        rng.randrange(1, total // chunk) * chunk - rng.randrange(1, 4096)
        for _ in range(samples // 2)
    ]
    results = []
    for start in offsets:
        memory.reads.clear()
        async with await stack.get_read_stream("big", start=start, end=start + 4096) as stream:
            data = await stream.read()
        assert data == expected_slice(block, start, 4096), "content mismatch"
        reads = list(memory.reads)
        touched = set().union(*(chunks_of(o, o + n, stored=True) for o, n in reads if n))
        frames = chunks_of(*await frame_span(encrypted, start, start + 4096), stored=False)
        results.append((sum(n for _, n in reads), len(touched), len(touched & frames)))
    await stack.aclose()
    read, chunks, frame_chunks = results[0]
    return read, chunks, frame_chunks, max(r[2] for r in results), max(r[1] for r in results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--mib", type=int, default=1024, help="object size in MiB (a multiple of 4)"
    )
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--samples", type=int, default=200, help="random 4 KiB ranged reads")
    parser.add_argument("--clock", choices=["cpu", "wall"], default="cpu")
    parser.add_argument(
        "--only", choices=["encrypt", "compress", "ranged"], help="run one part of the benchmark"
    )
    args = parser.parse_args()
    global clock
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    total = args.mib * MiB
    key = base64.b64encode(os.urandom(32)).decode()
    noise, text = random_block(), text_block()

    def rate(seconds: float) -> str:
        return f"{total / MiB / seconds:7.0f}"

    memory = [anyio.run(put_get_memory, None, noise, total, False) for _ in range(args.repeat)]
    mem_put = statistics.median(m[0] for m in memory)
    mem_get = statistics.median(m[1] for m in memory)
    print(
        f"{args.mib} MiB object, median of {args.repeat} runs; throughputs in MiB/s "
        f"of {args.clock} time"
    )
    print(
        f"memory module alone: put {rate(mem_put)} (it copies the object once), get {rate(mem_get)}"
    )
    layers: list[tuple[str, Callable[[MemoryModule], WrapperModule], bytes, Any]] = [
        ("encrypt", lambda inner: EncryptionModule(inner=inner, key=key), noise, RawAESGCM),
        ("compress", lambda inner: CompressionModule(inner=inner), text, RawZstd),
    ]
    print(
        f"{'':12} {'raw primitive':>17}   {'through the layer':>17}   "
        f"{'ratio layer : raw (median of pairs)':>44}"
    )
    print(
        f"{'layer':9}{'op':4} {'hot':>8} {'cold':>8}   {'->sink':>8} {'memory':>8}   "
        f"{'sink/hot':>9} {'mem/hot':>8} {'mem/cold':>9} {'mem/(hot+memory)':>17}"
    )
    for name, layer, block, raw_class in layers:
        if args.only not in (None, name):
            continue
        raw = raw_class(block, total)
        rows: dict[str, list[tuple[float, ...]]] = {"put": [], "get": []}
        for run in range(args.repeat):
            # Each layer run right after its raw run, so that both see the same load.
            raw_put, sink = raw.put(), anyio.run(put_sink, layer, block, total)
            hot, cold = raw.get_hot(), raw.get_cold()
            put, get, stored = anyio.run(put_get_memory, layer, block, total, run == 0)
            # What the memory module alone spends on the bytes this layer hands it.
            share = stored / total
            rows["put"].append((raw_put, sink, put, raw_put + mem_put * share))
            rows["get"].append((hot, cold, get, hot + mem_get * share))
        put_rows, get_rows = rows["put"], rows["get"]

        def med(samples: list[tuple[float, ...]], at: int) -> float:
            return statistics.median(s[at] for s in samples)

        def ratio(
            samples: list[tuple[float, ...]], fn: Callable[[tuple[float, ...]], float]
        ) -> str:
            return f"{statistics.median(fn(s) for s in samples):.2f}x"

        print(
            f"{name:9}{'put':4} {rate(med(put_rows, 0))} {'':>8}   {rate(med(put_rows, 1))} "
            f"{rate(med(put_rows, 2))}   {ratio(put_rows, lambda s: s[0] / s[1]):>9} "
            f"{ratio(put_rows, lambda s: s[0] / s[2]):>8} {'':>9} "
            f"{ratio(put_rows, lambda s: s[3] / s[2]):>17}"
        )
        print(
            f"{name:9}{'get':4} {rate(med(get_rows, 0))} {rate(med(get_rows, 1))}   {'':>8} "
            f"{rate(med(get_rows, 2))}   {'':>9} {ratio(get_rows, lambda s: s[0] / s[2]):>8} "
            f"{ratio(get_rows, lambda s: s[1] / s[2]):>9} "
            f"{ratio(get_rows, lambda s: s[3] / s[2]):>17}"
        )
        del raw
    if args.only not in (None, "ranged"):
        return
    print(
        f"4 KiB ranged reads of compress -> encrypt -> memory ({DEFAULT_CHUNK_SIZE >> 10} KiB "
        f"frames, {CHUNK_SIZE >> 10} KiB encrypted chunks, {HEADER_SIZE}-byte header):"
    )
    for name, block in (("text", text), ("random", noise)):
        read, chunks, frame_chunks, worst_frames, worst = anyio.run(
            ranged_reads, block, total, key, args.samples
        )
        print(
            f"  {name:7} middle: {read} inner bytes, {chunks} encrypted chunks "
            f"({frame_chunks} of frame data, {chunks - frame_chunks} of trailer and index); "
            f"worst of {args.samples} more: {worst_frames} of frame data, {worst} in all"
        )


if __name__ == "__main__":
    main()
