import pytest

from asyncstore.memory import MemoryModule
from asyncstore.middleware.encrypt import EncryptionModule
from asyncstore.testing import StorageModuleTests

from .helpers import new_key


class TestEncryptOverMemory(StorageModuleTests):
    @pytest.fixture(params=["asyncio", "trio"])
    def anyio_backend(self, request: pytest.FixtureRequest) -> str:
        return str(request.param)

    @pytest.fixture
    async def module(self):
        async with EncryptionModule(inner=MemoryModule(), key=new_key()) as module:
            yield module
