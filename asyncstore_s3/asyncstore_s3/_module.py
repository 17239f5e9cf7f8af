"""`S3Module`: objects in an S3 bucket (AWS, MinIO, Ceph RGW, any S3-compatible service)."""

from __future__ import annotations

import builtins
import dataclasses
from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractContextManager
from functools import partial
from typing import TYPE_CHECKING, Any, ClassVar

from asyncstore import StorageModule, check_conditions
from asyncstore.errors import (
    AlreadyExistsError,
    ConfigError,
    InvalidKeyError,
    PreconditionFailedError,
)
from asyncstore.info import Handle, ObjectInfo
from asyncstore.keys import (
    MAX_KEY_BYTES,
    validate_content_type,
    validate_key,
    validate_metadata,
    validate_prefix,
)
from asyncstore.streams import ByteSource, ReadStream, check_range
from asyncstore_s3._client import ClientPool, S3Client
from asyncstore_s3._config import MAX_PART_SIZE, RECONFIGURABLE, S3Options, options_from_url
from asyncstore_s3._copy import copy_object
from asyncstore_s3._errors import map_condition_errors, map_s3_errors
from asyncstore_s3._metadata import encode_metadata, stored_content_type
from asyncstore_s3._read import ObjectRequests, info_from_response
from asyncstore_s3._stale import StaleUpload, abort_stale_uploads
from asyncstore_s3._upload import Target, write_conditions, write_object

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["S3Module"]

_PRESIGN_METHODS = {
    "GET": "get_object",
    "PUT": "put_object",
    "HEAD": "head_object",
    "DELETE": "delete_object",
}
_MAX_PRESIGN_SECONDS = 7 * 24 * 3600
_LIST_ORDER = {"aws": "lexicographic", "seaweedfs": "tree", "moto": "lexicographic"}
"""How each engine orders listings (the ``list_order`` capability)."""
_SERVER_SIDE_CONDITIONS = {"aws": True, "seaweedfs": True, "moto": False}
"""Whether the engine decides conditions on CopyObject and If-Match on CompleteMultipartUpload
(moto ignores both: a conditional copy goes through a conditional put there, and a
compare-and-swap larger than one part is refused)."""


