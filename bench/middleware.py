"""Benchmark the encrypt and compress middleware against their raw primitives.

    pip install -e '.[crypto,zstd]'
    python bench/middleware.py                 # 1 GiB streams (needs about 3 GiB of RAM)
    python bench/middleware.py --mib 256       # a quicker run

Measures, over the memory module:
  * encrypt put and get of one large streamed object, against AESGCM alone sealing and
    opening the same 64 KiB chunks (no storage, no streams);
  * compress put and get of the same size of log-like text, against zstd alone compressing
    and decompressing the same 128 KiB chunks;
  * a 4 KiB ranged read from the middle of an object stored through compress -> encrypt:
    the inner bytes it reads, and how many 64 KiB encrypted chunks those span.
Every figure is the median of --repeat runs; contents are checked.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import os
import statistics
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio

from asyncstore.memory import MemoryModule
from asyncstore.middleware._base import WrapperModule
from asyncstore.middleware.compress import DEFAULT_CHUNK_SIZE, CompressionModule
from asyncstore.middleware.encrypt import CHUNK_SIZE, HEADER_SIZE, EncryptionModule
from asyncstore.streams import ReadStream, iter_source

MiB = 1 << 20


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


class CountingMemory(MemoryModule):
    """Counts the bytes read through its streams."""

    bytes_read = 0

    async def get_read_stream(
        self, handle: str, *, start: int = 0, end: int | None = None
    ) -> ReadStream:
        stream = await super().get_read_stream(handle, start=start, end=end)
        original = stream._read_at
        original_into = stream._readinto_at

        async def read_at(offset: int, max_bytes: int) -> bytes:
            data = await original(offset, max_bytes)
            self.bytes_read += len(data)
            return data

        async def readinto_at(offset: int, buffer: memoryview) -> int:
            count = await original_into(offset, buffer)
            self.bytes_read += count
            return count

        stream._read_at = read_at  # type: ignore[method-assign]
        stream._readinto_at = readinto_at  # type: ignore[method-assign]
        return stream


# ---- raw baselines ---------------------------------------------------------------------------


def raw_aesgcm(block: bytes, total: int) -> tuple[float, float]:
    """Seal, then open, ``total`` bytes of 64 KiB chunks with AESGCM alone (results dropped)."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    aead = AESGCM(AESGCM.generate_key(bit_length=256))
    view = memoryview(block)
    offsets = range(0, len(view), CHUNK_SIZE)
    rounds = total // len(view)
    start = time.perf_counter()
    for round_ in range(rounds):
        for index, at in enumerate(offsets):
            nonce = (round_ * len(offsets) + index).to_bytes(12, "big")
            aead.encrypt(nonce, view[at : at + CHUNK_SIZE], b"")
    put = time.perf_counter() - start
    sealed = [
        aead.encrypt(i.to_bytes(12, "big"), view[at : at + CHUNK_SIZE], b"")
        for i, at in enumerate(offsets)
    ]
    start = time.perf_counter()
    for _ in range(rounds):
        for index, record in enumerate(sealed):
            aead.decrypt(index.to_bytes(12, "big"), record, b"")
    return put, time.perf_counter() - start


def raw_zstd(block: bytes, total: int) -> tuple[float, float]:
    """Compress, then decompress, ``total`` bytes of 128 KiB chunks with zstd alone."""
    import zstandard

    compressor = zstandard.ZstdCompressor(level=3, write_checksum=True)
    decompressor = zstandard.ZstdDecompressor()
    view = memoryview(block)
    offsets = range(0, len(view), DEFAULT_CHUNK_SIZE)
    rounds = total // len(view)
    start = time.perf_counter()
    for _ in range(rounds):
        for at in offsets:
            compressor.compress(view[at : at + DEFAULT_CHUNK_SIZE])
    put = time.perf_counter() - start
    frames = [compressor.compress(view[at : at + DEFAULT_CHUNK_SIZE]) for at in offsets]
    start = time.perf_counter()
    for _ in range(rounds):
        for frame in frames:
            decompressor.decompress(frame)
    return put, time.perf_counter() - start


class SinkModule(MemoryModule):
    """Consumes what is put and keeps nothing: isolates a layer's own cost of writing."""

    async def assign(self, handle: str, source: Any, **kwargs: Any) -> None:
        async for _ in iter_source(source):
            pass


# ---- through the middleware ------------------------------------------------------------------


