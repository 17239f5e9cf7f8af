"""Process isolation: the host side of a transform call run in a worker process.

The worker (`asyncstore.transforms._worker`) gets a limit on its address space, and the host
kills it when it stays silent for longer than the timeout; a worker that crashes, hangs or
runs out of memory becomes a `TransformError`, and the host goes on. Bytes cross two pipes
(grown to 1 MiB where the system allows); the worker asks for input a chunk ahead and the
host serves those requests in a task of their own, so input and output flow at once.
"""

from __future__ import annotations

import builtins
import os
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import anyio
from anyio.abc import ByteReceiveStream, Process

from asyncstore.errors import TransformError
from asyncstore.transforms._contract import Transform
from asyncstore.transforms._execute import Isolation
from asyncstore.transforms._protocol import (
    CHUNK,
    HEADER,
    Kind,
    decode,
    encode,
    grow_pipe,
)
from asyncstore.transforms._streams import InputStream, OutputStream

__all__ = ["RemoteError", "run_in_worker", "target_of"]

_STDERR_TAIL = 4000


class RemoteError(Exception):
    """An error raised in the worker process whose type does not exist in the host.

    Attributes:
        type_name: The name of the error's type in the worker.
        remote_traceback: The worker's traceback, as text.
    """

    def __init__(self, type_name: str, message: str, remote_traceback: str = "") -> None:
        super().__init__(f"{type_name}: {message}" if message else type_name)
        self.type_name = type_name
        self.remote_traceback = remote_traceback


def target_of(transform: Transform) -> str:
    """Return the ``module:QualName`` a worker imports to recreate ``transform``.

    Raises:
        TransformError: If the class cannot be imported by name in another process.
    """
    cls = type(transform)
    if cls.__module__ == "__main__" or "<locals>" in cls.__qualname__:
        raise TransformError(
            f"transform {transform.name!r} cannot run in a worker process: its class "
            f"{cls.__qualname__} is not importable by name (define it at the top level of an "
            "importable module)",
            transform=transform.name,
        )
    return f"{cls.__module__}:{cls.__qualname__}"


def _remote_error(failure: Mapping[str, Any]) -> BaseException:
    """Rebuild the worker's error: a builtin type as itself, anything else as `RemoteError`."""
    type_name, message = str(failure.get("type")), str(failure.get("message", ""))
    text = str(failure.get("traceback", ""))
    cls = getattr(builtins, type_name, None)
    error: BaseException
    if isinstance(cls, type) and issubclass(cls, Exception):
        try:
            error = cls(message)
        except Exception:
            error = RemoteError(type_name, message, text)
    else:
        error = RemoteError(type_name, message, text)
    error.remote_traceback = text  # type: ignore[attr-defined]
    return error


class _HostChannel:
    """The host's end of the protocol, over non-blocking file descriptors."""

    def __init__(self, read_fd: int, write_fd: int) -> None:
        self._read_fd = read_fd
        self._write_fd = write_fd

    async def _write_view(self, view: memoryview) -> None:
        while view:
            try:
                done = os.write(self._write_fd, view)
            except BlockingIOError:
                await anyio.wait_writable(self._write_fd)
                continue
            view = view[done:]

    async def send(self, kind: int, index: int = 0, payload: bytes | bytearray = b"") -> None:
        header = HEADER.pack(kind, index, len(payload))
        try:
            done = os.writev(self._write_fd, [header, payload]) if payload else 0
        except BlockingIOError:
            done = 0
        if done < len(header):
            await self._write_view(memoryview(header)[done:])
            done = len(header)
        await self._write_view(memoryview(payload)[done - len(header) :])

    async def _read_exactly(self, count: int) -> bytearray | None:
        buffer = bytearray(count)
        view = memoryview(buffer)
        got = 0
        while got < count:
            try:
                n = os.readv(self._read_fd, [view[got:]])
            except BlockingIOError:
                await anyio.wait_readable(self._read_fd)
                continue
            if n == 0:
                return None
            got += n
        return buffer

    async def receive(self) -> tuple[int, int, bytearray] | None:
        """Return the next frame, or None if the worker closed its end."""
        header = await self._read_exactly(HEADER.size)
        if header is None:
            return None
        kind, index, length = HEADER.unpack(header)
        payload = await self._read_exactly(length) if length else bytearray()
        if payload is None:
            return None
        return kind, index, payload


async def _keep_tail(
    stream: ByteReceiveStream | None, tail: bytearray, drained: anyio.Event
) -> None:
    try:
        if stream is not None:
            async for chunk in stream:
                tail += chunk
                del tail[:-_STDERR_TAIL]
    finally:
        drained.set()


class _WorkerGoneError(Exception):
    """The worker closed its pipe: it exited or was killed."""


async def _why_gone(process: Process, tail: bytearray, drained: anyio.Event) -> ChildProcessError:
    """Wait for a worker that closed its pipe, and say how it ended and what it printed."""
    with anyio.move_on_after(5):
        await process.wait()
    with anyio.move_on_after(1):
        await drained.wait()  # what it printed before it went
    last = bytes(tail).decode(errors="replace").strip().splitlines()[-3:]
    detail = f"; its last words: {' | '.join(last)}" if last else ""
    return ChildProcessError(f"its worker process {_exit_reason(process.returncode)}{detail}")


