"""Stacked middleware pass the conformance suite and report effective capabilities."""

from __future__ import annotations

from pathlib import Path

import pytest

import asyncstore_fs as fs
from asyncstore import open_store
from asyncstore.memory import MemoryModule
from asyncstore.middleware.compress import CompressionModule
from asyncstore.middleware.encrypt import EncryptionModule
from asyncstore.testing import StorageModuleTests

from .helpers import CountingModule, new_key


class TestCompressEncryptMemory(StorageModuleTests):
    """compress -> encrypt -> memory."""

    @pytest.fixture(params=["asyncio", "trio"])
    def anyio_backend(self, request: pytest.FixtureRequest) -> str:
        return str(request.param)

    @pytest.fixture
    async def module(self):
        inner = EncryptionModule(inner=MemoryModule(), key=new_key())
        async with CompressionModule(inner=inner, chunk_size=16 * 1024) as module:
            yield module


class TestEncryptCompressMemory(StorageModuleTests):
    """encrypt -> compress -> memory (pointless for ratio, but any order must work)."""

    @pytest.fixture
    async def module(self):
        inner = CompressionModule(inner=MemoryModule(), chunk_size=4096)
        async with EncryptionModule(inner=inner, key=new_key()) as module:
            yield module


class TestCompressEncryptFileSystem(StorageModuleTests):
    """compress -> encrypt -> fs."""

    list_page_objects = 0  # pagination is checked over memory, and by the fs suite

    @pytest.fixture
    async def module(self, tmp_path: Path):
        inner = EncryptionModule(
            inner=fs.FileSystemModule(root=str(tmp_path / "store"), fsync=False), key=new_key()
        )
        async with CompressionModule(inner=inner) as module:
            yield module


@pytest.mark.anyio
async def test_effective_capabilities_of_a_stack() -> None:
    stack = CompressionModule(inner=EncryptionModule(inner=MemoryModule(), key=new_key()))
    caps = stack.capabilities()
    assert caps["cdmi_encryption"] == ["AES_GCM_256"]  # the caller's bytes end up encrypted
    assert caps["named_keys"] is True and caps["list"] is True
    assert caps["server_side_copy"] is False and caps["presign"] is False
    reverse = EncryptionModule(inner=CompressionModule(inner=MemoryModule()), key=new_key())
    assert reverse.capabilities()["cdmi_encryption"] == ["AES_GCM_256"]
    assert CompressionModule(inner=MemoryModule()).capabilities()["cdmi_encryption"] == []
    stats = await stack.statistics()
    assert set(stats) >= {"capacity", "inner", "compress"}
    assert "encrypt" in stats["inner"]
    await stack.aclose()


@pytest.mark.anyio
async def test_small_ranged_read_of_a_large_stacked_object_touches_few_chunks() -> None:
    memory = CountingModule()
    stack = CompressionModule(inner=EncryptionModule(inner=memory, key=new_key()))
    data = bytes(range(256)) * (64 * 1024)  # 16 MiB, compresses well
    await stack.put(data, key="big")
    memory.bytes_read = 0
    start = len(data) // 2
    async with await stack.get_read_stream("big", start=start, end=start + 4096) as stream:
        assert await stream.read() == data[start : start + 4096]
    # header + trailer chunk + index chunk + one or two frame chunks, each 64 KiB + tag.
    assert memory.bytes_read <= 88 + 4 * (64 * 1024 + 16)


@pytest.mark.anyio
async def test_stack_from_a_config_file(tmp_path: Path) -> None:
    config = tmp_path / "asyncstore.toml"
    config.write_text(
        """
[stores.blobs]
module = "memory"

[stores.sealed]
module = "encrypt"
inner = "blobs"
key = "${KEY}"

[stores.app]
module = "compress"
inner = "sealed"
"""
    )
    async with open_store("app", config=config, environ={"KEY": new_key()}) as store:
        assert isinstance(store, CompressionModule)
        assert isinstance(store.inner, EncryptionModule)
        assert isinstance(store.inner.inner, MemoryModule)
        await store.put(b"hello " * 1000, key="greeting", metadata={"lang": "en"})
        info = await store.stat("greeting")
        assert (info.size, dict(info.metadata)) == (6000, {"lang": "en"})
        assert store.capabilities()["cdmi_encryption"] == ["AES_GCM_256"]
