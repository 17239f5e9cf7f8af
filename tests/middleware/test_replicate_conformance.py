import anyio
import pytest

from asyncstore.memory import MemoryModule
from asyncstore.middleware.replicate import ReplicationModule
from asyncstore.testing import StorageModuleTests


class TestReplicateAllOverMemory(StorageModuleTests):
    @pytest.fixture(params=["asyncio", "trio"])
    def anyio_backend(self, request: pytest.FixtureRequest) -> str:
        return str(request.param)

    @pytest.fixture
    async def module(self):
        async with ReplicationModule(
            primary=MemoryModule(), replicas=[MemoryModule(), MemoryModule()]
        ) as module:
            yield module


class TestReplicateBackgroundOverMemory(StorageModuleTests):
    @pytest.fixture(params=["asyncio", "trio"])
    def anyio_backend(self, request: pytest.FixtureRequest) -> str:
        return str(request.param)

    @pytest.fixture
    async def module(self):
        module = ReplicationModule(
            primary=MemoryModule(), replicas=[MemoryModule()], mode="background", queue_size=8
        )
        async with module:
            yield module
        assert module.statistics is not None


class TestReplicateBackgroundWithRunner(StorageModuleTests):
    @pytest.fixture
    async def module(self):
        module = ReplicationModule(
            primary=MemoryModule(), replicas=[MemoryModule()], mode="background", queue_size=4
        )
        async with anyio.create_task_group() as group:
            group.start_soon(module.run)
            yield module
            group.cancel_scope.cancel()
        await module.aclose()
