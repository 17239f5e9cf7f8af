"""`run_transform`: run a transform on stored objects, into stores or a caller's stream."""

from __future__ import annotations

import builtins
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import anyio

from asyncstore.keys import validate_key
from asyncstore.module import StorageModule
from asyncstore.transforms._contract import Transform
from asyncstore.transforms._execute import (
    DEFAULT_MEMORY_LIMIT,
    DEFAULT_TIMEOUT,
    Isolation,
    check_call,
    execute,
    resolve,
)
from asyncstore.transforms._outputs import Consumer, StoreOutput, WritableOutput
from asyncstore.transforms._streams import InputStream, OutputStream

__all__ = ["OutputResult", "TransformResult", "run_outputs", "run_transform"]

_EMPTY: Mapping[str, str] = MappingProxyType({})


@dataclass(frozen=True)
class OutputResult:
    """What a transform wrote to one output."""

    size: int
    """How many bytes it wrote."""
    metadata: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    """The metadata it set."""
    content_type: str | None = None
    """The content type it set."""
    store: str | None = None
    """The name of the store written to, or None for a stream output."""
    handle: str | None = None
    """The handle the store returned, or None for a stream output."""
    etag: str | None = None
    """The stored object's etag, where the store reported it."""


@dataclass(frozen=True)
class TransformResult:
    """What one run of a transform did."""

    transform: str
    """The transform's name."""
    outputs: tuple[OutputResult, ...]
    """One result per output, in order."""
    bytes_read: int
    """How many input bytes the transform read."""


def _store_consumer(store: StorageModule, key: str) -> Any:
    async def consume(
        chunks: AsyncIterator[bytes | bytearray],
        metadata: Mapping[str, str],
        content_type: str | None,
    ) -> str:
        return await store.put(chunks, key=key, metadata=metadata, content_type=content_type)

    return consume


def _normalize_outputs(outputs: object) -> builtins.list[object]:
    if isinstance(outputs, tuple) and len(outputs) == 2 and isinstance(outputs[0], StorageModule):
        return [outputs]
    if isinstance(outputs, (builtins.list, tuple)):
        return builtins.list(outputs)
    return [outputs]  # one writable stream


async def run_transform(
    transform: str | Transform | type[Transform],
    *,
    inputs: Sequence[tuple[StorageModule, str] | InputStream],
    outputs: Sequence[tuple[StorageModule, str] | object] | object,
    params: Mapping[str, str] | None = None,
    isolation: str = "inline",
    timeout: float = DEFAULT_TIMEOUT,  # noqa: ASYNC109 - the worker's silence limit
    memory_limit: int | None = DEFAULT_MEMORY_LIMIT,
    progress: Callable[[int], None] | None = None,
) -> TransformResult:
    """Run a transform on stored objects and store (or stream) what it writes.

    Each ``(store, key)`` output is one atomic write: it is stored when the transform
    succeeds, and nothing is stored at any output when it fails or the caller is cancelled.
    A stream output receives the bytes as they come.

    Args:
        transform: An installed transform's name, a `Transform` instance or subclass.
        inputs: ``(store, handle)`` pairs, in the order the transform expects them (or
            `InputStream` objects, which the run closes).
        outputs: ``(store, key)`` pairs; or writable streams: objects with an async
            ``write``/``send`` (an anyio ``ByteSendStream``) or binary files (written in a
            worker thread); or one such stream alone.
        params: The transform's parameters, str to str.
        isolation: ``"inline"`` (in this process) or ``"process"`` (a worker process with a
            timeout and a memory limit).
        timeout: Process isolation: seconds the worker may stay silent before it is killed.
        memory_limit: Process isolation: the worker's address-space limit in bytes.
        progress: Called with the number of input bytes read, each time some are read.

    Returns:
        What was written to each output.

    Raises:
        TransformError: If the transform failed, refused its parameters or the number of
            inputs or outputs, or its worker crashed, hung or ran out of memory.
        NotFoundError: If an input does not exist.
        InvalidKeyError: If an output key breaks the key rules (before any I/O).
        PluginError: If no transform has the name, or it fails to load.
        StorageError: An input's or an output store's own error, unchanged.
    """
    instance = resolve(transform)
    limits = Isolation(isolation, timeout, memory_limit)
    targets = _normalize_outputs(outputs)
    given = check_call(instance, len(inputs), len(targets), params)
    for index, target in enumerate(targets):
        if isinstance(target, tuple):
            store, key = target
            validate_key(key, store=store.name)
        else:  # refuse what cannot be written to before anything is read
            targets[index] = WritableOutput(target, transform=instance.name)
    streams: builtins.list[InputStream] = []
    try:
        for source in inputs:
            if isinstance(source, InputStream):
                streams.append(source)
                continue
            store, handle = source
            opened = await store.get_read_stream(handle)
            streams.append(InputStream.from_read_stream(opened, store=store.name, on_read=progress))
        results = await _run(instance, streams, targets, given, limits)
    finally:
        with anyio.CancelScope(shield=True):
            for stream in streams:
                await stream.aclose()
    return TransformResult(instance.name, results, sum(s.tell() for s in streams))


async def run_outputs(
    transform: Transform,
    inputs: Sequence[InputStream],
    targets: Sequence[tuple[Consumer, str | None] | OutputStream],
    params: Mapping[str, str],
    limits: Isolation,
) -> builtins.list[OutputStream]:
    """Run one call whose outputs are store writes (``(consumer, key)``) or given outputs.

    Each store write starts when its output's metadata is final and, if the call fails, is
    failed rather than cancelled, so it undoes itself as for any failing source.

    Raises:
        TransformError: If the transform failed.
        Exception: An input's or a store write's own error, unchanged.
    """
    error: Exception | None = None
    outputs: builtins.list[OutputStream] = []
    async with anyio.create_task_group() as group:
        for target in targets:
            if isinstance(target, tuple):
                consume, key = target
                outputs.append(StoreOutput(consume, group, transform=transform.name, key=key))
            else:
                outputs.append(target)
        try:
            await execute(transform, inputs, outputs, params, isolation=limits)
        except Exception as exc:
            error = exc
    if error is not None:
        raise error
    for output in outputs:
        failure = getattr(output, "failure", None)
        if failure is not None:
            raise failure
    return outputs


async def _run(
    transform: Transform,
    inputs: Sequence[InputStream],
    targets: Sequence[object],
    params: Mapping[str, str],
    limits: Isolation,
) -> tuple[OutputResult, ...]:
    given: builtins.list[tuple[Consumer, str | None] | OutputStream] = []
    for target in targets:
        if isinstance(target, tuple):
            store, key = target
            given.append((_store_consumer(store, key), key))
        else:
            assert isinstance(target, WritableOutput)
            given.append(target)
    outputs = await run_outputs(transform, inputs, given, params, limits)
    results = []
    for target, output in zip(targets, outputs, strict=True):
        store_name = handle = etag = None
        if isinstance(target, tuple) and isinstance(output, StoreOutput):
            store_name = target[0].name
            handle = None if output.handle is None else str(output.handle)
            etag = getattr(output.handle, "etag", None)
        results.append(
            OutputResult(
                output.bytes_written,
                output.metadata,
                output.content_type,
                store_name,
                handle,
                etag,
            )
        )
    return tuple(results)
