"""The ``identity`` transform: the smallest complete transform, and the one to copy.

It copies its input to its output unchanged, with the input's metadata and content type.
Every transform follows the same three steps: set the output's metadata, stream the bytes
(a chunk at a time, so that memory stays flat whatever the size), and let the host close
the output.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import ClassVar

from asyncstore.transforms._contract import Transform
from asyncstore.transforms._streams import InputStream, OutputStream

__all__ = ["IdentityTransform"]


class IdentityTransform(Transform):
    """Passes the bytes, metadata and content type of its input through unchanged."""

    PARAMS: ClassVar[Mapping[str, str] | None] = {}
    PRESERVES_SIZE: ClassVar[bool] = True

    async def __call__(
        self,
        inputs: Sequence[InputStream],
        outputs: Sequence[OutputStream],
        params: Mapping[str, str],
    ) -> None:
        """Copy the input to the output."""
        (source,) = inputs
        (target,) = outputs
        # 1. Metadata first: it cannot change once the first byte is written.
        target.set_metadata(source.info.metadata, content_type=source.info.content_type)
        # 2. Then the bytes, a chunk at a time: each write waits while the consumer is busy.
        async for chunk in source:
            await target.write(chunk)
        # 3. The host closes the output when this returns.
