"""The transform middleware passes the conformance suite: identity both ways, and a gzip pair
(a layer whose reads change sizes) over memory and over fs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from asyncstore.memory import MemoryModule
from asyncstore.middleware.transform import TransformModule
from asyncstore.testing import StorageModuleTests
from asyncstore_fs import FileSystemModule


class TestIdentityBothWays(StorageModuleTests):
    """identity both ways over memory (asyncio; the gzip pair runs on trio too)."""

    @pytest.fixture
    async def module(self) -> AsyncIterator[TransformModule]:
        async with TransformModule(
            inner=MemoryModule(), on_put="identity", on_get="identity"
        ) as store:
            yield store


class TestGzipPair(StorageModuleTests):
    """gzip both ways over memory: a layer whose reads change sizes, on asyncio and trio."""

    list_page_objects = 1100

    @pytest.fixture(params=["asyncio", "trio"])
    def anyio_backend(self, request: pytest.FixtureRequest) -> str:
        return str(request.param)

    @pytest.fixture
    async def module(self) -> AsyncIterator[TransformModule]:
        async with TransformModule(
            inner=MemoryModule(),
            on_put="gzip",
            on_put_params={"level": "1"},
            on_get="gzip",
            on_get_params={"mode": "decompress"},
        ) as store:
            yield store


class TestGzipPairOverFs(StorageModuleTests):
    """gzip both ways over fs (asyncio; over memory it runs on trio too)."""

    list_page_objects = 0  # pagination is the fs suite's; here, what a layer adds

    @pytest.fixture
    async def module(self, tmp_path: Path) -> AsyncIterator[TransformModule]:
        async with TransformModule(
            inner=FileSystemModule(root=str(tmp_path / "store"), fsync=False),
            on_put="gzip",
            on_get="gzip",
            on_get_params={"mode": "decompress"},
        ) as store:
            yield store
