import pytest

from asyncstore.testing import StorageModuleTests
from asyncstore_fs import FileSystemModule


class TestFileSystemConformance(StorageModuleTests):
    @pytest.fixture
    async def module(self, tmp_path):
        async with FileSystemModule(root=str(tmp_path / "store")) as m:
            yield m


class TestFileSystemSidecarConformance(StorageModuleTests):
    """The same contract with metadata in sidecar files (filesystems without xattrs)."""

    @pytest.fixture
    async def module(self, tmp_path):
        async with FileSystemModule(root=str(tmp_path / "store"), xattrs=False) as m:
            yield m


class TestFileSystemConformanceTrio(StorageModuleTests):
    """On trio the module runs its blocking calls through anyio's thread pool instead."""

    @pytest.fixture
    def anyio_backend(self) -> str:
        return "trio"

    @pytest.fixture
    async def module(self, tmp_path):
        async with FileSystemModule(root=str(tmp_path / "store"), fsync=False) as m:
            yield m
