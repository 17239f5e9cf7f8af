"""The stores transforms are tested over: memory and fs on asyncio and trio, S3 on asyncio."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio.to_thread
import pytest

from asyncstore.memory import MemoryModule
from asyncstore.module import StorageModule

SETTINGS = [
    pytest.param(("memory", "asyncio"), id="memory-asyncio"),
    pytest.param(("memory", "trio"), id="memory-trio"),
    pytest.param(("fs", "asyncio"), id="fs-asyncio"),
    pytest.param(("fs", "trio"), id="fs-trio"),
    pytest.param(("s3", "asyncio"), id="s3-asyncio"),  # aiobotocore runs on asyncio only
]


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
        from asyncstore_s3 import S3Module

        module = S3Module(**request.getfixturevalue("module_options"))
    async with module:
        yield module


async def leftovers(store: StorageModule, request: pytest.FixtureRequest) -> list[str]:
    """What an interrupted write left behind: temporary files, multipart uploads."""
    if store.name == "fs":
        root = Path(store.root)  # type: ignore[attr-defined]
        files = await anyio.to_thread.run_sync(lambda: [p for p in root.rglob("*") if p.is_file()])
        return sorted(str(p.relative_to(root)) for p in files)
    if store.name == "s3":
        client = request.getfixturevalue("boto3_client")
        bucket = request.getfixturevalue("bucket")
        uploads = client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
        return [upload["Key"] for upload in uploads]
    return []
