"""Writing objects: one PUT when the bytes fit in a part, else a bounded multipart upload."""

from __future__ import annotations

import base64
import hashlib
import zlib
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio

from asyncstore.errors import StorageError, UnsupportedError
from asyncstore.streams import iter_source, source_length
from asyncstore_s3._client import S3Client
from asyncstore_s3._config import MAX_PART_SIZE, MAX_PARTS, MiB, S3Options
from asyncstore_s3._errors import map_condition_errors, map_s3_errors

__all__ = [
    "Target",
    "abort_upload",
    "checksum_params",
    "completed_params",
    "create_upload",
    "part_size_for",
    "write_conditions",
    "write_object",
]

_GROWTH_STEP = 1000
"""Unknown-length uploads double their part size every this many parts."""
_LARGE_BODY = 64 << 10
"""Bodies larger than this are sent as a `PartBody`."""
_SEND_CHUNK = 1 << 20
"""The slices a `PartBody` is handed to aiohttp in."""


@dataclass(frozen=True)
class Target:
    """Where and how one object is written."""

    client: S3Client
    """The client to send requests with."""
    options: S3Options
    """The store's options (bucket, encryption, part size, checksum)."""
    key: str
    """The full S3 key (prefix included)."""
    handle: str
    """The handle named in errors."""
    store: str
    """The store named in errors."""
    headers: dict[str, Any] = field(default_factory=dict)
    """ContentType and Metadata parameters."""
    conditions: dict[str, Any] = field(default_factory=dict)
    """``IfNoneMatch`` or ``IfMatch``: the condition of the request that publishes the object."""
    conditional_parts: bool = True
    """Whether the engine decides ``IfMatch`` on CompleteMultipartUpload too."""

    def errors(self) -> Any:
        """Return the error-mapping context manager for this object."""
        return map_s3_errors(store=self.store, handle=self.handle, bucket=self.options.bucket)

    @contextmanager
    def publishing(self) -> Iterator[None]:
        """Map the errors of the request that publishes the object, its condition's included."""
        with map_condition_errors(self.conditions), self.errors():
            yield


def write_conditions(overwrite: bool, if_match: str | None) -> dict[str, Any]:
    """Return the S3 parameters of a write's conditions (already checked)."""
    if not overwrite:
        return {"IfNoneMatch": "*"}
    if if_match is not None:
        return {"IfMatch": if_match}
    return {}


def checksum_params(data: bytes | memoryview, algorithm: str) -> dict[str, str]:
    """Return the integrity parameters of a PutObject/UploadPart carrying ``data``."""
    if algorithm == "crc32":
        value = zlib.crc32(data).to_bytes(4, "big")
        # Naming the algorithm too, as AWS's SDKs do, makes every server keep the checksum
        # for reads to verify (moto's, for one, keeps it only then); botocore computes none
        # of its own when the value is given.
        return {"ChecksumAlgorithm": "CRC32", "ChecksumCRC32": base64.b64encode(value).decode()}
    if algorithm == "md5":
        digest = hashlib.md5(data, usedforsecurity=False).digest()
        return {"ContentMD5": base64.b64encode(digest).decode()}
    return {}


