"""The compress middleware: zstandard in independently decodable frames, with an index.

The plaintext is cut into fixed-size chunks (128 KiB by default); each is compressed into its
own zstd frame (with a content checksum) or, when that would not make it smaller, stored raw,
so incompressible data grows by only 8 index bytes per chunk plus a 32-byte trailer.

Stored form (format 1), one inner object per object::

    chunks   frame 0 | frame 1 | ...          a frame shorter than its chunk is zstd, else raw
    index    count x 8 bytes big-endian       the stored end offset of each chunk
    trailer  32 bytes                         magic "ASZ" 0x01 | chunk size (4)
                                              | original size (8) | count (8) | index offset (8)

A read fetches the trailer, then the index entries of the chunks it touches (in 4 KiB blocks,
cached per stream), then just those frames: ranged reads and seeks never decompress from the
start. `get_size` and `stat` read the 32-byte trailer.
"""

from __future__ import annotations

import struct
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from itertools import pairwise
from typing import TYPE_CHECKING, Any, ClassVar

import anyio.lowlevel

# Imported at run time: the registry reads the constructor's annotations to convert options.
from asyncstore.context import ModuleContext
from asyncstore.errors import ConfigError, IntegrityError, NotFoundError
from asyncstore.info import ObjectInfo
from asyncstore.middleware._base import (
    WrapperModule,
    read_exactly,
    rechunk,
    require_extra,
    resolve_inner,
)
from asyncstore.module import StorageModule
from asyncstore.streams import ByteSource, ReadStream, check_range

if TYPE_CHECKING:
    from types import ModuleType


__all__ = ["DEFAULT_CHUNK_SIZE", "TRAILER_SIZE", "CompressionModule"]

MAGIC = b"ASZ\x01"
DEFAULT_CHUNK_SIZE = 128 * 1024
"""Plaintext bytes per independently decodable frame, unless configured otherwise."""
_TRAILER = struct.Struct(">4sIQQQ")
TRAILER_SIZE = _TRAILER.size
"""Bytes of the trailer at the end of every stored object."""
_ENTRY = 8
_BLOCK_ENTRIES = 512  # index entries fetched at a time (4 KiB)
_READ_BATCH = 1 << 20  # plaintext bytes one large sequential read may decode at once


@dataclass(frozen=True)
class _Trailer:
    chunk_size: int
    size: int
    count: int
    index_offset: int


