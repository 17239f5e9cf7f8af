import pytest

from asyncstore.memory import MemoryModule
from asyncstore.testing import StorageModuleTests


class TestMemoryConformance(StorageModuleTests):
    @pytest.fixture(params=["asyncio", "trio"])
    def anyio_backend(self, request: pytest.FixtureRequest) -> str:
        return str(request.param)

    @pytest.fixture
    async def module(self):
        async with MemoryModule() as module:
            yield module