async def through(
    layer: Callable[[MemoryModule], WrapperModule], block: bytes, total: int
) -> tuple[float, float, float]:
    """Return seconds to put into a sink, to put into memory, and to get from memory."""
    sink = layer(SinkModule())
    start = time.perf_counter()
    await sink.put(source(block, total), key="big")
    put_sink = time.perf_counter() - start
    module = layer(MemoryModule())
    start = time.perf_counter()
    await module.put(source(block, total), key="big")
    put = time.perf_counter() - start
    start = time.perf_counter()
    async with await module.get_read_stream("big") as stream:
        async for _ in stream:
            pass
    get = time.perf_counter() - start
    digest = hashlib.sha256()  # checked in a second, untimed pass
    async with await module.get_read_stream("big") as stream:
        async for chunk in stream:
            digest.update(chunk)
    assert digest.hexdigest() == expected_digest(block, total), "content mismatch"
    await module.aclose()
    return put_sink, put, get


async def memory_alone(block: bytes, total: int) -> tuple[float, float]:
    module = MemoryModule()
    start = time.perf_counter()
    await module.put(source(block, total), key="big")
    put = time.perf_counter() - start
    start = time.perf_counter()
    async with await module.get_read_stream("big") as stream:
        async for _ in stream:
            pass
    return put, time.perf_counter() - start


async def ranged_read(block: bytes, total: int, key: str) -> tuple[int, int]:
    memory = CountingMemory()
    stack = CompressionModule(inner=EncryptionModule(inner=memory, key=key))
    await stack.put(source(block, total), key="big")
    memory.bytes_read = 0
    middle = total // 2 + 12345
    async with await stack.get_read_stream("big", start=middle, end=middle + 4096) as stream:
        data = await stream.read()
    at = middle % len(block)
    assert data == (block + block)[at : at + 4096]
    read = memory.bytes_read
    chunks = -(-(read - HEADER_SIZE) // (CHUNK_SIZE + 16))
    await stack.aclose()
    return read, chunks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=1024, help="object size in MiB")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    total = args.mib * MiB
    key = base64.b64encode(os.urandom(32)).decode()
    noise, text = random_block(), text_block()

    def rate(seconds: float) -> str:
        return f"{total / MiB / seconds:6.0f} MiB/s"

    def median(samples: list[tuple[float, ...]], index: int) -> float:
        return statistics.median(sample[index] for sample in samples)

    memory = [anyio.run(memory_alone, noise, total) for _ in range(args.repeat)]
    print(f"{args.mib} MiB object, median of {args.repeat} runs")
    print(
        f"memory module alone: put {rate(median(memory, 0))}, get {rate(median(memory, 1))} "
        "(its put hashes (md5) and copies the whole object)"
    )
    print(
        f"{'layer':9} {'op':4} {'raw primitive':>14} {'layer->sink':>12} {'ratio':>6} "
        f"{'layer->memory':>14} {'ratio':>6}"
    )
    layers: list[tuple[str, Callable[[MemoryModule], WrapperModule], bytes, Any]] = [
        ("encrypt", lambda inner: EncryptionModule(inner=inner, key=key), noise, raw_aesgcm),
        ("compress", lambda inner: CompressionModule(inner=inner), text, raw_zstd),
    ]
    for name, layer, block, raw_run in layers:
        raw, ours = [], []
        for _ in range(args.repeat):  # interleaved, so that load changes hit both alike
            raw.append(raw_run(block, total))
            ours.append(anyio.run(through, layer, block, total))
        r_put, r_get = median(raw, 0), median(raw, 1)
        sink_put, mem_put, mem_get = median(ours, 0), median(ours, 1), median(ours, 2)
        print(
            f"{name:9} {'put':4} {rate(r_put):>14} {rate(sink_put):>12} {r_put / sink_put:5.2f}x "
            f"{rate(mem_put):>14} {r_put / mem_put:5.2f}x"
        )
        print(
            f"{name:9} {'get':4} {rate(r_get):>14} {'':>12} {'':>6} "
            f"{rate(mem_get):>14} {r_get / mem_get:5.2f}x"
        )
    read, chunks = anyio.run(ranged_read, text, total, key)
    print(
        f"4 KiB ranged read from the middle of compress->encrypt->memory: {read} inner bytes "
        f"({chunks} encrypted 64 KiB chunks after the {HEADER_SIZE}-byte header)"
    )


if __name__ == "__main__":
    main()