def _exit_reason(code: int | None) -> str:
    if code is None:
        return "closed its pipe"
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with status {code}"


async def run_in_worker(
    transform: Transform,
    inputs: Sequence[InputStream],
    outputs: Sequence[OutputStream],
    params: Mapping[str, str],
    isolation: Isolation,
) -> None:
    """Run one call of ``transform`` in a worker process, feeding and draining it.

    Raises:
        TransformError: If the class cannot be recreated in a worker.
        TimeoutError: If the worker stayed silent longer than the timeout (it is killed).
        ChildProcessError: If the worker exited or was killed before it finished.
        Exception: The transform's own error, rebuilt (see `RemoteError`), or an input's or
            output's error unchanged.
    """
    init = {
        "target": target_of(transform),
        "name": transform.name,
        "params": dict(params),
        "inputs": [stream.info.to_dict() for stream in inputs],
        "outputs": len(outputs),
        "path": [entry for entry in sys.path if entry],
        "memory_limit": isolation.memory_limit,
        "chunk": CHUNK,
        "log_level": transform.logger.getEffectiveLevel(),
    }
    worker_in, host_out = os.pipe()
    host_in, worker_out = os.pipe()
    for fd in (host_out, worker_out):
        grow_pipe(fd)
    os.set_blocking(host_in, False)
    os.set_blocking(host_out, False)
    process = None
    try:
        process = await anyio.open_process(
            [sys.executable, "-m", "asyncstore.transforms._worker"],
            stdin=worker_in,
            stdout=worker_out,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        os.close(worker_in)
        os.close(worker_out)
        worker_in = worker_out = -1
        channel = _HostChannel(host_in, host_out)
        tail = bytearray()
        drained = anyio.Event()
        failure: BaseException | None = None
        async with anyio.create_task_group() as group:
            group.start_soon(_keep_tail, process.stderr, tail, drained)
            try:
                await channel.send(Kind.INIT, 0, encode(init))
                await _serve(channel, transform, inputs, outputs, isolation, group)
            except _WorkerGoneError:
                failure = await _why_gone(process, tail, drained)
            except (BrokenPipeError, ConnectionResetError):  # gone before it read its call
                failure = await _why_gone(process, tail, drained)
            except Exception as exc:  # raised below, outside the task group, as it is
                failure = exc
            group.cancel_scope.cancel()
        if failure is not None:
            raise failure
    finally:
        with anyio.CancelScope(shield=True):
            if process is not None:
                if process.returncode is None:
                    process.kill()
                await process.wait()
                await process.aclose()
            for fd in (worker_in, worker_out, host_in, host_out):
                if fd >= 0:
                    os.close(fd)


async def _serve(
    channel: _HostChannel,
    transform: Transform,
    inputs: Sequence[InputStream],
    outputs: Sequence[OutputStream],
    isolation: Isolation,
    group: Any,
) -> None:
    requests_send, requests = anyio.create_memory_object_stream[tuple[int, int]](len(inputs) + 1)
    logger = transform.logger

    async def feed() -> None:
        async with requests:
            async for index, size in requests:
                try:
                    data = await inputs[index].read(size)
                except Exception as exc:
                    failure = {"type": type(exc).__name__, "message": str(exc)}
                    try:
                        await channel.send(Kind.INPUT_FAILED, index, encode(failure))
                    except OSError:
                        return
                    continue
                try:
                    await channel.send(Kind.DATA, index, data)
                except OSError:
                    return  # the worker is gone; the reader finds out how

    group.start_soon(feed)
    async with requests_send:
        while True:
            with anyio.move_on_after(isolation.timeout) as waited:
                frame = await channel.receive()
            if waited.cancelled_caught:
                raise TimeoutError(
                    f"its worker process sent nothing for {isolation.timeout:g} s and was killed"
                )
            if frame is None:
                raise _WorkerGoneError
            kind, index, payload = frame
            if kind == Kind.READ:
                if index >= len(inputs):
                    raise TransformError(
                        f"the worker asked for input {index}", transform=transform.name
                    )
                await requests_send.send((index, min(int.from_bytes(payload, "big"), CHUNK)))
            elif kind == Kind.WRITE:
                await _output(outputs, index)._accept(payload)
            elif kind == Kind.META:
                meta = decode(payload)
                output = _output(outputs, index)
                output.set_metadata(meta["metadata"], content_type=meta["content_type"])
                await output._ensure_started()
            elif kind == Kind.CLOSE:
                await _output(outputs, index).aclose()
            elif kind == Kind.LOG:
                record = decode(payload)
                logger.log(int(record["level"]), "%s", record["message"])
            elif kind == Kind.DONE:
                return
            elif kind == Kind.FAILED:
                failure = decode(payload)
                position = failure.get("input")
                if isinstance(position, int) and 0 <= position < len(inputs):
                    own = inputs[position].failure
                    if own is not None:
                        raise own
                raise _remote_error(failure)
            else:
                raise TransformError(
                    f"the worker sent an unknown frame kind {kind}", transform=transform.name
                )


def _output(outputs: Sequence[OutputStream], index: int) -> OutputStream:
    if index >= len(outputs):
        raise ValueError(f"the worker wrote to output {index}, which does not exist")
    return outputs[index]
