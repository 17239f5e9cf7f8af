"""The ``gzip`` transform: compress to, or decompress from, the gzip format.

A worked example of a CPU-heavy transform: each chunk is (de)compressed in a worker thread
(zlib releases the GIL), so the event loop stays free for other requests; decompression
hands out at most one chunk of output per step, so a small input that inflates hugely (a
"zip bomb") never fills memory. Parameters are checked in `check_params`, before any I/O.

Compressing keeps the content type and records ``content-encoding: gzip`` in the metadata,
as HTTP does; decompressing removes it again. Decompression reads concatenated gzip members
(as ``gzip -d`` does) and zlib streams, and refuses a truncated stream.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Mapping, Sequence
from typing import ClassVar

import anyio.to_thread

from asyncstore.transforms._contract import Transform
from asyncstore.transforms._streams import InputStream, OutputStream

__all__ = ["GzipTransform"]

_CHUNK = 1 << 20
_IN_THREAD = 64 * 1024  # smaller pieces cost less than the trip to a thread
_ENCODING = "content-encoding"


async def _step(function: Callable[[bytes], bytes], data: bytes) -> bytes:
    if len(data) < _IN_THREAD:
        return function(data)
    return await anyio.to_thread.run_sync(function, data)


class GzipTransform(Transform):
    """Compresses to gzip (``mode=compress``, the default) or decompresses gzip or zlib data."""

    PARAMS: ClassVar[Mapping[str, str] | None] = {
        "mode": "compress (the default) or decompress",
        "level": "compression level, 1 (fastest) to 9 (smallest); 6 by default",
    }

    def check_params(self, params: Mapping[str, str]) -> None:
        """Refuse an unknown mode or a level outside 1-9."""
        super().check_params(params)
        if params.get("mode", "compress") not in ("compress", "decompress"):
            raise ValueError(f"mode must be compress or decompress, not {params['mode']!r}")
        level = params.get("level", "6")
        if not (level.isdigit() and 1 <= int(level) <= 9):
            raise ValueError(f"level must be 1 to 9, not {level!r}")

    async def __call__(
        self,
        inputs: Sequence[InputStream],
        outputs: Sequence[OutputStream],
        params: Mapping[str, str],
    ) -> None:
        """Compress or decompress the input into the output."""
        (source,) = inputs
        (target,) = outputs
        metadata = dict(source.info.metadata)
        if params.get("mode", "compress") == "compress":
            metadata[_ENCODING] = "gzip"
            target.set_metadata(metadata, content_type=source.info.content_type)
            await self._compress(source, target, int(params.get("level", "6")))
        else:
            if metadata.get(_ENCODING) == "gzip":
                del metadata[_ENCODING]
            target.set_metadata(metadata, content_type=source.info.content_type)
            await self._decompress(source, target)

    async def _compress(self, source: InputStream, target: OutputStream, level: int) -> None:
        compressor = zlib.compressobj(level, zlib.DEFLATED, 31)  # 31: the gzip container
        async for chunk in source:
            packed = await _step(compressor.compress, chunk)
            if packed:
                await target.write(packed)
        await target.write(compressor.flush())

    async def _decompress(self, source: InputStream, target: OutputStream) -> None:
        decompressor = zlib.decompressobj(47)  # 47: gzip or zlib, told by the header
        started = False  # whether the current member has begun
        async for chunk in source:
            pending = chunk
            while pending:
                if decompressor.eof:  # the next member of a concatenated file
                    decompressor = zlib.decompressobj(47)
                started = True

                def inflate(data: bytes, d: zlib._Decompress = decompressor) -> bytes:
                    return d.decompress(data, _CHUNK)

                plain = await _step(inflate, pending)
                if plain:
                    await target.write(plain)
                pending = decompressor.unconsumed_tail or decompressor.unused_data
                if decompressor.eof:
                    started = False
        if started and not decompressor.eof:
            raise ValueError("the gzip stream is truncated")
