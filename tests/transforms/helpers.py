"""Transforms written for the tests (importable by name, so worker processes can load them)."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import ClassVar

from asyncstore.transforms import InputStream, OutputStream, Transform


class Upper(Transform):
    """Upper-cases ASCII bytes; keeps metadata."""

    async def __call__(
        self,
        inputs: Sequence[InputStream],
        outputs: Sequence[OutputStream],
        params: Mapping[str, str],
    ) -> None:
        (source,), (target,) = inputs, outputs
        target.set_metadata(source.info.metadata, content_type=source.info.content_type)
        async for chunk in source:
            await target.write(chunk.upper())


class Concat(Transform):
    """Writes its inputs one after the other; records their keys in the metadata."""

    INPUTS: ClassVar[int | None] = None

    async def __call__(
        self,
        inputs: Sequence[InputStream],
        outputs: Sequence[OutputStream],
        params: Mapping[str, str],
    ) -> None:
        (target,) = outputs
        target.set_metadata({"parts": ",".join(str(i.info.key) for i in inputs)})
        for source in inputs:
            buffer = bytearray(100_000)
            while count := await source.readinto(buffer):
                await target.write(memoryview(buffer)[:count])  # a reused buffer: copied


class Split(Transform):
    """Writes even lines to its first output, odd lines to its second."""

    OUTPUTS: ClassVar[int] = 2

    async def __call__(
        self,
        inputs: Sequence[InputStream],
        outputs: Sequence[OutputStream],
        params: Mapping[str, str],
    ) -> None:
        (source,) = inputs
        even, odd = outputs
        even.set_metadata({"half": "even"}, content_type="text/plain")
        odd.set_metadata({"half": "odd"}, content_type="text/plain")
        lines = (await source.read()).splitlines(keepends=True)
        await even.write(b"".join(lines[0::2]))
        await odd.write(b"".join(lines[1::2]))


class FailAfter(Transform):
    """Writes ``after`` bytes of its input, then fails."""

    PARAMS: ClassVar[Mapping[str, str] | None] = {"after": "bytes to write first"}

    async def __call__(
        self,
        inputs: Sequence[InputStream],
        outputs: Sequence[OutputStream],
        params: Mapping[str, str],
    ) -> None:
        (source,), (target,) = inputs, outputs
        await target.write(await source.read(int(params.get("after", "0"))))
        raise ValueError("boom")


class LateMetadata(Transform):
    """Sets metadata after writing: a misuse."""

    async def __call__(
        self,
        inputs: Sequence[InputStream],
        outputs: Sequence[OutputStream],
        params: Mapping[str, str],
    ) -> None:
        (target,) = outputs
        await target.write(b"data")
        target.set_metadata({"late": "yes"})


class Liar(Transform):
    """Claims to keep sizes but writes ``extra`` more (or, negative, fewer) bytes."""

    PARAMS: ClassVar[Mapping[str, str] | None] = None
    PRESERVES_SIZE: ClassVar[bool] = True

    async def __call__(
        self,
        inputs: Sequence[InputStream],
        outputs: Sequence[OutputStream],
        params: Mapping[str, str],
    ) -> None:
        (source,), (target,) = inputs, outputs
        data = await source.read()
        extra = int(params.get("extra", "1"))
        await target.write(data + b"!" * extra if extra >= 0 else data[:extra])


class Crash(Transform):
    """Kills its own process: ``how`` is ``exit`` (status 3) or ``signal`` (SIGKILL)."""

    PARAMS: ClassVar[Mapping[str, str] | None] = None

    async def __call__(
        self,
        inputs: Sequence[InputStream],
        outputs: Sequence[OutputStream],
        params: Mapping[str, str],
    ) -> None:
        await inputs[0].read(10)
        print("about to go", flush=True)  # stray output: must not break the protocol
        if params.get("how") == "signal":
            os.kill(os.getpid(), signal.SIGKILL)
        os._exit(3)


class Hang(Transform):
    """Writes its pid to ``pidfile``, then blocks its process (no await) forever."""

    PARAMS: ClassVar[Mapping[str, str] | None] = None

    async def __call__(
        self,
        inputs: Sequence[InputStream],
        outputs: Sequence[OutputStream],
        params: Mapping[str, str],
    ) -> None:
        if "pidfile" in params:
            Path(params["pidfile"]).write_text(str(os.getpid()))  # noqa: ASYNC240
        while True:
            time.sleep(1)  # noqa: ASYNC251 - hanging is the point


class Hog(Transform):
    """Allocates ``mib`` MiB at once."""

    PARAMS: ClassVar[Mapping[str, str] | None] = None

    async def __call__(
        self,
        inputs: Sequence[InputStream],
        outputs: Sequence[OutputStream],
        params: Mapping[str, str],
    ) -> None:
        hoard = bytearray(int(params.get("mib", "2048")) << 20)
        await outputs[0].write(hoard[:10])


class Chatty(Transform):
    """Prints to stdout, logs a warning, and passes its input through."""

    async def __call__(
        self,
        inputs: Sequence[InputStream],
        outputs: Sequence[OutputStream],
        params: Mapping[str, str],
    ) -> None:
        print("hello from the transform")
        self.logger.warning("a warning from %s", self.name)
        (source,), (target,) = inputs, outputs
        async for chunk in source:
            await target.write(chunk)


class Stall(Transform):
    """Writes ``mib`` MiB of its input (0 by default), then waits forever."""

    PARAMS: ClassVar[Mapping[str, str] | None] = None

    async def __call__(
        self,
        inputs: Sequence[InputStream],
        outputs: Sequence[OutputStream],
        params: Mapping[str, str],
    ) -> None:
        import anyio

        (source,), (target,) = inputs, outputs
        wanted = int(params.get("mib", "0")) << 20
        while wanted > 0 and (chunk := await source.read(min(wanted, 1 << 20))):
            await target.write(chunk)
            wanted -= len(chunk)
        await anyio.sleep_forever()


class FailMidway(Transform):
    """Passes its input through (claiming to keep sizes) and fails after ``after`` bytes."""

    PARAMS: ClassVar[Mapping[str, str] | None] = None
    PRESERVES_SIZE: ClassVar[bool] = True

    async def __call__(
        self,
        inputs: Sequence[InputStream],
        outputs: Sequence[OutputStream],
        params: Mapping[str, str],
    ) -> None:
        (source,), (target,) = inputs, outputs
        target.set_metadata(source.info.metadata, content_type=source.info.content_type)
        left = int(params.get("after", str(1 << 20)))
        while left > 0 and (chunk := await source.read(min(left, 65536))):
            await target.write(chunk)
            left -= len(chunk)
        raise RuntimeError("failed midway")


class Pid(Transform):
    """Records the id of the process it runs in, as the output's ``pid`` metadata."""

    async def __call__(
        self,
        inputs: Sequence[InputStream],
        outputs: Sequence[OutputStream],
        params: Mapping[str, str],
    ) -> None:
        outputs[0].set_metadata({"pid": str(os.getpid())})
        async for chunk in inputs[0]:
            await outputs[0].write(chunk)
