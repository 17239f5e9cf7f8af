"""The conformance suite over fsspec filesystems driven by `FsspecModule`.

The module declares no metadata, content types or conditions (fsspec has no portable ones),
so the suite skips exactly those checks, by capability.
"""

from collections.abc import AsyncIterator
from uuid import uuid4

import pytest

from asyncstore.fsspec import FsspecModule
from asyncstore.testing import StorageModuleTests
from tests.s3server import Endpoint


class TestFsspecMemoryConformance(StorageModuleTests):
    """fsspec's memory filesystem, in a root of its own (its store is shared process-wide)."""

    @pytest.fixture(params=["asyncio", "trio"])
    def anyio_backend(self, request: pytest.FixtureRequest) -> str:
        return str(request.param)

    @pytest.fixture
    async def module(self) -> AsyncIterator[FsspecModule]:
        root = f"/conformance-{uuid4().hex}"
        async with FsspecModule(protocol="memory", root=root) as store:
            yield store
            async for info in store.list():
                await store.delete(info.handle)


class TestFsspecLocalConformance(StorageModuleTests):
    """fsspec's local filesystem: transactional files renamed into place (the blocking
    filesystems' path on trio is the memory class's)."""

    @pytest.fixture
    async def module(self, tmp_path) -> AsyncIterator[FsspecModule]:
        async with FsspecModule(protocol="file", root=str(tmp_path / "store")) as store:
            yield store


class TestFsspecS3Conformance(StorageModuleTests):
    """s3fs against the loopback S3 server, driven natively on the event loop."""

    @pytest.fixture
    async def module(
        self, moto_endpoint: Endpoint, moto_bucket: str
    ) -> AsyncIterator[FsspecModule]:
        async with FsspecModule(
            protocol="s3",
            root=moto_bucket,
            key=moto_endpoint.access_key_id,
            secret=moto_endpoint.secret_access_key,
            endpoint_url=moto_endpoint.url,
            client_kwargs={"region_name": moto_endpoint.region},
        ) as store:
            yield store
