"""Server-side copies: CopyObject, or UploadPartCopy in parallel above S3's 5 GiB limit."""

from __future__ import annotations

from typing import Any

import anyio
import anyio.abc

from asyncstore.info import ObjectInfo
from asyncstore_s3._config import MAX_PART_SIZE
from asyncstore_s3._metadata import encode_metadata, stored_content_type
from asyncstore_s3._read import range_header
from asyncstore_s3._upload import (
    Target,
    abort_upload,
    completed_params,
    create_upload,
    part_size_for,
)

__all__ = ["copy_object"]


async def copy_object(
    target: Target, source_key: str, source: ObjectInfo, *, limit: int = MAX_PART_SIZE
) -> str | None:
    """Copy the object at ``source_key`` (described by ``source``) to ``target.key``.

    The bytes never leave the server. Content type and metadata are copied with them. The
    target's condition goes with the CopyObject (or the CompleteMultipartUpload).

    Returns:
        The copy's ETag.

    Args:
        target: Where the copy goes.
        source_key: The full S3 key of the source.
        source: The source's description (its size picks the method).
        limit: The largest object copied with one CopyObject.
    """
    options = target.options
    copy_source: dict[str, Any] = {"CopySource": {"Bucket": options.bucket, "Key": source_key}}
    if source.size <= limit:
        # The copy gets a full-object checksum of its own, which whole reads verify: a source
        # uploaded in parts only has a checksum of its parts' checksums.
        checksum: dict[str, Any] = (
            {"ChecksumAlgorithm": "CRC32"} if options.checksum == "crc32" else {}
        )
        with target.publishing():
            copied = await target.client.copy_object(
                Bucket=options.bucket,
                Key=target.key,
                MetadataDirective="COPY",
                **checksum,
                **copy_source,
                **options.write_params(),
                **options.sse_customer_params(source=True),
                **target.conditions,
            )
        return copied.get("CopyObjectResult", {}).get("ETag")
    create: dict[str, Any] = {
        "Bucket": options.bucket,
        "Key": target.key,
        "ContentType": stored_content_type(source.content_type),
        "Metadata": encode_metadata(source.metadata),
        **options.write_params(),
    }
    if options.checksum == "crc32":
        create.update(ChecksumAlgorithm="CRC32", ChecksumType="FULL_OBJECT")  # as for a put
    upload_id = await create_upload(target, create)
    part_size = part_size_for(options.part_size, source.size, 1)
    ranges = [
        (start, min(start + part_size, source.size)) for start in range(0, source.size, part_size)
    ]
    parts: dict[int, dict[str, Any]] = {}
    failures: list[Exception] = []
    limiter = anyio.Semaphore(options.upload_concurrency)
    # The source must not change between parts.
    condition: dict[str, Any] = {"CopySourceIfMatch": source.etag} if source.etag else {}

    async def copy_part(number: int, start: int, end: int, group: anyio.abc.TaskGroup) -> None:
        async with limiter:
            try:
                with target.errors():
                    result = await target.client.upload_part_copy(
                        Bucket=options.bucket,
                        Key=target.key,
                        UploadId=upload_id,
                        PartNumber=number,
                        CopySourceRange=range_header(start, end),
                        **copy_source,
                        **condition,
                        **options.sse_customer_params(),
                        **options.sse_customer_params(source=True),
                    )
            except Exception as exc:
                # Kept rather than raised, or the task group would wrap it in a group.
                failures.append(exc)
                group.cancel_scope.cancel()
                return
            copied = result["CopyPartResult"]
            parts[number] = {"PartNumber": number, "ETag": copied["ETag"]}
            if "ChecksumCRC32" in copied:
                parts[number]["ChecksumCRC32"] = copied["ChecksumCRC32"]

    try:
        async with anyio.create_task_group() as group:
            for number, (start, end) in enumerate(ranges, 1):
                group.start_soon(copy_part, number, start, end, group)
        if failures:
            raise failures[0]
        with target.publishing():
            completed = await target.client.complete_multipart_upload(
                Bucket=options.bucket,
                Key=target.key,
                UploadId=upload_id,
                **completed_params([parts[n] for n in sorted(parts)]),
                **options.sse_customer_params(),
                **target.conditions,
            )
        return completed.get("ETag")
    except BaseException:
        with anyio.CancelScope(shield=True):
            await abort_upload(target.client, options.bucket, target.key, upload_id)
        raise
