"""The worker process of ``isolation="process"``: runs transform calls for its host.

Started as ``python -m asyncstore.transforms._worker IDLE_SECONDS MEMORY_LIMIT REGION_FD``
with the protocol on its stdin and stdout and the shared region on ``REGION_FD`` (see
`asyncstore.transforms._protocol`); what a transform prints goes to stderr, which the host
keeps the end of for its error messages. The memory limit is set before any transform is
imported. It runs one call at a time, each on a fresh event loop, for as long as the host
sends calls; it exits when the host closes the pipe, after a failed call, or after
``IDLE_SECONDS`` without a call. Everything here blocks: the host serves each request.
"""

from __future__ import annotations

import importlib
import logging
import os
import select
import sys
import threading
import traceback
from collections import deque
from collections.abc import AsyncIterator, Mapping
from typing import Any

from asyncstore.transforms._protocol import (
    CHUNK,
    HEADER,
    IN_SLOTS,
    OUT_SLOTS,
    SLOT,
    Kind,
    decode,
    encode,
    grow_pipe,
    map_region,
    slot_range,
)


class _InputFailedError(Exception):
    """The host could not read an input (its own error is raised to the caller)."""

    def __init__(self, index: int, message: str) -> None:
        super().__init__(message)
        self.index = index


class _Channel:
    """The worker's end of the protocol, over blocking file descriptors."""

    def __init__(self, read_fd: int, write_fd: int, region_fd: int) -> None:
        self._read_fd = read_fd
        self._write_fd = write_fd
        self._region = map_region(region_fd)
        self._view = memoryview(self._region)
        self._stash: dict[int, deque[tuple[int, bytes]]] = {}
        self._pending: dict[int, int] = {}  # input: requests not answered yet
        self._free_out = deque(range(IN_SLOTS, IN_SLOTS + OUT_SLOTS))
        self._lock = threading.Lock()  # log records may come from other threads

    def send(self, kind: int, index: int = 0, payload: bytes = b"") -> None:
        frame = HEADER.pack(kind, index, len(payload)) + payload
        with self._lock:
            view = memoryview(frame)
            while view:
                view = view[os.write(self._write_fd, view) :]

    def _read_exactly(self, count: int) -> bytes:
        parts = []
        while count:
            data = os.read(self._read_fd, count)
            if not data:
                raise EOFError("the host closed the pipe")
            parts.append(data)
            count -= len(data)
        return b"".join(parts)

    def read_frame(self) -> tuple[int, int, bytes]:
        """Return the next frame as it came."""
        kind, index, length = HEADER.unpack(self._read_exactly(HEADER.size))
        return kind, index, self._read_exactly(length) if length else b""

    def _pump(self) -> None:
        """Take one frame of a call: a slot release, or an answer to a read request."""
        kind, index, payload = self.read_frame()
        if kind == Kind.RELEASE:
            self._free_out.append(index)
            return
        if kind == Kind.DATA:
            # Copy the bytes out and hand the slot back at once: the host refills it.
            slot, size = SLOT.unpack(payload)
            payload = bytes(self._view[slot_range(slot, size)])
            self.send(Kind.TAKEN, slot)
        elif kind != Kind.INPUT_FAILED:
            raise RuntimeError(f"unexpected frame kind {kind} from the host")
        self._pending[index] -= 1
        self._stash.setdefault(index, deque()).append((kind, payload))

    def ask(self, index: int, size: int) -> None:
        """Ask the host for up to ``size`` bytes of input ``index``."""
        self.send(Kind.READ, index, size.to_bytes(4, "big"))
        self._pending[index] = self._pending.get(index, 0) + 1

    def receive_input(self, index: int) -> tuple[int, bytes]:
        """Return the next answer (kind and bytes) for input ``index``."""
        while not self._stash.get(index):
            self._pump()
        return self._stash[index].popleft()

    def write(self, index: int, data: bytes | bytearray) -> None:
        """Put bytes of output ``index`` in free slots and tell the host where they are."""
        view = memoryview(data).cast("B")
        for at in range(0, len(view), CHUNK):
            piece = view[at : at + CHUNK]
            while not self._free_out:
                self._pump()
            slot = self._free_out.popleft()
            self._view[slot_range(slot, len(piece))] = piece
            self.send(Kind.WRITE, index, SLOT.pack(slot, len(piece)))

    def settle(self) -> None:
        """Take every answer still due and every slot back: the next call starts clean."""
        while any(self._pending.values()) or len(self._free_out) < OUT_SLOTS:
            self._pump()
        self._stash.clear()
        self._pending.clear()


async def _remote_chunks(channel: _Channel, index: int) -> AsyncIterator[bytes]:
    """Yield input ``index`` from the host, asking for the next chunk before yielding one."""
    channel.ask(index, CHUNK)
    while True:
        kind, payload = channel.receive_input(index)
        if kind == Kind.INPUT_FAILED:
            raise _InputFailedError(index, decode(payload)["message"])
        if not payload:
            return
        channel.ask(index, CHUNK)  # read ahead while the transform works
        yield payload


class _LogForwarder(logging.Handler):
    def __init__(self, channel: _Channel) -> None:
        super().__init__()
        self.channel = channel

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = self.format(record)
            self.channel.send(Kind.LOG, 0, encode({"level": record.levelno, "message": message}))
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
            channel.write(self._index, data)

        async def _finish(self) -> None:
            channel.send(Kind.CLOSE, self._index)

    name = init["name"]
    logger = logging.getLogger(f"asyncstore.transforms.{name}")
    logger.propagate = False
    logger.setLevel(init.get("log_level", logging.WARNING))
    if not any(isinstance(handler, _LogForwarder) for handler in logger.handlers):
        logger.addHandler(_LogForwarder(channel))
    for entry in reversed(init.get("path", [])):
        if entry not in sys.path:
            sys.path.insert(0, entry)
    cls = _load(init["target"])
    transform = cls(TransformContext(name, logger))
    inputs = [
        InputStream(InputInfo.from_dict(info), chunks=_remote_chunks(channel, index))
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
        "message": str(exc)[:2000],
        "traceback": text[-8000:],
        "input": exc.index if isinstance(exc, _InputFailedError) else None,
    }


def main(idle: float, memory_limit: int, region_fd: int) -> int:
    """Serve calls on the protocol until told to stop; return the exit status."""
    read_fd, write_fd = os.dup(0), os.dup(1)
    # Keep the protocol pipes for ourselves: stray prints go to stderr, reads find nothing.
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    os.dup2(2, 1)
    grow_pipe(write_fd)
    channel = _Channel(read_fd, write_fd, region_fd)  # mapped before the limit applies
    if memory_limit:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (memory_limit, memory_limit))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    import anyio

    while True:
        waiting, _, _ = select.select([read_fd], [], [], idle)
        if not waiting:
            return 0  # idle for too long: the host starts another when it needs one
        try:
            kind, _, payload = channel.read_frame()
        except EOFError:
            return 0  # the host is done with us
        if kind != Kind.INIT:
            return 2
        try:
            anyio.run(_run, channel, decode(payload))
            channel.settle()
        except BaseException as exc:  # everything goes to the host, which decides
            channel.send(Kind.FAILED, 0, encode(_failure(exc)))
            return 1
        channel.send(Kind.DONE)


if __name__ == "__main__":
    sys.exit(main(float(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])))
