"""Helpers shared by the S3 tests."""

from __future__ import annotations

import base64
import hashlib
import zlib
from collections import Counter
from typing import Any

from asyncstore_s3 import S3Module

MiB = 1 << 20


def pattern(size: int, seed: int = 0) -> bytes:
    """``size`` bytes that differ at every offset, so misplaced bytes show."""
    block = hashlib.sha256(seed.to_bytes(8, "big")).digest() * 2048
    return (block * (size // len(block) + 1))[:size]


def crc32_b64(data: bytes) -> str:
    """The CRC32 of ``data`` as S3 gives it: big-endian, base64."""
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()


async def count_requests(module: S3Module) -> Counter[str]:
    """Count the requests the module's client sends from now on, by operation name."""
    counter: Counter[str] = Counter()

    def before_send(request: Any, **kwargs: Any) -> None:
        counter[request.context.get("operation_name", "?")] += 1

    def before_call(model: Any, params: Any, **kwargs: Any) -> None:
        params["context"]["operation_name"] = model.name

    async with module._pool.client() as client:
        client.meta.events.register("before-call.s3", before_call)
        client.meta.events.register("before-send.s3", before_send)
    return counter


def uploads_in_progress(boto3_client: Any, bucket: str) -> list[Any]:
    """The multipart uploads the server still holds for the bucket."""
    return list(boto3_client.list_multipart_uploads(Bucket=bucket).get("Uploads", []))
