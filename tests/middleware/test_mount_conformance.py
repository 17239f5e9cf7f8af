"""The mount module passes the conformance suite over memory and fs, on asyncio and trio.

The mount points split the suite's keys between stores, so that listings merge several
stores' objects in the middle of one another (``order/a/`` and ``p/a/`` inside the root's
``order/`` and ``p/`` keys), and one mount holds the 1,100 objects of the pagination check.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import asyncstore_fs as fs
from asyncstore.memory import MemoryModule
from asyncstore.middleware.mount import MountModule
from asyncstore.testing import StorageModuleTests

POINTS = ["read/", "order/a/", "p/a/", "page/", "cond/"]


class TestMountOverMemory(StorageModuleTests):
    @pytest.fixture(params=["asyncio", "trio"])
    def anyio_backend(self, request: pytest.FixtureRequest) -> str:
        return str(request.param)

    @pytest.fixture
    async def module(self):
        root = MemoryModule()
        # Keys of the root that the mount points hide: never listed, never read.
        for key in ("read/hidden", "order/a/hidden", "page/00000"):
            await root.put(b"hidden", key=key)
        mounts = {point: MemoryModule() for point in POINTS}
        async with MountModule(mounts={**mounts, "": root}) as module:
            yield module


class TestMountWithoutRoot(StorageModuleTests):
    """No root mount: the suite's keys all lie under the first mount point."""

    key_prefix = "m/"

    @pytest.fixture(params=["asyncio", "trio"])
    def anyio_backend(self, request: pytest.FixtureRequest) -> str:
        return str(request.param)

    @pytest.fixture
    async def module(self):
        other = MemoryModule()
        await other.put(b"elsewhere", key="x")
        async with MountModule(mounts={"m/": MemoryModule(), "n/": other}) as module:
            yield module


class TestMountOverFileSystem(StorageModuleTests):
    list_page_objects = 0  # pagination is checked over memory, and by the fs suite

    @pytest.fixture(params=["asyncio", "trio"])
    def anyio_backend(self, request: pytest.FixtureRequest) -> str:
        return str(request.param)

    @pytest.fixture
    async def module(self, tmp_path: Path):
        def store(name: str) -> fs.FileSystemModule:
            return fs.FileSystemModule(root=str(tmp_path / name), fsync=False)

        mounts = {point: store(point.replace("/", "-")) for point in POINTS}
        async with MountModule(mounts={"": store("root"), **mounts}) as module:
            yield module