def part_size_for(base: int, length: int | None, number: int) -> int:
    """Return the size of part ``number`` (1-based) of an upload of ``length`` bytes.

    A known length gets one part size large enough for 10,000 parts. An unknown length starts
    at ``base`` and doubles every 1,000 parts (from at least 8 MiB), so 10,000 parts hold
    more than S3's 5 TiB limit while small streams keep small parts.
    """
    if length is not None:
        needed = -(-length // MAX_PARTS)
        needed = -(-needed // MiB) * MiB
        return min(MAX_PART_SIZE, max(base, needed))
    tier = (number - 1) // _GROWTH_STEP
    if tier == 0:
        return base
    return min(MAX_PART_SIZE, max(base, 8 * MiB) << tier)


class _PartReader:
    """Cuts a byte source into parts, copying each byte once."""

    def __init__(self, chunks: AsyncIterator[bytes | memoryview]) -> None:
        self._chunks = chunks
        self._carry: memoryview | None = None
        self.exhausted = False

    async def _next(self) -> memoryview | None:
        try:
            chunk = await self._chunks.__anext__()
        except StopAsyncIteration:
            self.exhausted = True
            return None
        if isinstance(chunk, bytes) or chunk.readonly:
            return memoryview(chunk)
        # A writable buffer may be reused by the source once we ask for the next chunk.
        return memoryview(bytes(chunk))

    async def read(self, size: int) -> bytes:
        """Return the next ``size`` bytes (fewer at the end of the source)."""
        pieces: list[memoryview] = []
        filled = 0
        while filled < size:
            chunk = self._carry
            self._carry = None
            if chunk is None:
                chunk = await self._next()
                if chunk is None:
                    break
            room = size - filled
            if len(chunk) > room:
                self._carry = chunk[room:]
                chunk = chunk[:room]
            pieces.append(chunk)
            filled += len(chunk)
        if not self.exhausted and self._carry is None:
            # Learn whether the source is done, so a source of exactly one part is one PUT.
            self._carry = await self._next()
        if len(pieces) == 1:
            whole = pieces[0].obj
            if isinstance(whole, bytes) and len(whole) == len(pieces[0]):
                return whole
        return b"".join(pieces)


class _ViewReader:
    """Cuts an immutable in-memory source into parts without copying it."""

    def __init__(self, view: memoryview) -> None:
        self._view = view
        self._pos = 0
        self.exhausted = not view.nbytes

    async def read(self, size: int) -> bytes | memoryview:
        """Return the next ``size`` bytes as a view of the source (or the source itself)."""
        whole = self._view.obj
        if self._pos == 0 and size >= len(self._view) and isinstance(whole, bytes):
            if len(whole) == len(self._view):
                self._pos = len(self._view)
                self.exhausted = True
                return whole
        part = self._view[self._pos : self._pos + size]
        self._pos += len(part)
        self.exhausted = self._pos >= len(self._view)
        return part


class PartBody:
    """The bytes of one request body, shaped for botocore and aiohttp without copies.

    botocore sees a seekable file (its length, the SHA-256 it signs over plain HTTP, a rewind
    before a retry), reading memoryview slices of the bytes; aiohttp sees an async iterable
    and sends 1 MiB slices. (Bytes would be copied into a BytesIO and sent 64 KiB at a time.)
    """

    def __init__(self, data: bytes | memoryview) -> None:
        self._view = memoryview(data)
        self._pos = 0

    def __len__(self) -> int:
        return len(self._view) - self._pos

    def read(self, size: int = -1) -> memoryview:
        """Return up to ``size`` bytes from the position (a view, not a copy)."""
        end = len(self._view) if size is None or size < 0 else self._pos + size
        chunk = self._view[self._pos : end]
        self._pos += len(chunk)
        return chunk

    def seek(self, offset: int, whence: int = 0) -> int:
        """Move the position as a file would."""
        base = (0, self._pos, len(self._view))[whence]
        self._pos = max(0, min(len(self._view), base + offset))
        return self._pos

    def tell(self) -> int:
        """Return the position."""
        return self._pos

    async def __aiter__(self) -> AsyncIterator[memoryview]:
        start = self._pos
        for index in range(start, len(self._view), _SEND_CHUNK):
            yield self._view[index : index + _SEND_CHUNK]


def _body(data: bytes | memoryview) -> bytes | PartBody:
    if len(data) > _LARGE_BODY:
        return PartBody(data)
    return data if isinstance(data, bytes) else data.tobytes()


async def write_object(target: Target, source: object) -> str | None:
    """Store ``source`` under ``target.key``: one PUT if it fits in a part, else multipart.

    The condition, if any, goes with the request that publishes the object (the PUT, or the
    CompleteMultipartUpload), so the server decides it atomically.

    Returns:
        The new object's ETag.

    Raises:
        AlreadyExistsError: If ``IfNoneMatch`` is a condition and an object exists.
        PreconditionFailedError: If ``IfMatch`` names another version (or no object exists).
        StorageError: A subclass for S3 failures; nothing is stored and any multipart upload
            is aborted. Exceptions of the source propagate unchanged.
    """
    length = source_length(source)
    options = target.options
    first_size = part_size_for(options.part_size, length, 1)
    reader: _PartReader | _ViewReader
    if isinstance(source, bytes) or (
        isinstance(source, memoryview) and source.readonly and source.c_contiguous
    ):
        # Immutable bytes in memory: parts are views of them, never copies.
        reader = _ViewReader(memoryview(source).cast("B"))
    else:
        reader = _PartReader(iter_source(source))
    first = await reader.read(first_size)
    if reader.exhausted:
        return await _put_object(target, first)
    return await _multipart(target, reader, first, length)


async def _put_object(target: Target, data: bytes | memoryview) -> str | None:
    options = target.options
    params: dict[str, Any] = {
        "Bucket": options.bucket,
        "Key": target.key,
        "Body": _body(data),
        **target.headers,
        **options.write_params(),
        **checksum_params(data, options.checksum),
        **target.conditions,
    }
    with target.publishing():
        response = await target.client.put_object(**params)
    return response.get("ETag")


@dataclass
class _Upload:
    """The state shared by the tasks of one multipart upload."""

    upload_id: str
    parts: dict[int, dict[str, Any]] = field(default_factory=dict)
    failure: BaseException | None = None


async def _multipart(
    target: Target, reader: _PartReader | _ViewReader, first: bytes | memoryview, length: int | None
) -> str | None:
    options = target.options
    if "IfMatch" in target.conditions and not target.conditional_parts:
        raise UnsupportedError(
            "this S3 engine does not decide if_match on multipart uploads: a compare-and-swap "
            f"is limited to objects of one part (part_size={options.part_size})",
            store=target.store,
            handle=target.handle,
        )
    client = target.client
    create: dict[str, Any] = {
        "Bucket": options.bucket,
        "Key": target.key,
        **target.headers,
        **options.write_params(),
    }
    if options.checksum == "crc32":
        # A CRC32 of the whole object (S3 combines the parts' CRCs), which whole reads verify:
        # S3's default for parts, a checksum of the parts' checksums, no reader can check.
        create["ChecksumAlgorithm"] = "CRC32"
        create["ChecksumType"] = "FULL_OBJECT"
    upload = _Upload(await create_upload(target, create))
    try:
        await _send_parts(target, upload, reader, first, length)
        parts = [upload.parts[number] for number in sorted(upload.parts)]
        with target.publishing():
            response = await client.complete_multipart_upload(
                Bucket=options.bucket,
                Key=target.key,
                UploadId=upload.upload_id,
                **completed_params(parts),
                **options.sse_customer_params(),
                **target.conditions,
            )
        return response.get("ETag")
    except BaseException:
        # Also on cancellation: no orphaned parts may stay behind, so the abort is shielded.
        with anyio.CancelScope(shield=True):
            await abort_upload(client, options.bucket, target.key, upload.upload_id)
        raise


async def create_upload(target: Target, params: dict[str, Any]) -> str:
    """Start a multipart upload and return its id; cancelled meanwhile, abort it first.

    A request cancelled in flight may still create the upload on the server, and only the
    response names it: so the request runs to its end in a shielded task (shielded from
    anyio's cancellation, and out of reach of ``Task.cancel()`` on the caller, which is how
    asyncio delivers Ctrl-C), and an upload it created is aborted before the cancellation
    propagates.

    Raises:
        StorageError: A subclass for S3 failures.
    """
    outcome: list[Any] = []

    async def create() -> None:
        with anyio.CancelScope(shield=True):
            try:
                with target.errors():
                    response = await target.client.create_multipart_upload(**params)
                outcome.append(str(response["UploadId"]))
            except Exception as exc:  # kept, or the task group would wrap it in a group
                outcome.append(exc)

    try:
        async with anyio.create_task_group() as group:
            group.start_soon(create)
    except BaseException:
        if outcome and isinstance(outcome[0], str):
            with anyio.CancelScope(shield=True):
                await abort_upload(target.client, target.options.bucket, target.key, outcome[0])
        raise
    if isinstance(outcome[0], Exception):
        raise outcome[0]
    return str(outcome[0])


def completed_params(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """Return the ``MultipartUpload`` parameter of CompleteMultipartUpload."""
    return {"MultipartUpload": {"Parts": parts}}


async def abort_upload(client: S3Client, bucket: str, key: str, upload_id: str) -> None:
    """Abort a multipart upload, ignoring failures (the stale-upload sweep is the backstop)."""
    try:
        await client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
    except Exception:
        pass


async def _send_parts(
    target: Target,
    upload: _Upload,
    reader: _PartReader | _ViewReader,
    first: bytes | memoryview,
    length: int | None,
) -> None:
    options = target.options
    # One slot per part held in memory, the one being filled included.
    limiter = anyio.Semaphore(options.upload_concurrency)
    await limiter.acquire()
    async with anyio.create_task_group() as group:

        async def send(number: int, data: bytes | memoryview) -> None:
            try:
                params: dict[str, Any] = {
                    "Bucket": options.bucket,
                    "Key": target.key,
                    "UploadId": upload.upload_id,
                    "PartNumber": number,
                    "Body": _body(data),
                    **options.sse_customer_params(),
                    **checksum_params(data, options.checksum),
                }
                with target.errors():
                    response = await target.client.upload_part(**params)
                part = {"PartNumber": number, "ETag": response["ETag"]}
                if "ChecksumCRC32" in params:
                    part["ChecksumCRC32"] = params["ChecksumCRC32"]
                upload.parts[number] = part
            except Exception as exc:
                if upload.failure is None:
                    upload.failure = exc
                group.cancel_scope.cancel()
            finally:
                limiter.release()

        try:
            number, data = 1, first
            while True:
                group.start_soon(send, number, data)
                if reader.exhausted:
                    break
                number += 1
                if number > MAX_PARTS:
                    raise StorageError(
                        f"the object needs more than {MAX_PARTS} parts",
                        store=target.store,
                        handle=target.handle,
                    )
                await limiter.acquire()
                data = await reader.read(part_size_for(options.part_size, length, number))
                if not data:
                    limiter.release()
                    break
        except BaseException as exc:
            # Raised inside the task group it would come out wrapped in an exception group;
            # we keep it and raise it unwrapped below.
            if upload.failure is None:
                upload.failure = exc
            group.cancel_scope.cancel()
    if upload.failure is not None:
        raise upload.failure
