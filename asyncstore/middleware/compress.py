"""The compress middleware: zstandard in independently decodable frames, with an index.

The plaintext is cut into fixed-size chunks (32 KiB by default); each is compressed into its
own zstd frame (with a content checksum) or, when that would not make it smaller, stored raw,
so incompressible data grows by only 8 index bytes per chunk plus a 32-byte trailer, and no
stored frame is longer than its chunk.

Stored form (format 1), one inner object per object::

    chunks   frame 0 | frame 1 | ...          a frame shorter than its chunk is zstd, else raw
    index    count x 8 bytes big-endian       the stored end offset of each chunk
    trailer  32 bytes                         magic "ASZ" 0x01 | chunk size (4)
                                              | original size (8) | count (8) | index offset (8)

A read fetches the trailer, then the index entries of the chunks it touches (in blocks of up
to 4 KiB, clipped to the stream's range and cached per stream), then just those frames: ranged
reads and seeks never decompress from the start. `get_size` and `stat` read the 32-byte
trailer.

Why 32 KiB: stacked over `encrypt` (64 KiB chunks), the frames that any read of up to 32 KiB
touches (one, or two neighbours) hold at most 64 KiB stored, raw or not, so their bytes lie in
at most two encrypted chunks wherever the read starts. With larger frames, one frame alone
may span three.
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
    RangeReader,
    WrapperModule,
    chunk_runs,
    read_exactly,
    require_extra,
    resolve_inner,
)
from asyncstore.module import StorageModule
from asyncstore.streams import ByteSource, ReadStream, check_range

if TYPE_CHECKING:
    from types import ModuleType


__all__ = ["DEFAULT_CHUNK_SIZE", "TRAILER_SIZE", "CompressionModule"]

MAGIC = b"ASZ\x01"
DEFAULT_CHUNK_SIZE = 32 * 1024
"""Plaintext bytes per independently decodable frame, unless configured otherwise: half the
encrypt layer's chunk, so that two neighbouring frames fit in two of its chunks."""
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
        chunk_size: Plaintext bytes per frame (4 KiB to 16 MiB, 32 KiB by default); larger
            frames give zstd more context and cost less per byte to decode in bulk, smaller
            ones make small ranged reads cheaper. Over `encrypt`, at most 32 KiB keeps the
            frames of a read of up to 32 KiB within two encrypted chunks. Stored per object,
            so it may change.
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
        overwrite: bool = True,
        if_match: str | None = None,
    ) -> str | None:
        """Compress the bytes of ``source`` and store them under ``handle`` in one inner write.

        Conditions are decided by the inner module; return its etag.
        """
        meta, ctype = self._check_write(handle, metadata, content_type, overwrite, if_match)
        totals = [0, 0]
        etag = await self._inner.assign(
            handle,
            self._compress(source, totals),
            metadata=meta,
            content_type=ctype,
            overwrite=overwrite,
            if_match=if_match,
        )
        self._logical_written += totals[0]
        self._stored_written += totals[1]
        return etag

    async def _compress(self, source: ByteSource, totals: list[int]) -> AsyncIterator[bytes]:
        compressor = self._zstd.ZstdCompressor(level=self._level, write_checksum=True)
        size = self._chunk_size
        ends: list[int] = []
        stored = 0
        logical = 0
        async for run, _ in chunk_runs(source, size):
            for at in range(0, len(run), size):  # an empty source has no frame
                chunk = run[at : at + size]
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
        self, handle: str, *, start: int = 0, end: int | None = None, if_match: str | None = None
    ) -> ReadStream:
        """Open a stream of the original bytes in ``[start, end)``; only touched frames are read.

        Raises:
            NotFoundError: If no object exists for ``handle``.
            IntegrityError: If the stored object is not a valid compressed object.
            PreconditionFailedError: If ``if_match`` is not the stored object's etag.
        """
        check_range(start, end, store=self.name)
        self._check_handle(handle)
        self._check_read_condition(if_match)
        inner = await self._inner.get_read_stream(handle, if_match=if_match)
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
    """Decompresses the frames a read touches, fetching them from one inner stream.

    The stored frames of one inner read (up to 1 MiB of plaintext) are kept in a reused
    buffer and decoded one at a time, as they are asked for; a large read gets one decoded
    frame per call, as zstd made it, with no copy. The last frame decoded is kept for the
    small reads that follow. Index entries are fetched in 4 KiB blocks, clipped to the
    frames the stream's range covers, so a small ranged read fetches only the two or three
    entries it needs.
    """

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
        self._reader = RangeReader(inner, store=store, handle=info.handle)
        self._trailer = trailer
        self._decompressor = decompressor
        self._zstd_error = zstd_error
        self._corrupt = corrupt
        self._store = store
        self._blocks: dict[int, tuple[int, tuple[int, ...]]] = {}  # block: (first, ends)
        chunk_size = trailer.chunk_size
        # The frames this stream may touch: index entries outside them are never fetched.
        self._first_frame = max(0, self._offset // chunk_size - 1)
        self._last_frame = max(0, (self._offset + self._size - 1) // chunk_size)
        self._chunk_size = chunk_size
        self._batch = max(1, _READ_BATCH // chunk_size)
        self._window = memoryview(b"")
        self._window_bounds: list[int] = [0]
        self._window_first = 0
        self._window_count = 0
        self._window_entry = -1  # the first byte the read that fetched them wanted
        self._plain_index = -1
        self._plain = b""

    async def _ends(self, first: int, last: int) -> list[int]:
        """Return the stored end offsets of chunks ``first - 1`` to ``last`` (-1 ends at 0)."""
        ends = [0] if first == 0 else []
        index = max(first - 1, 0)
        while index <= last:
            block = index // _BLOCK_ENTRIES
            cached = self._blocks.get(block)
            if cached is None or not cached[0] <= index < cached[0] + len(cached[1]):
                cached = await self._fetch_block(block, index)
            start, entries = cached
            stop = min(last + 1, start + len(entries))
            ends.extend(entries[index - start : stop - start])
            index = stop
        return ends

    async def _fetch_block(self, block: int, index: int) -> tuple[int, tuple[int, ...]]:
        """Fetch the entries of ``block`` that the stream's range covers (and ``index``)."""
        first = max(block * _BLOCK_ENTRIES, min(index, self._first_frame))
        stop = min(
            (block + 1) * _BLOCK_ENTRIES, self._trailer.count, max(index, self._last_frame) + 1
        )
        raw = await read_exactly(
            self._inner,
            self._trailer.index_offset + first * _ENTRY,
            (stop - first) * _ENTRY,
            store=self._store,
            handle=self.info.handle,
        )
        cached = (first, struct.unpack(f">{stop - first}Q", raw))
        if len(self._blocks) >= 4:
            self._blocks.pop(next(iter(self._blocks)))
        self._blocks[block] = cached
        return cached

    async def _frame(self, index: int, last: int, offset: int) -> memoryview:
        """Return the stored frame ``index``, reading frames ``index..last`` if not held.

        ``offset`` is the byte the read wants first. When it is where the previous inner
        read ended, and that one was entered at its first byte, the stream is being read in
        order: then up to 1 MiB of plaintext is read ahead, never past the stream's range.
        """
        at = index - self._window_first
        if not 0 <= at < self._window_count:
            start = self._window_first * self._chunk_size
            end = start + self._window_count * self._chunk_size
            if self._window_entry == start and offset == end:
                last = self._last_frame
            last = min(last, index + self._batch - 1, self._trailer.count - 1)
            bounds = await self._ends(index, last)
            if any(b < a for a, b in pairwise(bounds)) or bounds[-1] > self._trailer.index_offset:
                raise self._corrupt(self.info.handle, "inconsistent index")
            self._window, self._window_count = memoryview(b""), 0  # in case the read fails
            self._window = await self._reader.read(bounds[0], bounds[-1] - bounds[0])
            self._window_bounds, self._window_first = bounds, index
            self._window_count = last - index + 1
            self._window_entry = offset
            at = 0
        bounds = self._window_bounds
        base = bounds[0]
        return self._window[bounds[at] - base : bounds[at + 1] - base]

    async def _read_at(self, offset: int, max_bytes: int) -> bytes:
        index, skip = divmod(offset, self._chunk_size)
        if index == self._plain_index:
            return self._plain[skip : skip + max_bytes]
        at = index - self._window_first
        if skip or max_bytes < self._chunk_size or not 0 <= at < self._window_count:
            return await self._fetch_and_read(index, skip, max_bytes)
        # Reading in order: the next whole frame, already fetched. Larger reads get one frame
        # per call (a short read), as zstd made it: joining would copy it once more.
        bounds = self._window_bounds
        base = bounds[0]
        self._plain = self._decode(index, self._window[bounds[at] - base : bounds[at + 1] - base])
        self._plain_index = index
        return self._plain

    async def _fetch_and_read(self, index: int, skip: int, max_bytes: int) -> bytes:
        chunk_size = self._chunk_size
        offset = index * chunk_size + skip
        length = min(chunk_size, self._trailer.size - index * chunk_size)
        if skip + max_bytes > length and max_bytes <= chunk_size:
            # A small read across a frame boundary is answered in full.
            parts = bytearray(max_bytes)
            got = await self._readinto_at(offset, memoryview(parts))
            return bytes(parts) if got == max_bytes else bytes(parts[:got])
        stop = min(offset + max_bytes, self._offset + self._size)
        frame = await self._frame(index, (stop - 1) // chunk_size, offset)
        self._plain = self._decode(index, frame)
        self._plain_index = index
        return self._plain[skip : skip + max_bytes]

    async def _readinto_at(self, offset: int, buffer: memoryview) -> int:
        chunk_size = self._chunk_size
        stop = min(offset + len(buffer), self._offset + self._size)
        last = (stop - 1) // chunk_size
        filled = 0
        while offset + filled < stop:
            index, skip = divmod(offset + filled, chunk_size)
            if index != self._plain_index:
                frame = await self._frame(index, last, offset + filled)
                self._plain = self._decode(index, frame)
                self._plain_index = index
            piece = self._plain[skip : skip + stop - offset - filled]
            buffer[filled : filled + len(piece)] = piece
            filled += len(piece)
        return filled

    def _decode(self, index: int, frame: memoryview) -> bytes:
        chunk_size = self._chunk_size
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
        self._window = memoryview(b"")
        await self._inner.aclose()
