"""The compress middleware: ratio, bounded overhead, ranged reads, corruption, configuration."""

from __future__ import annotations

import os
import struct
import sys
from itertools import pairwise
from pathlib import Path

import pytest

from asyncstore import ConfigError, IntegrityError, open_store
from asyncstore.memory import MemoryModule
from asyncstore.middleware.compress import DEFAULT_CHUNK_SIZE, TRAILER_SIZE, CompressionModule

from .helpers import CountingModule, in_pieces, read

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


TEXT = b"".join(
    f"{i:06d} The quick brown fox jumps over the lazy dog; lorem ipsum dolor sit amet.\n".encode()
    for i in range(40_000)
)  # about 3 MiB of log-like text


@pytest.fixture
def inner() -> CountingModule:
    return CountingModule()


@pytest.fixture
async def store(inner: CountingModule):
    async with CompressionModule(inner=inner) as module:
        yield module


async def test_text_compresses_well(store: CompressionModule, inner: CountingModule) -> None:
    await store.put(TEXT, key="log.txt")
    stored = len(inner.raw("log.txt"))
    assert stored * 5 < len(TEXT), f"ratio only {len(TEXT) / stored:.1f}"
    assert await read(store, "log.txt") == TEXT
    assert await store.get_size("log.txt") == len(TEXT)
    stats = await store.statistics()
    assert stats["compress"]["logical_bytes_written"] == len(TEXT)
    assert stats["compress"]["stored_bytes_written"] == stored


