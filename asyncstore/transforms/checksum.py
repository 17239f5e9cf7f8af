"""The ``checksum`` transform: pass the bytes through and record their digest in the metadata.

A worked example of a transform whose metadata depends on every byte: as metadata must be
set before the first write, it reads the whole input first, hashing it into a spool (memory
up to 8 MiB, then a temporary file in ``$TMPDIR``), then sets ``sha256`` (or the chosen
algorithm) in the output's metadata and writes the spooled bytes. Memory stays flat whatever
the size; a large object costs a temporary file as large. Given ``verify``, it fails (and
so stores nothing) when the digest differs.
"""

from __future__ import annotations

import hashlib
import hmac
import tempfile
from collections.abc import Mapping, Sequence
from typing import IO, ClassVar

import anyio.to_thread

from asyncstore.transforms._contract import Transform
from asyncstore.transforms._streams import InputStream, OutputStream

__all__ = ["ChecksumTransform"]

SPOOL_IN_MEMORY = 8 << 20
"""Bytes held in memory before the spool moves to a temporary file."""
_ALGORITHMS = ("sha256", "sha512", "sha1", "md5", "blake2b", "sha3_256")
_CHUNK = 1 << 20


class ChecksumTransform(Transform):
    """Passes the bytes through unchanged and sets their digest (``sha256``) in the metadata."""

    PARAMS: ClassVar[Mapping[str, str] | None] = {
        "algorithm": f"the digest: {', '.join(_ALGORITHMS)} (sha256 by default); also the "
        "metadata name it is stored under",
        "verify": "the expected hex digest: fail, storing nothing, if the bytes differ",
    }
    PRESERVES_SIZE: ClassVar[bool] = True

    def check_params(self, params: Mapping[str, str]) -> None:
        """Refuse an unknown algorithm, or a ``verify`` that is not a hex digest."""
        super().check_params(params)
        algorithm = params.get("algorithm", "sha256")
        if algorithm not in _ALGORITHMS:
            raise ValueError(f"algorithm must be one of {', '.join(_ALGORITHMS)}")
        expected = params.get("verify")
        if expected is not None:
            size = hashlib.new(algorithm).digest_size * 2
            if len(expected) != size or any(c not in "0123456789abcdefABCDEF" for c in expected):
                raise ValueError(f"verify must be a {size}-digit hex {algorithm} digest")

    async def __call__(
        self,
        inputs: Sequence[InputStream],
        outputs: Sequence[OutputStream],
        params: Mapping[str, str],
    ) -> None:
        """Hash the input into a spool, set the digest, then write the spooled bytes."""
        (source,) = inputs
        (target,) = outputs
        algorithm = params.get("algorithm", "sha256")
        digest = hashlib.new(algorithm)
        spool: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)
        try:

            def absorb(chunk: bytes) -> None:
                digest.update(chunk)  # hashlib and file writes release the GIL
                spool.write(chunk)

            async for chunk in source:
                await anyio.to_thread.run_sync(absorb, chunk)
            value = digest.hexdigest()
            expected = params.get("verify")
            if expected is not None and not hmac.compare_digest(value, expected.lower()):
                raise ValueError(f"the {algorithm} digest is {value}, not {expected.lower()}")
            target.set_metadata(
                {**source.info.metadata, algorithm: value},
                content_type=source.info.content_type,
            )
            await anyio.to_thread.run_sync(spool.seek, 0)
            while chunk := await anyio.to_thread.run_sync(spool.read, _CHUNK):
                await target.write(chunk)
        finally:
            spool.close()
