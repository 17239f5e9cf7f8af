import pytest

from asyncstore.memory import MemoryModule
from asyncstore.middleware.compress import CompressionModule
from asyncstore.testing import StorageModuleTests


class TestCompressOverMemory(StorageModuleTests):
    @pytest.fixture(params=["asyncio", "trio"])
    def anyio_backend(self, request: pytest.FixtureRequest) -> str:
        return str(request.param)

    @pytest.fixture
    async def module(self):
        async with CompressionModule(inner=MemoryModule(), chunk_size=4096) as module:
            yield module