@pytest.mark.parametrize("size", [0, 1, 4095, DEFAULT_CHUNK_SIZE, 3 * DEFAULT_CHUNK_SIZE + 7])
async def test_incompressible_data_has_bounded_overhead(
    store: CompressionModule, inner: CountingModule, size: int
) -> None:
    data = os.urandom(size)
    await store.put(data, key="random")
    chunks = -(-size // DEFAULT_CHUNK_SIZE)
    assert len(inner.raw("random")) == size + 8 * chunks + TRAILER_SIZE
    assert await read(store, "random") == data
    assert await store.get_size("random") == size


async def test_ranged_read_decompresses_only_touched_frames(
    store: CompressionModule, inner: CountingModule
) -> None:
    data = os.urandom(DEFAULT_CHUNK_SIZE) * 2 + TEXT  # raw frames, then compressed ones
    await store.put(data, key="mixed")
    for start in (5, DEFAULT_CHUNK_SIZE + 100, len(data) // 2, len(data) - 5000):
        inner.bytes_read = 0
        end = start + 4096
        assert await read(store, "mixed", start=start, end=end) == data[start:end]
        touched = (end - 1) // DEFAULT_CHUNK_SIZE - start // DEFAULT_CHUNK_SIZE + 1
        index_bytes = 8 * min(512, -(-len(data) // DEFAULT_CHUNK_SIZE))
        assert inner.bytes_read <= TRAILER_SIZE + index_bytes + touched * DEFAULT_CHUNK_SIZE


async def test_seek_backwards_and_forwards(store: CompressionModule) -> None:
    await store.put(TEXT, key="log.txt")
    async with await store.get_read_stream("log.txt") as stream:
        for position in (2_000_000, 10, len(TEXT) - 3, 1_000_000):
            await stream.seek(position)
            assert await stream.read(100) == TEXT[position : position + 100]


async def test_objects_stay_readable_after_the_chunk_size_changes(inner: CountingModule) -> None:
    await CompressionModule(inner=inner, chunk_size=4096).put(TEXT[:100_000], key="small")
    other = CompressionModule(inner=inner, chunk_size=1 << 20, level=19)
    assert await read(other, "small", start=50_000, end=60_000) == TEXT[50_000:60_000]
    assert await other.get_size("small") == 100_000


async def test_metadata_and_content_type_are_stored_as_given(
    store: CompressionModule, inner: CountingModule
) -> None:
    await store.put(TEXT[:1000], key="m", metadata={"a": "1"}, content_type="text/plain")
    info = await store.stat("m")
    assert (info.size, dict(info.metadata), info.content_type) == (1000, {"a": "1"}, "text/plain")
    assert dict((await inner.stat("m")).metadata) == {"a": "1"}


async def test_corrupt_frame_is_an_integrity_error(
    store: CompressionModule, inner: CountingModule
) -> None:
    await store.put(TEXT, key="log.txt")
    raw = bytearray(inner.raw("log.txt"))
    raw[200] ^= 0xFF
    await inner.poke("log.txt", bytes(raw))
    with pytest.raises(IntegrityError):
        await read(store, "log.txt")


@pytest.mark.parametrize("where", ["magic", "size", "count", "short"])
async def test_corrupt_trailer_is_an_integrity_error(
    store: CompressionModule, inner: CountingModule, where: str
) -> None:
    await store.put(TEXT, key="log.txt")
    raw = bytearray(inner.raw("log.txt"))
    trailer = len(raw) - TRAILER_SIZE
    if where == "magic":
        raw[trailer] ^= 1
    elif where == "size":
        raw[trailer + 8 : trailer + 16] = struct.pack(">Q", 5)
    elif where == "count":
        raw[trailer + 16 : trailer + 24] = struct.pack(">Q", 99)
    else:
        raw = raw[:-1]
    await inner.poke("log.txt", bytes(raw))
    with pytest.raises(IntegrityError):
        await store.get_size("log.txt")
    with pytest.raises(IntegrityError):
        await read(store, "log.txt")


async def test_corrupt_index_is_an_integrity_error(
    store: CompressionModule, inner: CountingModule
) -> None:
    await store.put(TEXT, key="log.txt")
    raw = bytearray(inner.raw("log.txt"))
    index_offset = struct.unpack(">Q", raw[-8:])[0]
    raw[index_offset : index_offset + 8] = struct.pack(">Q", 10**9)
    await inner.poke("log.txt", bytes(raw))
    with pytest.raises(IntegrityError):
        await read(store, "log.txt")


@pytest.mark.parametrize(
    "options",
    [{"level": 0}, {"level": 23}, {"chunk_size": 100}, {"chunk_size": 1 << 30}],
    ids=["level-0", "level-23", "tiny-chunks", "huge-chunks"],
)
def test_bad_configuration(options: dict[str, int]) -> None:
    with pytest.raises(ConfigError):
        CompressionModule(inner=MemoryModule(), **options)


async def test_config_file_and_string_options(tmp_path: Path) -> None:
    config = tmp_path / "asyncstore.toml"
    config.write_text(
        """
[stores.packed]
module = "compress"
inner = "memory://"
level = "9"
"""
    )
    async with open_store("packed", config=config) as store:
        assert isinstance(store, CompressionModule)
        assert store.inner.name == "memory://"
        await store.put(TEXT[:10_000], key="k")
        assert await read(store, "k") == TEXT[:10_000]
        assert (await store.statistics())["compress"]["level"] == 9


def test_missing_extra_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "zstandard", None)  # type: ignore[arg-type]
    with pytest.raises(ImportError, match=r"asyncstore\[zstd\]"):
        CompressionModule(inner=MemoryModule())


def test_importing_the_middleware_imports_no_optional_dependency() -> None:
    import subprocess

    code = (
        "import sys, asyncstore, asyncstore.middleware\n"
        "from asyncstore.middleware import "
        "CompressionModule, DedupModule, EncryptionModule, ReplicationModule\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('cryptography', 'zstandard')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


# ---- reading paths --------------------------------------------------------------------------


def frame_ends(stored: bytes) -> list[int]:
    """The stored end offset of every frame, from an object's index (the documented format)."""
    _, _, _, count, index_offset = struct.unpack(">4sIQQQ", stored[-TRAILER_SIZE:])
    return list(struct.unpack(f">{count}Q", stored[index_offset : index_offset + 8 * count]))


async def test_objects_with_the_previous_default_frame_size_stay_readable(
    store: CompressionModule, inner: CountingModule
) -> None:
    # 128 KiB frames were the default before 32 KiB; the frame size is stored per object.
    data = os.urandom(300_000) + TEXT
    await CompressionModule(inner=inner, chunk_size=128 * 1024).put(data, key="old")
    assert struct.unpack(">I", inner.raw("old")[-TRAILER_SIZE + 4 : -TRAILER_SIZE + 8]) == (
        128 * 1024,
    )
    assert await store.get_size("old") == len(data)
    assert await read(store, "old") == data
    for start in (0, 131_000, 299_000, len(data) - 4096):
        assert await read(store, "old", start=start, end=start + 4096) == data[start : start + 4096]


async def test_frames_are_stored_no_larger_than_the_chunk_size(
    store: CompressionModule, inner: CountingModule
) -> None:
    data = os.urandom(5 * DEFAULT_CHUNK_SIZE) + TEXT[: 5 * DEFAULT_CHUNK_SIZE]
    await store.put(data, key="mixed")
    ends = frame_ends(inner.raw("mixed"))
    sizes = [b - a for a, b in pairwise([0, *ends])]
    assert max(sizes) == DEFAULT_CHUNK_SIZE  # random frames are stored raw
    assert all(size < DEFAULT_CHUNK_SIZE for size in sizes[5:])  # text frames compress


@pytest.mark.parametrize("where", ["start", "inside", "straddling", "end"])
async def test_a_small_ranged_read_fetches_only_the_index_entries_it_needs(
    store: CompressionModule, inner: CountingModule, where: str
) -> None:
    data = (os.urandom(DEFAULT_CHUNK_SIZE) + TEXT) * 6  # about 20 MiB, over 600 frames
    await store.put(data, key="big")
    ends = frame_ends(inner.raw("big"))
    assert len(ends) > 512  # more than one 4 KiB block of index entries
    start = {
        "start": 100,
        "inside": 520 * DEFAULT_CHUNK_SIZE + 999,
        "straddling": 511 * DEFAULT_CHUNK_SIZE + DEFAULT_CHUNK_SIZE - 2000,  # frames 511, 512
        "end": len(data) - 4096,
    }[where]
    end = start + 4096
    inner.bytes_read = 0
    assert await read(store, "big", start=start, end=end) == data[start:end]
    first, last = start // DEFAULT_CHUNK_SIZE, (end - 1) // DEFAULT_CHUNK_SIZE
    entries = last - first + 1 + (first > 0)  # the end of the frame before, then each frame's
    frames = ends[last] - (ends[first - 1] if first else 0)
    assert inner.bytes_read == TRAILER_SIZE + 8 * entries + frames


@pytest.mark.parametrize("piece", [None, 1000, DEFAULT_CHUNK_SIZE, 1 << 20])
async def test_a_sequential_read_fetches_every_stored_byte_once(
    store: CompressionModule, inner: CountingModule, piece: int | None
) -> None:
    data = TEXT + os.urandom(3 * DEFAULT_CHUNK_SIZE + 11)
    await store.put(data, key="obj")
    inner.bytes_read = 0
    async with await store.get_read_stream("obj") as stream:
        if piece is None:
            got = b"".join([chunk async for chunk in stream])
        else:
            parts = []
            while part := await stream.read(piece):
                assert len(part) <= piece
                parts.append(part)
            got = b"".join(parts)
    assert got == data
    assert inner.bytes_read == len(inner.raw("obj"))


@pytest.mark.parametrize(
    "piece", [777, 4093, DEFAULT_CHUNK_SIZE - 1, DEFAULT_CHUNK_SIZE + 1, 300_000]
)
async def test_readinto_in_pieces(store: CompressionModule, piece: int) -> None:
    data = os.urandom(DEFAULT_CHUNK_SIZE + 5) + TEXT[:500_000]
    await store.put(data, key="obj")
    for start in (0, DEFAULT_CHUNK_SIZE - 3, 400_000):
        async with await store.get_read_stream("obj", start=start) as stream:
            got = bytearray()
            buffer = bytearray(piece)
            while count := await stream.readinto(buffer):
                got += buffer[:count]
            assert got == data[start:]
        # A read of up to one frame is answered in full, even across a frame boundary.
        async with await store.get_read_stream("obj", start=start) as stream:
            want = min(piece, DEFAULT_CHUNK_SIZE)
            assert await stream.read(want) == data[start : start + want]


async def test_small_reads_that_meet_at_a_frame_boundary_do_not_read_ahead(
    store: CompressionModule, inner: CountingModule
) -> None:
    data = os.urandom(40 * DEFAULT_CHUNK_SIZE)  # raw frames: each stored in exactly its size
    await store.put(data, key="big")
    inner.bytes_read = 0
    boundary = 20 * DEFAULT_CHUNK_SIZE
    async with await store.get_read_stream("big") as stream:
        await stream.seek(boundary - 8)
        assert await stream.read(8) == data[boundary - 8 : boundary]
        assert await stream.read(8) == data[boundary : boundary + 8]
    # The trailer, the (one block of) index entries, and the two frames the reads touch.
    assert inner.bytes_read == TRAILER_SIZE + 8 * 40 + 2 * DEFAULT_CHUNK_SIZE


@pytest.mark.parametrize(
    "pieces",
    [
        [1, 1000, DEFAULT_CHUNK_SIZE - 1001],
        [DEFAULT_CHUNK_SIZE - 1, 2, DEFAULT_CHUNK_SIZE - 1],
        [3 * DEFAULT_CHUNK_SIZE],
        [2 * DEFAULT_CHUNK_SIZE + 5, DEFAULT_CHUNK_SIZE - 5, 7],
        [0, 0],
    ],
    ids=lambda pieces: "+".join(map(str, pieces)),
)
async def test_sources_cut_anyhow_are_compressed_in_whole_chunks(
    store: CompressionModule, inner: CountingModule, pieces: list[int]
) -> None:
    data = (os.urandom(DEFAULT_CHUNK_SIZE) + TEXT)[: sum(pieces)]

    await store.put(in_pieces(data, pieces), key="obj")
    assert len(frame_ends(inner.raw("obj"))) == -(-len(data) // DEFAULT_CHUNK_SIZE)
    assert await read(store, "obj") == data
    for start in range(0, len(data), 20_000):
        assert await read(store, "obj", start=start, end=start + 5000) == data[start : start + 5000]
