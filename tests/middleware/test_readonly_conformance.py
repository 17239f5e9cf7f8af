"""The readonly view passes the conformance suite over memory and fs, on asyncio and trio.

It accepts no writes, so the suite fills the store beneath through its ``seed`` hook, runs
the reading checks through the view, skips the writing checks by capability (``writable`` is
False) and checks that every write is refused.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import asyncstore_fs as fs
from asyncstore.memory import MemoryModule
from asyncstore.middleware.readonly import ReadOnlyModule
from asyncstore.module import StorageModule
from asyncstore.testing import StorageModuleTests


class _ReadOnlySuite(StorageModuleTests):
    async def seed(
        self, module: StorageModule, data: Any, *, key: str | None = None, **kwargs: Any
    ) -> str:
        assert isinstance(module, ReadOnlyModule)
        return await module.inner.put(data, key=key, **kwargs)


class TestReadOnlyOverMemory(_ReadOnlySuite):
    @pytest.fixture(params=["asyncio", "trio"])
    def anyio_backend(self, request: pytest.FixtureRequest) -> str:
        return str(request.param)

    @pytest.fixture
    async def module(self):
        async with ReadOnlyModule(inner=MemoryModule()) as module:
            yield module


class TestReadOnlyOverFileSystem(_ReadOnlySuite):
    list_page_objects = 0  # pagination is checked over memory, and by the fs suite

    @pytest.fixture(params=["asyncio", "trio"])
    def anyio_backend(self, request: pytest.FixtureRequest) -> str:
        return str(request.param)

    @pytest.fixture
    async def module(self, tmp_path: Path):
        inner = fs.FileSystemModule(root=str(tmp_path / "store"), fsync=False)
        async with ReadOnlyModule(inner=inner) as module:
            yield module
