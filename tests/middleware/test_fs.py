"""The middleware over the filesystem module."""

from __future__ import annotations

from pathlib import Path

import pytest

import asyncstore_fs as fs
from asyncstore import IntegrityError
from asyncstore.middleware.compress import CompressionModule
from asyncstore.middleware.dedup import DedupModule
from asyncstore.middleware.encrypt import HEADER_SIZE, EncryptionModule
from asyncstore.middleware.replicate import ReplicationModule
from asyncstore.testing import StorageModuleTests
from asyncstore_fs._layout import TEMP_TAG

from .helpers import new_key


class TestEncryptOverFileSystem(StorageModuleTests):
    list_page_objects = 1001

    @pytest.fixture
    async def module(self, tmp_path: Path):
        async with EncryptionModule(
            inner=fs.FileSystemModule(root=str(tmp_path / "store"), fsync=False), key=new_key()
        ) as module:
            yield module


@pytest.mark.anyio
async def test_tampering_with_bytes_on_disk_is_detected(tmp_path: Path) -> None:
    root = tmp_path / "store"
    async with EncryptionModule(
        inner=fs.FileSystemModule(root=str(root), fsync=False), key=new_key()
    ) as store:
        await store.put(b"secret " * 50_000, key="dir/file.bin")
        files = [p for p in root.rglob("*") if p.is_file() and p.stat().st_size > HEADER_SIZE]
        assert len(files) == 1, files
        raw = bytearray(files[0].read_bytes())
        assert b"secret" not in raw
        raw[HEADER_SIZE + 70_000] ^= 0x40
        files[0].write_bytes(bytes(raw))
        async with await store.get_read_stream("dir/file.bin") as stream:
            with pytest.raises(IntegrityError):
                await stream.read()


class TestCompressOverFileSystem(StorageModuleTests):
    list_page_objects = 0  # pagination is checked over memory, and by the fs suite

    @pytest.fixture
    async def module(self, tmp_path: Path):
        async with CompressionModule(
            inner=fs.FileSystemModule(root=str(tmp_path / "store"), fsync=False)
        ) as module:
            yield module


class TestDedupOverFileSystem(StorageModuleTests):
    list_page_objects = 0  # pagination is checked over memory, and by the fs suite

    @pytest.fixture
    async def module(self, tmp_path: Path):
        async with DedupModule(
            inner=fs.FileSystemModule(root=str(tmp_path / "store"), fsync=False)
        ) as module:
            yield module


class TestReplicateOverFileSystem(StorageModuleTests):
    list_page_objects = 0  # pagination is checked over memory, and by the fs suite

    @pytest.fixture
    async def module(self, tmp_path: Path):
        async with ReplicationModule(
            primary=fs.FileSystemModule(root=str(tmp_path / "primary"), fsync=False),
            replicas=[fs.FileSystemModule(root=str(tmp_path / "replica"), fsync=False)],
        ) as module:
            yield module


@pytest.mark.anyio
async def test_cleanup_reaches_through_the_layers(tmp_path: Path) -> None:
    """A killed write's temporaries under a stack are found by the stack's cleanup."""
    primary = fs.FileSystemModule(root=str(tmp_path / "primary"), fsync=False)
    replica = fs.FileSystemModule(root=str(tmp_path / "replica"), fsync=False)
    stack = DedupModule(
        inner=CompressionModule(
            inner=ReplicationModule(primary=primary, replicas=[replica], mode="all")
        )
    )
    async with stack:
        await stack.put(b"kept" * 1000, key="kept")
        for store in (primary, replica):
            partial = Path(store.root) / (TEMP_TAG + "interrupted")
            partial.write_bytes(b"partial")
        assert await stack.cleanup() == {"markers": 0, "blobs": 0, "temporaries": 0}
        assert await stack.cleanup(older_than=0) == {"markers": 0, "blobs": 0, "temporaries": 2}
        assert not [p for p in tmp_path.rglob("*") if TEMP_TAG in p.name]  # noqa: ASYNC240
        async with await stack.get_read_stream("kept") as stream:
            assert await stream.read() == b"kept" * 1000
