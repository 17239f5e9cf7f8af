"""fsspec's own reusable test suite (`fsspec.tests.abstract`) over the ``asyncstore://``
filesystem, derived as s3fs derives it: once over the memory store, an fs store and the
loopback S3 server."""

from __future__ import annotations

import posixpath
import uuid
from collections.abc import Callable

import fsspec.tests.abstract as abstract
import pytest

from asyncstore.fsspec import AsyncStoreFileSystem


class StoreFixtures(abstract.AbstractFixtures):  # type: ignore[misc]
    """The abstract suite's fixtures for a filesystem over ``store_spec``."""

    @pytest.fixture
    def fs(
        self, store_spec: str, make_fs: Callable[..., AsyncStoreFileSystem]
    ) -> AsyncStoreFileSystem:
        return make_fs(store_spec)

    @pytest.fixture
    def fs_path(self) -> str:
        return f"abstract-{uuid.uuid4().hex[:12]}"

    @pytest.fixture
    def fs_join(self) -> Callable[..., str]:
        return posixpath.join

    @pytest.fixture
    def supports_empty_directories(self) -> bool:
        # Directories are the prefixes of keys: one without keys below it does not exist.
        return False


def require_conditional_create(fs: AsyncStoreFileSystem) -> None:
    """Skip an exclusive-create check where the store cannot create conditionally."""
    if not fs.capabilities()["conditional_create"]:
        pytest.skip("the store declares conditional_create False")


class TestCopy(abstract.AbstractCopyTests, StoreFixtures):  # type: ignore[misc]
    pass


class TestGet(abstract.AbstractGetTests, StoreFixtures):  # type: ignore[misc]
    pass


class TestPut(abstract.AbstractPutTests, StoreFixtures):  # type: ignore[misc]
    pass


class TestPipe(abstract.AbstractPipeTests, StoreFixtures):  # type: ignore[misc]
    def test_pipe_exclusive(self, fs: AsyncStoreFileSystem, fs_target: str) -> None:
        require_conditional_create(fs)
        super().test_pipe_exclusive(fs, fs_target)


class TestOpen(abstract.AbstractOpenTests, StoreFixtures):  # type: ignore[misc]
    def test_open_exclusive(self, fs: AsyncStoreFileSystem, fs_target: str) -> None:
        require_conditional_create(fs)
        super().test_open_exclusive(fs, fs_target)
