"""Running a transform on bytes in memory, recording everything it does to its outputs."""

from __future__ import annotations

import builtins
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

import anyio.lowlevel

from asyncstore.transforms._contract import InputInfo, Transform
from asyncstore.transforms._execute import Isolation, check_call, execute, resolve
from asyncstore.transforms._streams import InputStream, OutputStream

__all__ = ["Produced", "RecordingOutput", "Sample", "run_on_bytes", "sample_stream"]

_EMPTY: Mapping[str, str] = MappingProxyType({})


@dataclass(frozen=True)
class Sample:
    """One input for a test run: bytes and what the input says about itself."""

    data: bytes
    """The input's bytes."""
    key: str = "input"
    """Its key."""
    content_type: str | None = None
    """Its content type."""
    metadata: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    """Its user metadata."""

    def info(self) -> InputInfo:
        """Describe the sample as an input."""
        return InputInfo(self.key, len(self.data), self.content_type, self.metadata)


@dataclass(frozen=True)
class Produced:
    """What a transform wrote to one output."""

    data: bytes
    """The bytes."""
    metadata: Mapping[str, str]
    """The metadata it set."""
    content_type: str | None
    """The content type it set."""
    events: tuple[str, ...]
    """What happened, in order: ``"metadata"`` (set), ``"write"``, ``"close"``."""
    closed: bool
    """Whether the output was closed (by the transform or its host)."""


class RecordingOutput(OutputStream):
    """An output that keeps its bytes in memory and records each call made on it."""

    def __init__(self, *, transform: str) -> None:
        super().__init__(transform=transform)
        self.events: builtins.list[str] = []
        self.parts: builtins.list[bytes] = []

    def set_metadata(
        self, metadata: Mapping[str, str] | None = None, *, content_type: str | None = None
    ) -> None:
        """Set the metadata as any output does, and record that it was set."""
        super().set_metadata(metadata, content_type=content_type)
        self.events.append("metadata")

    async def _write(self, data: bytes | bytearray) -> None:
        self.events.append("write")
        self.parts.append(bytes(data))
        await anyio.lowlevel.checkpoint()

    async def _finish(self) -> None:
        self.events.append("close")

    def produced(self) -> Produced:
        """Return what was written."""
        return Produced(
            b"".join(self.parts),
            dict(self.metadata),
            self.content_type,
            tuple(self.events),
            self.closed,
        )


async def _pieces(data: bytes, size: int) -> AsyncIterator[bytes]:
    for at in range(0, len(data), size):
        await anyio.lowlevel.checkpoint()
        yield data[at : at + size]


def sample_stream(sample: Sample | bytes, *, chunk_size: int = 64 * 1024) -> InputStream:
    """Return an input stream of a sample's bytes, delivered in ``chunk_size`` pieces."""
    if isinstance(sample, (bytes, bytearray)):
        sample = Sample(bytes(sample))
    return InputStream(sample.info(), chunks=_pieces(sample.data, chunk_size))


async def run_on_bytes(
    transform: str | Transform | type[Transform],
    inputs: Sequence[Sample | bytes],
    *,
    params: Mapping[str, str] | None = None,
    outputs: int | None = None,
    isolation: str = "inline",
    chunk_size: int = 64 * 1024,
) -> builtins.list[Produced]:
    """Run a transform on bytes in memory and return what it wrote to each output.

    Runs exactly as `asyncstore.run_transform` does (the same checks, the same errors), with
    each input delivered in ``chunk_size`` pieces so that chunk boundaries get exercised.

    Args:
        transform: A transform name, instance or class.
        inputs: The inputs: bytes, or `Sample` objects with a key, content type, metadata.
        params: The parameters.
        outputs: How many outputs to give it (the transform's `Transform.OUTPUTS` if omitted).
        isolation: ``"inline"`` or ``"process"``.
        chunk_size: The size of the pieces inputs are delivered in.

    Raises:
        TransformError: If the transform fails or refuses the call.
    """
    instance = resolve(transform)
    count = instance.OUTPUTS if outputs is None else outputs
    given = check_call(instance, len(inputs), count, params)
    streams = [sample_stream(sample, chunk_size=chunk_size) for sample in inputs]
    recorders = [RecordingOutput(transform=instance.name) for _ in range(count)]
    try:
        await execute(instance, streams, recorders, given, isolation=Isolation(isolation))
    finally:
        for stream in streams:
            await stream.aclose()
    return [recorder.produced() for recorder in recorders]