class CompressionModule(WrapperModule):
    """Compresses objects with zstandard in independently decodable frames before storing them.

    Ranged reads and seeks decompress only the frames they touch; data that does not compress
    is stored raw, so the overhead is bounded (8 bytes per chunk plus 32). `get_size` and
    `stat` report the original size. Metadata and content type are stored as given. Needs
    ``pip install 'asyncstore[zstd]'``.

    Args:
        inner: The store that keeps the compressed bytes: a store name or URL (or a module).
        level: The zstd compression level (1-22; 3 is zstd's default balance).
        chunk_size: Plaintext bytes per frame (4 KiB to 16 MiB); larger compresses better,
            smaller makes small ranged reads cheaper. Stored per object, so it may change.
    """

    LAYER: ClassVar[str] = "compress"

    def __init__(
        self,
        *,
        inner: str | StorageModule,
        level: int = 3,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        context: ModuleContext | None = None,
    ) -> None:
        self._zstd: ModuleType = require_extra(
            "zstandard", extra="zstd", feature="the compress module"
        )
        if not isinstance(level, int) or not 1 <= level <= 22:
            raise ConfigError(f"level must be an int from 1 to 22, not {level!r}")
        if not isinstance(chunk_size, int) or not 4096 <= chunk_size <= 16 << 20:
            raise ConfigError(f"chunk_size must be an int from 4096 to 16 MiB, not {chunk_size!r}")
        self._level = level
        self._chunk_size = chunk_size
        self._logical_written = 0
        self._stored_written = 0
        super().__init__(resolve_inner(inner, context))

    # ---- writing -------------------------------------------------------------------------

    async def assign(
        self,
        handle: str,
        source: ByteSource,
        *,
        metadata: Mapping[str, str] | None = None,
        content_type: str | None = None,
    ) -> None:
        """Compress the bytes of ``source`` and store them under ``handle`` in one inner write."""
        meta, ctype = self._check_write(handle, metadata, content_type)
        totals = [0, 0]
        await self._inner.assign(
            handle, self._compress(source, totals), metadata=meta, content_type=ctype
        )
        self._logical_written += totals[0]
        self._stored_written += totals[1]

    async def _compress(self, source: ByteSource, totals: list[int]) -> AsyncIterator[bytes]:
        compressor = self._zstd.ZstdCompressor(level=self._level, write_checksum=True)
        size = self._chunk_size
        ends: list[int] = []
        stored = 0
        logical = 0
        async for chunk, _ in rechunk(source, size):
            if not chunk:
                continue  # the final chunk of an empty source
            packed: bytes = compressor.compress(chunk)
            # Stored raw unless strictly smaller: a frame as long as its chunk is raw.
            data = packed if len(packed) < len(chunk) else bytes(chunk)
            yield data
            stored += len(data)
            logical += len(chunk)
            ends.append(stored)
            if len(ends) % 16 == 0:
                await anyio.lowlevel.checkpoint()  # let other tasks run during big puts
        for at in range(0, len(ends), _BLOCK_ENTRIES):
            block = ends[at : at + _BLOCK_ENTRIES]
            yield struct.pack(f">{len(block)}Q", *block)
        yield _TRAILER.pack(MAGIC, size, logical, len(ends), stored)
        totals[0] += logical
        totals[1] += stored + len(ends) * _ENTRY + TRAILER_SIZE

    # ---- reading -------------------------------------------------------------------------

    async def _read_trailer(self, stream: ReadStream, handle: str) -> _Trailer:
        stored = stream.info.size
        if stored < TRAILER_SIZE:
            raise self._corrupt(handle, "too short for a compressed object")
        raw = await read_exactly(
            stream, stored - TRAILER_SIZE, TRAILER_SIZE, store=self.name, handle=handle
        )
        magic, chunk_size, size, count, index_offset = _TRAILER.unpack(raw)
        if magic != MAGIC:
            raise self._corrupt(handle, "bad magic")
        if (
            chunk_size <= 0
            or count != -(-size // chunk_size)
            or index_offset + count * _ENTRY + TRAILER_SIZE != stored
        ):
            raise self._corrupt(handle, "inconsistent trailer")
        return _Trailer(chunk_size, size, count, index_offset)

    def _corrupt(self, handle: str, why: str) -> IntegrityError:
        return IntegrityError(
            f"the stored object is not a valid compressed object ({why})",
            store=self.name,
            handle=handle,
        )

    async def _outer_info(self, info: ObjectInfo) -> ObjectInfo:
        async with await self._inner.get_read_stream(info.handle) as stream:
            trailer = await self._read_trailer(stream, info.handle)
        return self._with_size(info, trailer.size)

    async def stat(self, handle: str) -> ObjectInfo:
        """Describe the object, with its original size (read from the stored trailer)."""
        self._check_handle(handle)
        async with await self._inner.get_read_stream(handle) as stream:
            trailer = await self._read_trailer(stream, handle)
            return self._with_size(stream.info, trailer.size)

    async def list(self, prefix: str = "") -> AsyncIterator[ObjectInfo]:
        """Yield the objects under ``prefix`` with their original sizes (one trailer read each)."""
        async for info in self._inner.list(prefix):
            try:
                yield await self._outer_info(info)
            except NotFoundError:
                continue  # deleted since the inner listing saw it

    async def get_read_stream(
        self, handle: str, *, start: int = 0, end: int | None = None
    ) -> ReadStream:
        """Open a stream of the original bytes in ``[start, end)``; only touched frames are read.

        Raises:
            NotFoundError: If no object exists for ``handle``.
            IntegrityError: If the stored object is not a valid compressed object.
        """
        check_range(start, end, store=self.name)
        self._check_handle(handle)
        inner = await self._inner.get_read_stream(handle)
        try:
            trailer = await self._read_trailer(inner, handle)
        except BaseException:
            await inner.aclose()
            raise
        info = self._with_size(inner.info, trailer.size)
        decompressor = self._zstd.ZstdDecompressor()
        return _DecompressingStream(
            info,
            inner,
            trailer,
            decompressor,
            self._zstd.ZstdError,
            corrupt=self._corrupt,
            store=self.name,
            start=start,
            end=end,
        )

    # ---- description ---------------------------------------------------------------------

    def capabilities(self) -> dict[str, Any]:
        """Return the inner module's capabilities, with the size limit less the worst overhead."""
        effective = super().capabilities()
        limit = effective.get("max_object_size")
        if isinstance(limit, int):
            overhead = TRAILER_SIZE + _ENTRY * -(-limit // self._chunk_size)
            effective["max_object_size"] = max(0, limit - overhead)
        return effective

    def _layer_statistics(self) -> dict[str, Any]:
        return {
            "algorithm": "zstd",
            "level": self._level,
            "chunk_size": self._chunk_size,
            "logical_bytes_written": self._logical_written,
            "stored_bytes_written": self._stored_written,
        }


class _DecompressingStream(ReadStream):
    """Decompresses the frames a read touches, fetching them from one inner stream."""

    def __init__(
        self,
        info: ObjectInfo,
        inner: ReadStream,
        trailer: _Trailer,
        decompressor: Any,
        zstd_error: type[Exception],
        *,
        corrupt: Callable[[str, str], IntegrityError],
        store: str,
        start: int,
        end: int | None,
    ) -> None:
        super().__init__(info, start=start, end=end)
        self._inner = inner
        self._trailer = trailer
        self._decompressor = decompressor
        self._zstd_error = zstd_error
        self._corrupt = corrupt
        self._store = store
        self._blocks: dict[int, tuple[int, ...]] = {}
        self._cached_index = -1
        self._cached = b""

    async def _end(self, index: int) -> int:
        """Return the stored end offset of chunk ``index`` (-1 gives 0)."""
        if index < 0:
            return 0
        block = index // _BLOCK_ENTRIES
        entries = self._blocks.get(block)
        if entries is None:
            first = block * _BLOCK_ENTRIES
            count = min(_BLOCK_ENTRIES, self._trailer.count - first)
            raw = await read_exactly(
                self._inner,
                self._trailer.index_offset + first * _ENTRY,
                count * _ENTRY,
                store=self._store,
                handle=self.info.handle,
            )
            entries = struct.unpack(f">{count}Q", raw)
            if len(self._blocks) >= 4:
                self._blocks.pop(next(iter(self._blocks)))
            self._blocks[block] = entries
        end: int = entries[index - block * _BLOCK_ENTRIES]
        return end

    async def _read_at(self, offset: int, max_bytes: int) -> bytes:
        chunk_size = self._trailer.chunk_size
        first = offset // chunk_size
        if first == self._cached_index:
            skip = offset - first * chunk_size
            return self._cached[skip : skip + max_bytes]
        batch = max(1, _READ_BATCH // chunk_size)
        last = min((offset + max_bytes - 1) // chunk_size, first + batch - 1)
        last = min(last, self._trailer.count - 1)
        bounds = [await self._end(index) for index in range(first - 1, last + 1)]
        if any(b < a for a, b in pairwise(bounds)) or bounds[-1] > self._trailer.index_offset:
            raise self._corrupt(self.info.handle, "inconsistent index")
        stored = await read_exactly(
            self._inner,
            bounds[0],
            bounds[-1] - bounds[0],
            store=self._store,
            handle=self.info.handle,
        )
        view = memoryview(stored)
        plain: list[bytes] = []
        for index in range(first, last + 1):
            at, until = bounds[index - first] - bounds[0], bounds[index - first + 1] - bounds[0]
            plain.append(self._decode(index, view[at:until]))
        self._cached_index, self._cached = last, plain[-1]
        data = plain[0] if len(plain) == 1 else b"".join(plain)
        skip = offset - first * chunk_size
        if skip == 0 and len(data) <= max_bytes:
            return data  # the common case of reading in order: no copy
        return data[skip : skip + max_bytes]

    def _decode(self, index: int, frame: memoryview) -> bytes:
        chunk_size = self._trailer.chunk_size
        expected = min(chunk_size, self._trailer.size - index * chunk_size)
        if len(frame) == expected:
            return bytes(frame)
        try:
            data: bytes = self._decompressor.decompress(frame, max_output_size=expected)
        except self._zstd_error:
            raise self._corrupt(self.info.handle, f"chunk {index} does not decompress") from None
        if len(data) != expected:
            raise self._corrupt(self.info.handle, f"chunk {index} has the wrong size")
        return data

    async def _close(self) -> None:
        await self._inner.aclose()
