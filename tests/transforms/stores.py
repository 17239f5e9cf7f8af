"""The stores transforms are tested over: memory and fs on asyncio and trio, S3 on asyncio."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio.to_thread
import pytest

from asyncstore.memory import MemoryModule
from asyncstore.module import StorageModule

SETTINGS = [
    pytest.param(("memory", "asyncio"), id="memory-asyncio"),
    pytest.param(("memory", "trio"), id="memory-trio"),
    pytest.param(("fs", "asyncio"), id="fs-asyncio"),
    pytest.param(("fs", "trio"), id="fs-trio"),
    # aiobotocore runs on asyncio only
    pytest.param(("s3-moto", "asyncio"), id="s3-moto-asyncio"),
    pytest.param(("s3-seaweedfs", "asyncio"), id="s3-seaweedfs-asyncio"),
]

_BUCKETS: dict[int, tuple[Any, str]] = {}
"""The boto3 client and bucket of each open S3 store, by id of the store."""


OVER_STORES = pytest.mark.parametrize("setting", SETTINGS, indirect=True)
"""Runs a test once per setting; its module defines ``anyio_backend`` from ``setting``."""


@asynccontextmanager
async def open_store_of(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[StorageModule]:
    """Open a fresh, empty store of ``kind``."""
    module: StorageModule
    if kind == "memory":
        module = MemoryModule()
    elif kind == "fs":
        from asyncstore_fs import FileSystemModule

        module = FileSystemModule(root=str(tmp_path / "store"), fsync=False)
    else:
        async with _s3_store(kind.split("-", 1)[1], request) as module:
            yield module
        return
    async with module:
        yield module


@asynccontextmanager
async def _s3_store(server: str, request: pytest.FixtureRequest) -> AsyncIterator[StorageModule]:
    import boto3

    from asyncstore_s3 import S3Module
    from tests.s3server import Endpoint, scratch_bucket

    endpoint: Endpoint = request.getfixturevalue(f"{server}_endpoint")
    client = boto3.client(
        "s3",
        endpoint_url=endpoint.url,
        aws_access_key_id=endpoint.access_key_id,
        aws_secret_access_key=endpoint.secret_access_key,
        region_name=endpoint.region,
    )
    with scratch_bucket(client, endpoint) as bucket:
        async with S3Module(bucket=bucket, **endpoint.module_options()) as module:
            _BUCKETS[id(module)] = (client, bucket)
            try:
                yield module
            finally:
                del _BUCKETS[id(module)]


async def leftovers(store: StorageModule, request: pytest.FixtureRequest) -> list[str]:
    """What an interrupted write left behind: temporary files, multipart uploads."""
    if store.name == "fs":
        root = Path(store.root)  # type: ignore[attr-defined]
        files = await anyio.to_thread.run_sync(lambda: [p for p in root.rglob("*") if p.is_file()])
        return sorted(str(p.relative_to(root)) for p in files)
    if store.name == "s3":
        client, bucket = _BUCKETS[id(store)]
        uploads = client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
        return [upload["Key"] for upload in uploads]
    return []