class S3Module(StorageModule):
    """Stores objects in an S3 bucket, under an optional key prefix.

    The object under key ``a/b.txt`` is the S3 object ``<prefix>a/b.txt``, so other S3 tools
    read and write the same objects (content type and ``x-amz-meta-*`` metadata included).
    Objects that fit in one part are sent with one PUT; larger or unknown-length sources use
    a multipart upload with ``upload_concurrency`` parts in flight (memory is bounded by
    ``upload_concurrency`` times ``part_size``), aborted on any failure or cancellation, so a
    failed put stores nothing and leaves no parts behind. Each PUT and part carries a
    CRC32 (or MD5) checksum computed once while streaming, and whole-object reads are checked
    against the stored checksum. `get_read_stream` sends exactly one GET (no HEAD first);
    seeking issues a ranged GET. `list` pages through ListObjectsV2 and reports size, time
    and ETag but no content type or metadata (S3 lists none); keys that break asyncstore's key
    rules (written by other tools) are skipped. A HEAD on a missing bucket looks like a
    missing object, so `stat` raises `NotFoundError` there while other calls raise
    `ConfigError` naming the bucket.

    One aiobotocore client is created on ``async with`` or first use and closed by
    `aclose`; `reconfigure` swaps credentials without disturbing requests in flight.
    Credentials come from the options or from botocore's chain (environment variables,
    shared config ``profile``, instance role). Secrets never appear in repr, logs or errors.

    Args:
        bucket: The bucket holding the objects.
        prefix: A key prefix for every object (``/`` is appended when missing).
        region: The AWS region; None asks botocore (``us-east-1`` with an ``endpoint_url``).
        endpoint_url: The URL of an S3-compatible service (MinIO, Ceph RGW); None for AWS.
        addressing_style: Bucket addressing: ``auto``, ``path`` or ``virtual``.
        profile: A profile of the shared AWS config files to take credentials from.
        access_key_id: An explicit access key id (use ``${ENV}`` in config files).
        secret_access_key: The secret key for ``access_key_id``.
        session_token: A session token for temporary credentials.
        server_side_encryption: ``AES256`` (SSE-S3) or ``aws:kms`` (SSE-KMS); None for the
            bucket's default.
        sse_kms_key_id: The KMS key id for SSE-KMS.
        sse_customer_key: A base64 encoded 256-bit key for SSE-C (sent with every request).
        retry_mode: botocore's retry mode: ``standard``, ``adaptive`` or ``legacy``.
        max_attempts: How many times each request is tried before `TransientError`.
        connect_timeout: Seconds to wait for a connection.
        read_timeout: Seconds to wait for data on a connection.
        write_timeout: Seconds a write (PUT, part, multipart start and end, delete) waits for
            the server's first byte once its request is sent, before it is retried and, after
            ``max_attempts``, fails with `TransientError` naming this option.
        max_pool_connections: The most connections kept open to the endpoint.
        part_size: The multipart part size in bytes (at least 5 MiB); larger objects get
            larger parts so 10,000 parts always hold them.
        upload_concurrency: How many parts of one upload are sent at once.
        checksum: The upload integrity check: ``crc32``, ``md5`` or ``none``.
        sign_payload: Whether SigV4 also signs each body's SHA-256. By default only over
            plain HTTP or with ``checksum="none"``: over TLS the checksum S3 verifies protects
            the bytes at a fraction of the CPU. False also skips it over plain HTTP, saving
            about 0.6-1.1 s of client CPU per GiB and giving up tamper protection of bodies
            in transit (the checksum catches accidents, not an attacker who recomputes it).
        verify_tls: Whether TLS certificates are verified.
        ca_bundle: A CA bundle file for endpoints with a private certificate authority.
        engine: The S3 engine behind the endpoint, for the differences from AWS S3 that no
            request can hide: ``aws`` (AWS S3, and engines that behave like it),
            ``seaweedfs`` (lists in directory-tree order: the ``list_order`` capability is
            ``tree``) or ``moto`` (moto's server, which ignores conditions on CopyObject and
            If-Match on CompleteMultipartUpload: conditional copies stream through a
            conditional put, and a compare-and-swap of more than one part raises
            `UnsupportedError`). See docs/deploying-s3.md.
    """

    name = "s3"
    CAPABILITIES: ClassVar[Mapping[str, Any]] = {
        "max_object_size": 5 << 40,
        "cdmi_encryption": [],
        # Decided by the server: If-None-Match / If-Match on PutObject, CompleteMultipartUpload,
        # CopyObject, DeleteObject and GetObject (AWS, SeaweedFS and moto honour them).
        "conditional_create": True,
        "conditional_replace": True,
        "conditional_delete": True,
        "conditional_read": True,
    }

    def __init__(
        self,
        *,
        bucket: str,
        prefix: str = "",
        region: str | None = None,
        endpoint_url: str | None = None,
        addressing_style: str = "auto",
        profile: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        session_token: str | None = None,
        server_side_encryption: str | None = None,
        sse_kms_key_id: str | None = None,
        sse_customer_key: str | None = None,
        retry_mode: str = "standard",
        max_attempts: int = 5,
        connect_timeout: float = 10.0,
        read_timeout: float = 60.0,
        write_timeout: float = 30.0,
        max_pool_connections: int = 64,
        part_size: int = 8 << 20,
        upload_concurrency: int = 4,
        checksum: str = "crc32",
        sign_payload: bool | None = None,
        verify_tls: bool = True,
        ca_bundle: str | None = None,
        engine: str = "aws",
    ) -> None:
        self._options = S3Options(
            bucket=bucket,
            prefix=prefix,
            region=region,
            endpoint_url=endpoint_url,
            addressing_style=addressing_style,
            profile=profile,
            access_key_id=access_key_id,
            secret_access_key=secret_access_key,
            session_token=session_token,
            server_side_encryption=server_side_encryption,
            sse_kms_key_id=sse_kms_key_id,
            sse_customer_key=sse_customer_key,
            retry_mode=retry_mode,
            max_attempts=max_attempts,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            write_timeout=write_timeout,
            max_pool_connections=max_pool_connections,
            part_size=part_size,
            upload_concurrency=upload_concurrency,
            checksum=checksum,
            sign_payload=sign_payload,
            verify_tls=verify_tls,
            ca_bundle=ca_bundle,
            engine=engine,
        )
        self._pool = ClientPool(self._options)
        self._copy_limit = MAX_PART_SIZE

    @classmethod
    def options_from_url(cls, url: str) -> dict[str, Any]:
        """Turn ``s3://bucket/prefix?endpoint_url=…&region=…`` into constructor options.

        Raises:
            ConfigError: If the URL names no bucket.
        """
        return options_from_url(url)

    @property
    def options(self) -> S3Options:
        """The store's current options (secrets are left out of their repr)."""
        return self._options

    # ---- helpers ---------------------------------------------------------------------------

    def _check(self, handle: object) -> str:
        """Validate ``handle`` as a key, and the key with the prefix against S3's limit."""
        key = validate_key(handle, store=self.name)
        size = len(key.encode())
        limit = self._max_key_bytes()
        if size > limit:
            raise InvalidKeyError(
                f"key is {size} bytes long; the limit is {limit} "
                f"({MAX_KEY_BYTES} less the store's prefix {self._options.prefix!r})",
                store=self.name,
            )
        return key

    def _key(self, handle: str) -> str:
        return self._options.prefix + self._check(handle)

    def _max_key_bytes(self) -> int:
        return MAX_KEY_BYTES - len(self._options.prefix.encode())

    def _errors(self, handle: str | None) -> AbstractContextManager[None]:
        return map_s3_errors(store=self.name, handle=handle, bucket=self._options.bucket)

    def _target(
        self,
        client: S3Client,
        handle: str,
        headers: dict[str, Any],
        conditions: dict[str, Any] | None = None,
    ) -> Target:
        return Target(
            client=client,
            options=self._options,
            key=self._options.prefix + handle,
            handle=handle,
            store=self.name,
            headers=headers,
            conditions=conditions or {},
            conditional_parts=_SERVER_SIDE_CONDITIONS[self._options.engine],
        )

    def _object(self, handle: str) -> ObjectRequests:
        return ObjectRequests(
            bucket=self._options.bucket,
            key=self._options.prefix + handle,
            handle=handle,
            extra=self._options.sse_customer_params(),
            errors=partial(self._errors, handle),
        )

    # ---- writing ---------------------------------------------------------------------------

    async def assign(
        self,
        handle: str,
        source: ByteSource,
        *,
        metadata: Mapping[str, str] | None = None,
        content_type: str | None = None,
        overwrite: bool = True,
        if_match: str | None = None,
    ) -> str | None:
        """Store the bytes of ``source`` under ``handle`` (one PUT, or a multipart upload).

        A condition is sent with the request that publishes the object (the PutObject, or the
        CompleteMultipartUpload of a large one), so the server decides it. Returns the ETag.

        Raises:
            AlreadyExistsError: If ``overwrite`` is False and an object exists.
            PreconditionFailedError: If ``if_match`` is not the object's ETag (or none exists).
        """
        self._check(handle)
        check_conditions(overwrite, if_match, store=self.name)
        conditions = write_conditions(overwrite, if_match)
        headers: dict[str, Any] = {
            "Metadata": encode_metadata(validate_metadata(metadata, store=self.name)),
            "ContentType": stored_content_type(
                validate_content_type(content_type, store=self.name)
            ),
        }
        async with self._pool.client() as client:
            return await write_object(self._target(client, handle, headers, conditions), source)

    # ---- reading ---------------------------------------------------------------------------

    async def get_read_stream(
        self, handle: str, *, start: int = 0, end: int | None = None, if_match: str | None = None
    ) -> ReadStream:
        """Open a stream of ``[start, end)`` with one GET (ranged unless the whole object)."""
        check_range(start, end, store=self.name)
        self._check(handle)
        check_conditions(if_match=if_match, store=self.name)
        lease = await self._pool.acquire()
        try:
            return await self._object(handle).open_stream(lease, start, end, if_match=if_match)
        except BaseException:
            await lease.give_back()
            raise

    async def stat(self, handle: str) -> ObjectInfo:
        """Describe the object with one HEAD request."""
        self._check(handle)
        async with self._pool.client() as client:
            return await self._object(handle).head(client)

    async def list(self, prefix: str = "") -> AsyncIterator[ObjectInfo]:
        """Yield the objects whose keys start with ``prefix``, in key order (ListObjectsV2)."""
        validate_prefix(prefix, store=self.name)
        base = self._options.prefix
        async with self._pool.client() as client:
            paginator = client.get_paginator("list_objects_v2")
            pages = paginator.paginate(Bucket=self._options.bucket, Prefix=base + prefix)
            iterator = aiter(pages)
            while True:
                with self._errors(None):
                    try:
                        page = await anext(iterator)
                    except StopAsyncIteration:
                        return
                for item in page.get("Contents", []):
                    handle = item["Key"][len(base) :]
                    try:
                        validate_key(handle)
                    except ValueError:
                        continue  # written by another tool under a name we cannot address
                    yield ObjectInfo(
                        handle=handle,
                        size=item["Size"],
                        modified=info_from_response(handle, dict(item)).modified,
                        etag=item.get("ETag"),
                    )

    # ---- other operations ------------------------------------------------------------------

    async def delete(self, handle: str, *, if_match: str | None = None) -> None:
        """Delete the object; a missing one is not an error."""
        key = self._key(handle)
        check_conditions(if_match=if_match, store=self.name)
        condition: dict[str, Any] = {} if if_match is None else {"IfMatch": if_match}
        async with self._pool.client() as client:
            with map_condition_errors(condition), self._errors(handle):
                await client.delete_object(Bucket=self._options.bucket, Key=key, **condition)

    async def copy(
        self,
        handle: str,
        *,
        key: str | None = None,
        overwrite: bool = True,
        if_match: str | None = None,
    ) -> str:
        """Copy the object server-side (CopyObject; UploadPartCopy above 5 GiB)."""
        self._check(handle)
        check_conditions(overwrite, if_match, store=self.name)
        conditions = write_conditions(overwrite, if_match)
        target = self._check(key) if key is not None else await self.new_data()
        async with self._pool.client() as client:
            info = await self._object(handle).head(client)
            if target == handle:
                # S3 refuses to copy an object onto itself unchanged; it already is its copy.
                if not overwrite:
                    raise AlreadyExistsError(
                        "an object exists under this key", store=self.name, handle=target
                    )
                if if_match is not None and if_match != info.etag:
                    raise PreconditionFailedError(
                        "the object is not the version if_match names",
                        store=self.name,
                        handle=target,
                    )
                return Handle(target, info.etag)
            if conditions and not _SERVER_SIDE_CONDITIONS[self._options.engine]:
                return await super().copy(
                    handle, key=target, overwrite=overwrite, if_match=if_match
                )
            etag = await copy_object(
                self._target(client, target, {}, conditions),
                self._options.prefix + handle,
                info,
                limit=self._copy_limit,
            )
        return Handle(target, etag)

    async def presign(self, handle: str, *, method: str = "GET", expires: int = 3600) -> str:
        """Return a URL that lets anyone send ``method`` on the object for ``expires`` s.

        Args:
            handle: The object's handle.
            method: ``GET``, ``PUT``, ``HEAD`` or ``DELETE``.
            expires: Seconds of validity, at most 7 days.

        Raises:
            ValueError: If the method is not one of those or ``expires`` is out of range.
        """
        key = self._key(handle)
        operation = _PRESIGN_METHODS.get(method.upper())
        if operation is None:
            raise ValueError(f"method must be one of {', '.join(_PRESIGN_METHODS)}")
        if not 0 < expires <= _MAX_PRESIGN_SECONDS:
            raise ValueError(f"expires must be 1 to {_MAX_PRESIGN_SECONDS} seconds")
        async with self._pool.client() as client:
            with self._errors(handle):
                url: str = await client.generate_presigned_url(
                    operation,
                    Params={"Bucket": self._options.bucket, "Key": key},
                    ExpiresIn=expires,
                )
        return url

    async def statistics(self, *, count_objects: bool = False) -> dict[str, Any]:
        """Return statistics; capacity is unknown (S3 has no fixed size).

        Args:
            count_objects: Also count the objects and their bytes (a full listing: slow).
        """
        stats: dict[str, Any] = {
            "capacity": {"total": None, "used": None, "free": None},
            "bucket": self._options.bucket,
            "prefix": self._options.prefix,
        }
        if count_objects:
            objects = size = 0
            async for info in self.list():
                objects += 1
                size += info.size
            stats["objects"] = objects
            stats["bytes"] = size
        return stats

    def capabilities(self) -> dict[str, Any]:
        """Return the capabilities, with what this store's prefix, engine and encryption make them.

        ``max_key_bytes`` is S3's 1024-byte key limit less the prefix; ``list_order`` is
        ``lexicographic``, or ``tree`` on SeaweedFS (``a/b`` before ``a-b``: the directory
        ``a`` sorts by its name); ``cdmi_encryption`` names the server-side encryption asked for.
        """
        return {
            **self.class_capabilities(),
            "max_key_bytes": self._max_key_bytes(),
            "list_order": _LIST_ORDER[self._options.engine],
            "cdmi_encryption": self._options.encryption_names(),
        }

    async def reconfigure(self, **options: Any) -> None:
        """Swap credentials on the live store; requests in flight finish on the old ones.

        Args:
            **options: Any of ``access_key_id``, ``secret_access_key``, ``session_token`` and
                ``profile``.

        Raises:
            ConfigError: If another option is given or the values are inconsistent.
        """
        unknown = sorted(set(options) - set(RECONFIGURABLE))
        if unknown:
            raise ConfigError(
                f"cannot reconfigure {', '.join(unknown)}; accepted: {', '.join(RECONFIGURABLE)}",
                store=self.name,
            )
        updated = dataclasses.replace(self._options, **options)
        await self._pool.replace(updated)
        self._options = updated

    async def cleanup(self, *, older_than: float = 3600.0) -> dict[str, int]:
        """Abort stale multipart uploads; return ``{"uploads": n}``.

        The contract's cleanup call (see `abort_stale_uploads`, which also lists them).
        """
        return {"uploads": len(await self.abort_stale_uploads(older_than=older_than))}

    async def abort_stale_uploads(
        self, *, older_than: float = 24 * 3600, dry_run: bool = False
    ) -> builtins.list[StaleUpload]:
        """Abort multipart uploads under the store's prefix older than ``older_than`` seconds.

        A put that fails aborts its own upload; this sweeps up after processes that were
        killed mid-upload. Run it periodically (or use a bucket lifecycle rule).

        Args:
            older_than: The age in seconds above which an upload counts as abandoned.
            dry_run: Only report what would be aborted.

        Returns:
            The stale uploads, oldest first (keys include the store's prefix).
        """
        async with self._pool.client() as client:
            with self._errors(None):
                return await abort_stale_uploads(
                    client,
                    self._options.bucket,
                    self._options.prefix,
                    older_than=older_than,
                    dry_run=dry_run,
                )

    # ---- lifecycle -------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        lease = await self._pool.acquire()
        await lease.give_back()
        return self

    async def aclose(self) -> None:
        """Close the client and its connections; a later call opens a new one."""
        await self._pool.aclose()

    def __repr__(self) -> str:
        options = self._options
        endpoint = f" endpoint_url={options.endpoint_url!r}" if options.endpoint_url else ""
        return (
            f"<{type(self).__name__} name={self.name!r} bucket={options.bucket!r} "
            f"prefix={options.prefix!r}{endpoint}>"
        )
