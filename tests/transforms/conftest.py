from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from asyncstore.module import StorageModule

from .stores import open_store_of


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def setting(request: pytest.FixtureRequest) -> tuple[str, str]:
    """(store kind, anyio backend), given by `stores.OVER_STORES`."""
    value: tuple[str, str] = request.param
    return value


@pytest.fixture
async def store(
    setting: tuple[str, str], tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[StorageModule]:
    """A fresh, empty store of the setting's kind."""
    async with open_store_of(setting[0], tmp_path, request) as module:
        yield module
