"""Transformed reads: a `ReadStream` of what a transform writes, as it writes it.

Each run of the transform reads the stored object from its start and runs as a background
task (see `asyncstore.transforms._background`), writing into a bounded pipe the stream reads
from, so a slow reader holds the transform back. A ranged read or a forward seek skips
bytes; a backward seek starts a new run. Every run reads the one stream of the object that
the read opened, rewound, so all of them see the same version. A run that fails makes the
reader's next read raise its error; a run that writes fewer or more bytes than the stream's
size raises `TransformError`: a transformed read is never cut short silently.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

import anyio

from asyncstore.errors import TransformError
from asyncstore.info import ObjectInfo
from asyncstore.streams import ReadStream
from asyncstore.transforms._background import Background, start_background
from asyncstore.transforms._contract import Transform
from asyncstore.transforms._execute import Isolation, execute
from asyncstore.transforms._outputs import PipeOutput
from asyncstore.transforms._streams import InputStream

__all__ = ["TransformRun", "TransformedReadStream", "start_run"]


class TransformRun:
    """One run of a transform over an object, in the background, feeding a pipe."""

    def __init__(self, transform: Transform, output: PipeOutput, task: Background) -> None:
        self.transform = transform
        self.output = output
        self.task = task
        self.position = 0
        """How many output bytes have been taken."""
        self._pending = memoryview(b"")

    @property
    def metadata(self) -> Mapping[str, str]:
        """The metadata the transform set on its output."""
        return self.output.metadata

    @property
    def content_type(self) -> str | None:
        """The content type the transform set on its output."""
        return self.output.content_type

    async def read(self, max_bytes: int) -> bytes:
        """Take up to ``max_bytes`` of the output; b"" at its end.

        Raises:
            Exception: What the run failed with.
        """
        if not self._pending:
            self._pending = memoryview(await self.output.pipe.receive())
        piece = self._pending[:max_bytes]
        self._pending = self._pending[len(piece) :]
        self.position += len(piece)
        whole = piece.obj
        if type(whole) is bytes and len(piece) == len(whole):
            return whole
        return piece.tobytes()

    async def aclose(self) -> None:
        """Stop the run (if it still runs) and wait until it has ended."""
        self.output.pipe.abandon()
        self.task.cancel()
        with anyio.CancelScope(shield=True):
            await self.task.wait()


async def start_run(
    transform: Transform,
    stream: ReadStream,
    params: Mapping[str, str],
    isolation: Isolation,
    *,
    store: str | None = None,
) -> TransformRun:
    """Rewind ``stream``, start the transform on it, and wait until its metadata is final.

    The stream stays open when the run ends: the caller closes it.

    Raises:
        Exception: What the run failed with before its metadata was final.
    """
    if stream.tell():
        await stream.seek(0)
    source = InputStream.from_read_stream(stream, store=store, owned=False)
    output = PipeOutput(transform=transform.name)

    async def produce() -> None:
        await execute(transform, [source], [output], params, isolation=isolation)

    run = TransformRun(transform, output, start_background(produce))
    try:
        await output.ready.wait()
        if output.pipe.error is not None and not output.started:
            raise output.pipe.error
    except BaseException:
        await run.aclose()
        raise
    return run


class TransformedReadStream(ReadStream):
    """A `ReadStream` over the output of a transform run on a stored object.

    Its `size` is known before it is read (the caller measured it, or the transform keeps
    sizes); the bytes of each run are checked against it.
    """

    def __init__(
        self,
        info: ObjectInfo,
        inner: ReadStream,
        first_run: TransformRun,
        restart: Callable[[], Awaitable[TransformRun]],
        *,
        start: int = 0,
        end: int | None = None,
    ) -> None:
        super().__init__(info, start=start, end=end)
        self._inner = inner
        self._run: TransformRun | None = first_run
        self._restart = restart

    def _short(self, run: TransformRun) -> TransformError:
        name = run.transform.name
        return TransformError(
            f"transform {name!r} wrote {run.position} bytes of an object of "
            f"{self.info.size}: it is not deterministic",
            transform=name,
            handle=self.info.handle,
        )

    async def _at(self, offset: int) -> TransformRun:
        run = self._run
        if run is None or run.position > offset:
            if run is not None:
                self._run = None
                await run.aclose()
            run = self._run = await self._restart()
        while run.position < offset:  # skip to the range's start, or past a forward seek
            if not await run.read(offset - run.position):
                raise self._short(run)
        return run

    async def _read_at(self, offset: int, max_bytes: int) -> bytes:
        run = await self._at(offset)
        data = await run.read(max_bytes)
        if not data:
            raise self._short(run)
        if run.position == self.info.size and await run.read(1):
            run.position -= 1  # count the extra byte once: the message says how many
            raise TransformError(
                f"transform {run.transform.name!r} wrote more than the {self.info.size} "
                "bytes of the object: it is not deterministic",
                transform=run.transform.name,
                handle=self.info.handle,
            )
        return data

    async def _close(self) -> None:
        run, self._run = self._run, None
        if run is not None:
            await run.aclose()
        await self._inner.aclose()
