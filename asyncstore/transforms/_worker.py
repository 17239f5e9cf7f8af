"""The worker process of ``isolation="process"``: runs one transform call for its host.

Started as ``python -m asyncstore.transforms._worker`` with the protocol on its stdin and
stdout (see `asyncstore.transforms._protocol`); what the transform prints goes to stderr,
which the host keeps the end of for its error messages. The memory limit is set before the
transform is imported. Everything here blocks: the worker runs one call, and the host
serves each request it makes.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
import traceback
from collections import deque
from collections.abc import AsyncIterator, Mapping
from typing import Any

from asyncstore.transforms._protocol import HEADER, Kind, decode, encode, grow_pipe, write_all


class _InputFailedError(Exception):
    """The host could not read an input (its own error is raised to the caller)."""

    def __init__(self, index: int, message: str) -> None:
        super().__init__(message)
        self.index = index


class _Channel:
    """The worker's end of the protocol, over blocking file descriptors."""

    def __init__(self, read_fd: int, write_fd: int) -> None:
        self._read_fd = read_fd
        self._write_fd = write_fd
        self._stash: dict[int, deque[tuple[int, bytearray]]] = {}
        self.asked: set[int] = set()

    def send(self, kind: int, index: int = 0, payload: bytes | bytearray = b"") -> None:
        write_all(self._write_fd, HEADER.pack(kind, index, len(payload)), payload)

    def _read_exactly(self, count: int) -> bytearray:
        buffer = bytearray(count)
        view = memoryview(buffer)
        got = 0
        while got < count:
            n = os.readv(self._read_fd, [view[got:]])
            if n == 0:
                raise EOFError("the host closed the pipe")
            got += n
        return buffer

    def receive(self) -> tuple[int, int, bytearray]:
        kind, index, length = HEADER.unpack(self._read_exactly(HEADER.size))
        return kind, index, self._read_exactly(length)

    def receive_input(self, index: int) -> tuple[int, bytearray]:
        """Return the next DATA or INPUT_FAILED frame for input ``index``."""
        stash = self._stash.get(index)
        if stash:
            return stash.popleft()
        while True:
            kind, got, payload = self.receive()
            if got == index:
                return kind, payload
            self._stash.setdefault(got, deque()).append((kind, payload))


async def _remote_chunks(channel: _Channel, index: int, size: int) -> AsyncIterator[bytearray]:
    """Yield input ``index`` from the host, asking for the next chunk before yielding one."""
    channel.send(Kind.READ, index, size.to_bytes(4, "big"))
    while True:
        kind, payload = channel.receive_input(index)
        if kind == Kind.INPUT_FAILED:
            raise _InputFailedError(index, decode(payload)["message"])
        if not payload:
            return
        channel.send(Kind.READ, index, size.to_bytes(4, "big"))  # read ahead while we work
        yield payload


class _LogForwarder(logging.Handler):
    def __init__(self, channel: _Channel) -> None:
        super().__init__()
        self._channel = channel

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = self.format(record)
            self._channel.send(Kind.LOG, 0, encode({"level": record.levelno, "message": message}))
        except Exception:  # a log record must never break the transform
            self.handleError(record)


def _load(target: str) -> Any:
    module_name, _, qualname = target.partition(":")
    value: Any = importlib.import_module(module_name)
    for part in qualname.split("."):
        value = getattr(value, part)
    return value


async def _run(channel: _Channel, init: Mapping[str, Any]) -> None:
    from asyncstore.transforms._contract import InputInfo, TransformContext
    from asyncstore.transforms._streams import InputStream, OutputStream

    class _RemoteOutput(OutputStream):
        def __init__(self, index: int, name: str) -> None:
            super().__init__(transform=name)
            self._index = index

        async def _start(self) -> None:
            meta = {"metadata": dict(self.metadata), "content_type": self.content_type}
            channel.send(Kind.META, self._index, encode(meta))

        async def _write(self, data: bytes | bytearray) -> None:
            channel.send(Kind.WRITE, self._index, data)

        async def _finish(self) -> None:
            channel.send(Kind.CLOSE, self._index)

    name = init["name"]
    logger = logging.getLogger(f"asyncstore.transforms.{name}")
    logger.propagate = False
    logger.setLevel(init.get("log_level", logging.WARNING))
    logger.addHandler(_LogForwarder(channel))
    cls = _load(init["target"])
    transform = cls(TransformContext(name, logger))
    inputs = [
        InputStream(InputInfo.from_dict(info), chunks=_remote_chunks(channel, index, init["chunk"]))
        for index, info in enumerate(init["inputs"])
    ]
    outputs = [_RemoteOutput(index, name) for index in range(init["outputs"])]
    await transform(inputs, outputs, init["params"])
    for output in outputs:
        await output.aclose()


def _failure(exc: BaseException) -> dict[str, Any]:
    try:
        text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    except MemoryError:
        text = ""
    return {
        "type": type(exc).__name__,
        "message": str(exc),
        "traceback": text[-8000:],
        "input": exc.index if isinstance(exc, _InputFailedError) else None,
    }


def main() -> int:
    """Serve one call on the protocol; return the exit status."""
    read_fd, write_fd = os.dup(0), os.dup(1)
    # Keep the protocol pipes for ourselves: stray prints go to stderr, reads find nothing.
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    os.dup2(2, 1)
    grow_pipe(write_fd)
    channel = _Channel(read_fd, write_fd)
    kind, _, payload = channel.receive()
    if kind != Kind.INIT:
        return 2
    init = decode(payload)
    for entry in reversed(init.get("path", [])):
        if entry not in sys.path:
            sys.path.insert(0, entry)
    limit = init.get("memory_limit")
    if limit:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    import anyio

    try:
        anyio.run(_run, channel, init)
    except BaseException as exc:  # everything goes to the host, which decides
        channel.send(Kind.FAILED, 0, encode(_failure(exc)))
        return 1
    channel.send(Kind.DONE)
    return 0


if __name__ == "__main__":
    sys.exit(main())
