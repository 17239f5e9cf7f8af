import pytest

from asyncstore.memory import MemoryModule
from asyncstore.middleware.dedup import DedupModule
from asyncstore.testing import StorageModuleTests


class TestDedupOverMemory(StorageModuleTests):
    @pytest.fixture(params=["asyncio", "trio"])
    def anyio_backend(self, request: pytest.FixtureRequest) -> str:
        return str(request.param)

    @pytest.fixture
    async def module(self):
        async with DedupModule(inner=MemoryModule()) as module:
            yield module


class TestDedupWithSeparateBlobStore(StorageModuleTests):
    @pytest.fixture
    async def module(self):
        async with DedupModule(inner=MemoryModule(), blobs=MemoryModule()) as module:
            yield module
