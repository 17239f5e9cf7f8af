import pytest
from asyncstore_sqlite import SQLiteModule

from asyncstore.testing import StorageModuleTests


class TestSQLiteModule(StorageModuleTests):
    @pytest.fixture(params=["asyncio", "trio"])
    def anyio_backend(self, request):
        return request.param

    @pytest.fixture
    async def module(self, tmp_path):
        async with SQLiteModule(path=str(tmp_path / "objects.db")) as store:
            yield store
