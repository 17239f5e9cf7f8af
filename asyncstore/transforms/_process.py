"""Process isolation: the host side of a transform call run in a worker process.

The worker (`asyncstore.transforms._worker`, from the pool of `asyncstore.transforms._pool`)
has a limit on its address space, and the host kills it when it stays silent for longer than
the timeout; a worker that crashes, hangs or runs out of memory becomes a `TransformError`,
and the host goes on. Bytes cross a shared memory region, in slots the frames on two pipes
name; the worker asks for input a chunk ahead and the host serves those requests in a task
of their own, so input and output flow at once.
"""

from __future__ import annotations

import builtins
import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import anyio

from asyncstore.errors import TransformError
from asyncstore.transforms._contract import Transform
from asyncstore.transforms._execute import Isolation
from asyncstore.transforms._pool import Worker, give_back, take
from asyncstore.transforms._protocol import (
    CHUNK,
    HEADER,
    IN_SLOTS,
    OUT_SLOTS,
    SLOT,
    Kind,
    RemoteError,
    decode,
    encode,
    slot_range,
)
from asyncstore.transforms._streams import InputStream, OutputStream

__all__ = ["run_in_worker", "target_of"]


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
        self.heard = False
        """Whether the worker has sent anything on this call."""
        self._sending = anyio.Lock()

    async def send(self, kind: int, index: int = 0, payload: bytes = b"") -> None:
        """Send a frame, whole: the feeding task and the reading task both send."""
        view = memoryview(HEADER.pack(kind, index, len(payload)) + payload)
        async with self._sending:
            while view:
                try:
                    view = view[os.write(self._write_fd, view) :]
                except BlockingIOError:  # noqa: PERF203 - rare: frames are small
                    await anyio.wait_writable(self._write_fd)

    async def _read_exactly(self, count: int) -> bytes | None:
        parts = []
        while count:
            try:
                data = os.read(self._read_fd, count)
            except BlockingIOError:
                await anyio.wait_readable(self._read_fd)
                continue
            if not data:
                return None
            parts.append(data)
            count -= len(data)
        return b"".join(parts)

    async def receive(self) -> tuple[int, int, bytes] | None:
        """Return the next frame, or None if the worker closed its end."""
        header = await self._read_exactly(HEADER.size)
        if header is None:
            return None
        self.heard = True
        kind, index, length = HEADER.unpack(header)
        payload = await self._read_exactly(length) if length else b""
        if payload is None:
            return None
        return kind, index, payload


class _WorkerGoneError(Exception):
    """The worker closed its pipe: it exited or was killed."""


class _StaleWorkerError(Exception):
    """A reused worker was gone before it took the call (it had just left, idle)."""


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
    target = target_of(transform)
    init = {
        "target": target,
        "name": transform.name,
        "params": dict(params),
        "inputs": [stream.info.to_dict() for stream in inputs],
        "outputs": len(outputs),
        "path": [entry for entry in sys.path if entry],
        "log_level": transform.logger.getEffectiveLevel(),
    }
    key = (target, isolation.memory_limit)
    while True:
        worker, reused = take(key, isolation.memory_limit)
        try:
            await _call(worker, reused, init, transform, inputs, outputs, isolation)
        except _StaleWorkerError:
            await worker.reap()
            continue  # it had taken nothing: the call goes to a fresh worker
        except BaseException:
            await worker.reap()
            raise
        give_back(key, worker)
        return


async def _call(
    worker: Worker,
    reused: bool,
    init: Mapping[str, Any],
    transform: Transform,
    inputs: Sequence[InputStream],
    outputs: Sequence[OutputStream],
    isolation: Isolation,
) -> None:
    channel = _HostChannel(worker.read_fd, worker.write_fd)
    failure: BaseException | None = None
    gone = False
    async with anyio.create_task_group() as group:
        group.start_soon(worker.keep_stderr)
        try:
            await channel.send(Kind.INIT, 0, encode(init))
            await _serve(channel, worker, transform, inputs, outputs, isolation, group)
        except (_WorkerGoneError, BrokenPipeError, ConnectionResetError):
            gone = True
        except Exception as exc:  # raised below, outside the task group, as it is
            failure = exc
        group.cancel_scope.cancel()
    # The helper tasks have ended: the worker's pipes and region may be closed now.
    if gone:
        failure = _StaleWorkerError() if reused and not channel.heard else await _why_gone(worker)
    if failure is not None:
        raise failure


async def _why_gone(worker: Worker) -> ChildProcessError:
    """Wait for a worker that closed its pipe; say how it ended and what it printed last."""
    await worker.reap(kill=False)
    last = worker.last_words()
    detail = f"; its last words: {last}" if last else ""
    return ChildProcessError(f"its worker process {worker.exit_reason()}{detail}")


async def _serve(
    channel: _HostChannel,
    worker: Worker,
    transform: Transform,
    inputs: Sequence[InputStream],
    outputs: Sequence[OutputStream],
    isolation: Isolation,
    group: Any,
) -> None:
    requests_send, requests = anyio.create_memory_object_stream[tuple[int, int]](len(inputs) + 1)
    free_slots = list(range(IN_SLOTS))
    slot_freed = anyio.Event()
    logger = transform.logger
    region = worker.view

    async def feed() -> None:
        nonlocal slot_freed
        async with requests:
            async for index, size in requests:
                while not free_slots:
                    slot_freed = anyio.Event()
                    await slot_freed.wait()
                slot = free_slots.pop()
                target = region[slot_range(slot, size)]
                try:
                    # The input's bytes go straight into the slot the worker copies them from.
                    count = await inputs[index].readinto(target)
                except Exception as exc:
                    free_slots.append(slot)
                    failure = {"type": type(exc).__name__, "message": str(exc)[:1000]}
                    frame: tuple[int, bytes] = (Kind.INPUT_FAILED, encode(failure))
                else:
                    frame = (Kind.DATA, SLOT.pack(slot, count))
                try:
                    await channel.send(frame[0], index, frame[1])
                except OSError:
                    return  # the worker is gone; the reader finds out how

    group.start_soon(feed)
    async with requests_send:
        while True:
            with anyio.move_on_after(isolation.timeout) as waited:
                received = await channel.receive()
            if waited.cancelled_caught:
                raise TimeoutError(
                    f"its worker process sent nothing for {isolation.timeout:g} s and was killed"
                )
            if received is None:
                raise _WorkerGoneError
            kind, index, payload = received
            if kind == Kind.READ:
                if index >= len(inputs):
                    raise ValueError(f"the worker asked for input {index}, which does not exist")
                await requests_send.send((index, min(int.from_bytes(payload, "big"), CHUNK)))
            elif kind == Kind.TAKEN:
                if not 0 <= index < IN_SLOTS or index in free_slots:
                    raise ValueError(f"the worker handed back a bad slot {index}")
                free_slots.append(index)
                slot_freed.set()
            elif kind == Kind.WRITE:
                slot, size = SLOT.unpack(payload)
                if not IN_SLOTS <= slot < IN_SLOTS + OUT_SLOTS or size > CHUNK:
                    raise ValueError(f"the worker named a bad slot {slot} ({size} bytes)")
                data = bytes(region[slot_range(slot, size)])
                await channel.send(Kind.RELEASE, slot)  # free before the output may wait
                await _output(outputs, index)._accept(data)
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
                raise ValueError(f"the worker sent an unknown frame kind {kind}")


def _output(outputs: Sequence[OutputStream], index: int) -> OutputStream:
    if index >= len(outputs):
        raise ValueError(f"the worker wrote to output {index}, which does not exist")
    return outputs[index]
