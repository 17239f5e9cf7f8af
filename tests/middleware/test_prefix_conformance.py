"""The prefix sub-store passes the conformance suite over memory and fs, on asyncio and trio."""

from __future__ import annotations

from pathlib import Path

import pytest

import asyncstore_fs as fs
from asyncstore.memory import MemoryModule
from asyncstore.middleware.prefix import PrefixModule
from asyncstore.testing import StorageModuleTests


class TestPrefixOverMemory(StorageModuleTests):
    @pytest.fixture(params=["asyncio", "trio"])
    def anyio_backend(self, request: pytest.FixtureRequest) -> str:
        return str(request.param)

    @pytest.fixture
    async def module(self):
        inner = MemoryModule()
        # Neighbours on both sides of the prefix in key order, which the sub-store never shows.
        for key in ("tenants/acme", "tenants/acme-old/x", "tenants/acmd/x", "tenants/b/x"):
            await inner.put(b"outside", key=key)
        async with PrefixModule(inner=inner, prefix="tenants/acme/") as module:
            yield module


class TestPrefixOverFileSystem(StorageModuleTests):
    list_page_objects = 0  # pagination is checked over memory, and by the fs suite

    @pytest.fixture(params=["asyncio", "trio"])
    def anyio_backend(self, request: pytest.FixtureRequest) -> str:
        return str(request.param)

    @pytest.fixture
    async def module(self, tmp_path: Path):
        inner = fs.FileSystemModule(root=str(tmp_path / "store"), fsync=False)
        await inner.put(b"outside", key="sub-x/outside")
        async with PrefixModule(inner=inner, prefix="sub") as module:
            yield module
