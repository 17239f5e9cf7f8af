"""The dedup middleware: one copy per content, safe reference counting, sweeping, integrity."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import anyio
import anyio.lowlevel
import pytest

from asyncstore import IntegrityError, InvalidKeyError, NotFoundError, open_store
from asyncstore.memory import MemoryModule
from asyncstore.middleware.compress import CompressionModule
from asyncstore.middleware.dedup import DedupModule
from asyncstore.middleware.encrypt import EncryptionModule
from asyncstore.module import StorageModule
from asyncstore.testing import SourceFailed, StorageModuleTests, failing_source

from .helpers import new_key, read

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def inner() -> MemoryModule:
    return MemoryModule()


@pytest.fixture
async def store(inner: MemoryModule):
    async with DedupModule(inner=inner) as module:
        yield module


async def inner_keys(inner: StorageModule, prefix: str) -> list[str]:
    return [info.handle async for info in inner.list(prefix)]


async def test_one_copy_of_a_hundred_identical_puts(
    store: DedupModule, inner: MemoryModule
) -> None:
    data = os.urandom(300_000)
    for index in range(100):
        await store.put(data, key=f"copies/{index:03d}")
    assert len(await inner_keys(inner, "_dedup/blobs/")) == 1
    stats = await store.statistics()
    assert stats["dedup"]["logical_bytes"] == 100 * len(data)
    assert stats["dedup"]["stored_bytes"] == len(data)
    assert stats["dedup"]["references"] == 100
    assert stats["capacity"]["used"] < 2 * len(data)
    for index in range(99):
        await store.delete(f"copies/{index:03d}")
    assert await read(store, "copies/099") == data
    assert (await store.statistics())["dedup"]["stored_bytes"] == len(data)
    await store.delete("copies/099")
    assert await inner_keys(inner, "_dedup/") == []
    assert (await store.statistics())["dedup"]["stored_bytes"] == 0


async def test_overwrite_frees_content_only_when_unused(
    store: DedupModule, inner: MemoryModule
) -> None:
    await store.put(b"shared", key="a")
    await store.put(b"shared", key="b")
    await store.put(b"other", key="a")
    assert await read(store, "b") == b"shared"
    assert len(await inner_keys(inner, "_dedup/blobs/")) == 2
    await store.put(b"other", key="b")
    assert len(await inner_keys(inner, "_dedup/blobs/")) == 1
    await store.put(b"other", key="b")  # same content again keeps its marker
    await store.delete("a")
    assert await read(store, "b") == b"other"


async def test_copy_is_a_reference(store: DedupModule, inner: MemoryModule) -> None:
    await store.put(b"x" * 10_000, key="src", metadata={"m": "1"}, content_type="text/plain")
    await store.copy("src", key="dst")
    assert len(await inner_keys(inner, "_dedup/blobs/")) == 1
    await store.delete("src")
    info = await store.stat("dst")
    assert (info.size, dict(info.metadata), info.content_type) == (10_000, {"m": "1"}, "text/plain")
    assert await read(store, "dst") == b"x" * 10_000
    assert store.capabilities()["server_side_copy"] is True


async def test_large_source_goes_through_a_temporary(
    store: DedupModule, inner: MemoryModule
) -> None:
    data = os.urandom(3 << 20)
    await store.put(data, key="big")
    await store.put(data, key="big2")
    assert await inner_keys(inner, "_dedup/tmp/") == []
    assert await inner_keys(inner, "_dedup/blobs/") == [
        "_dedup/blobs/" + hashlib.sha256(data).hexdigest()
    ]
    assert await read(store, "big2", start=1 << 20, end=(1 << 20) + 10) == data[1 << 20 :][:10]
    with pytest.raises(SourceFailed):
        await store.put(failing_source(data, 2 << 20), key="fails")
    assert await inner_keys(inner, "_dedup/tmp/") == []
    assert not await store.available("fails")


async def test_reserved_keys_are_rejected_and_hidden(
    store: DedupModule, inner: MemoryModule
) -> None:
    await store.put(b"x", key="visible")
    for operation in (
        lambda: store.put(b"x", key="_dedup/blobs/evil"),
        lambda: store.get_read_stream("_dedup/refs/x"),
        lambda: store.delete("_dedup/blobs/x"),
        lambda: store.stat("_dedup/x"),
    ):
        with pytest.raises(InvalidKeyError):
            await operation()
    assert [info.handle async for info in store.list()] == ["visible"]
    assert len(await inner_keys(inner, "")) > 1


async def test_tampered_content_is_an_integrity_error(
    store: DedupModule, inner: MemoryModule
) -> None:
    await store.put(b"genuine content", key="k")
    (blob,) = await inner_keys(inner, "_dedup/blobs/")
    await inner.put(b"forged  content", key=blob)
    with pytest.raises(IntegrityError, match="hash"):
        await read(store, "k")
    await inner.put(b"short", key=blob)
    with pytest.raises(IntegrityError, match="bytes"):
        await read(store, "k")
    await inner.delete(blob)
    with pytest.raises(IntegrityError, match="missing"):
        await read(store, "k")
    await inner.put(b"not a reference", key="k")
    with pytest.raises(IntegrityError, match="reference"):
        await store.stat("k")
    with pytest.raises(NotFoundError):
        await store.stat("absent")


async def test_concurrent_puts_and_deletes_never_lose_used_content(store: DedupModule) -> None:
    data = b"popular content" * 1000

    async def cycle(index: int) -> None:
        for _ in range(5):
            await store.put(data, key=f"k/{index}")
            await anyio.lowlevel.checkpoint()
            await store.delete(f"k/{index}")

    await store.put(data, key="keeper")
    async with anyio.create_task_group() as group:
        for index in range(20):
            group.start_soon(cycle, index)
    assert await read(store, "keeper") == data
    assert (await store.statistics())["dedup"]["references"] == 1


async def test_sweep_repairs_what_a_crash_leaves(store: DedupModule, inner: MemoryModule) -> None:
    await store.put(b"kept", key="kept")
    # A crash between the marker and the reference, and an abandoned upload.
    await inner.put(b"orphan", key="_dedup/blobs/" + hashlib.sha256(b"orphan").hexdigest())
    await inner.put(b"ghost", key="_dedup/refs/" + hashlib.sha256(b"orphan").hexdigest() + "/x")
    await inner.put(b"partial", key="_dedup/tmp/abc")
    assert await store.sweep(older_than=3600) == {"markers": 0, "blobs": 0, "temporaries": 0}
    assert await store.cleanup() == {"markers": 0, "blobs": 0, "temporaries": 0}
    assert await store.sweep(older_than=0) == {"markers": 1, "blobs": 1, "temporaries": 1}
    assert await read(store, "kept") == b"kept"
    assert len(await inner_keys(inner, "_dedup/")) == 2  # kept's blob and marker


async def test_config_file_with_a_separate_blob_store(tmp_path: Path) -> None:
    config = tmp_path / "asyncstore.toml"
    config.write_text(
        """
[stores.refs]
module = "memory"

[stores.content]
module = "memory"

[stores.dedup]
module = "dedup"
inner = "refs"
blobs = "content"
"""
    )
    async with open_store("dedup", config=config) as store:
        assert isinstance(store, DedupModule)
        assert store.blobs.name == "content"
        await store.put(b"same", key="a")
        await store.put(b"same", key="b")
        assert [i.handle async for i in store.inner.list()] == ["a", "b"]
        assert len([i async for i in store.blobs.list("_dedup/blobs/")]) == 1
        assert "blobs" in await store.statistics()


class TestDedupCompressEncryptMemory(StorageModuleTests):
    """dedup -> compress -> encrypt -> memory."""

    @pytest.fixture
    async def module(self):
        sealed = EncryptionModule(inner=MemoryModule(), key=new_key())
        async with DedupModule(inner=CompressionModule(inner=sealed)) as module:
            yield module
