import pytest
from asyncstore_dictstore import DictStore

from asyncstore.testing import StorageModuleTests


class TestDictStore(StorageModuleTests):
    @pytest.fixture
    async def module(self):
        async with DictStore() as store:
            yield store
