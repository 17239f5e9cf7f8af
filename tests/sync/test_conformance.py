"""The conformance suite through both adapters (wrapped, never copied)."""

import anyio.to_thread
import pytest

from asyncstore.memory import MemoryModule
from asyncstore.sync import SyncStore, from_sync_module
from asyncstore.testing import StorageModuleTests
from tests.sync.legacy_simple import SimpleModule
from tests.sync.through_sync import SyncBackedModule


class TestSyncStoreOverMemory(StorageModuleTests):
    """Every check runs through SyncStore's blocking methods, called from threads."""

    @pytest.fixture
    async def module(self):
        store = await anyio.to_thread.run_sync(SyncStore.open, "memory://")
        async with SyncBackedModule(store) as module:
            yield module


class TestSyncStoreOverFileSystem(StorageModuleTests):
    @pytest.fixture
    async def module(self, tmp_path):
        url = f"fs://{tmp_path / 'store'}?fsync=false"
        store = await anyio.to_thread.run_sync(SyncStore.open, url)
        async with SyncBackedModule(store) as module:
            yield module


class TestLegacySimpleModule(StorageModuleTests):
    """A module written against the original synchronous SDK, through the reverse adapter."""

    @pytest.fixture(params=["asyncio", "trio"])
    def anyio_backend(self, request: pytest.FixtureRequest) -> str:
        return str(request.param)

    @pytest.fixture
    async def module(self, tmp_path):
        async with from_sync_module(SimpleModule(str(tmp_path / "legacy"))) as module:
            yield module


class TestLegacyModuleThroughSyncStore(StorageModuleTests):
    """Both adapters stacked: threads -> SyncStore -> loop -> worker threads -> legacy."""

    @pytest.fixture
    async def module(self, tmp_path):
        legacy = SimpleModule(str(tmp_path / "legacy"))
        store = await anyio.to_thread.run_sync(SyncStore, from_sync_module(legacy))
        async with SyncBackedModule(store) as module:
            yield module


def test_memory_module_is_fresh_per_open():
    with SyncStore.open("memory://") as one, SyncStore.open("memory://") as two:
        one.put(b"x", key="k")
        assert not two.available("k")
    assert isinstance(MemoryModule(), MemoryModule)
