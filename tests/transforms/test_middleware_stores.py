"""The transform middleware over memory, fs and the loopback S3 server."""

from __future__ import annotations

import gzip

import anyio
import anyio.lowlevel
import pytest

from asyncstore import TransformError
from asyncstore.middleware.transform import TransformModule
from asyncstore.module import StorageModule
from asyncstore.testing import SourceFailed, failing_source

from .stores import OVER_STORES, leftovers

pytestmark = [pytest.mark.anyio, OVER_STORES]

MiB = 1 << 20
DATA = b"".join(b"%08d a line of text\n" % i for i in range(600_000))  # 12.6 MB


@pytest.fixture
def anyio_backend(setting: tuple[str, str]) -> str:
    return setting[1]


class _Kept(TransformModule):
    async def aclose(self) -> None:
        """The test's fixture closes the inner store."""


def layer(inner: StorageModule, **options: str) -> TransformModule:
    return _Kept(
        inner=inner,
        on_put="gzip",
        on_get="gzip",
        on_get_params={"mode": "decompress"},
        **options,  # type: ignore[arg-type]
    )


async def read(store: StorageModule, key: str, **kwargs: int) -> bytes:
    async with await store.get_read_stream(key, **kwargs) as stream:
        return await stream.read()


async def test_put_and_read_through_the_layer(store: StorageModule) -> None:
    packed = layer(store)
    await packed.put(DATA, key="logs/a.log", metadata={"app": "x"})
    assert gzip.decompress(await read(store, "logs/a.log")) == DATA
    assert await read(packed, "logs/a.log") == DATA
    assert await read(packed, "logs/a.log", start=len(DATA) - 100) == DATA[-100:]
    info = await packed.stat("logs/a.log")
    assert (info.size, dict(info.metadata)) == (len(DATA), {"app": "x"})


async def test_failed_and_cancelled_puts_store_nothing(
    store: StorageModule, request: pytest.FixtureRequest
) -> None:
    packed = layer(store, on_put_params="level=1")  # type: ignore[arg-type]
    with pytest.raises(SourceFailed):
        await packed.put(failing_source(DATA, 9 * MiB, MiB), key="failed")
    strict = _Kept(inner=store, on_put="checksum", on_put_params={"verify": "0" * 64})
    with pytest.raises(TransformError):
        await strict.put(DATA, key="refused")

    async def endless() -> object:
        while True:
            yield DATA[:MiB]
            await anyio.lowlevel.checkpoint()

    with anyio.move_on_after(1.5):
        await packed.put(endless(), key="cancelled")
    assert [info async for info in store.list()] == []
    assert await leftovers(store, request) == []
