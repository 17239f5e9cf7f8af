"""The replicate middleware: policies, failing replicas, fallback reads, repair."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from asyncstore import ConfigError, NotFoundError, TransientError, open_store
from asyncstore.memory import MemoryModule
from asyncstore.middleware.replicate import ReplicationModule
from asyncstore.streams import ReadStream

from .helpers import FailingWrites, read

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


class BrokenReads(MemoryModule):
    """A primary whose reads fail with a transient error."""

    broken = False

    async def get_read_stream(
        self, handle: str, *, start: int = 0, end: int | None = None
    ) -> ReadStream:
        if self.broken:
            raise TransientError("timed out", store=self.name, handle=handle)
        return await super().get_read_stream(handle, start=start, end=end)


async def test_all_mode_writes_everywhere() -> None:
    primary, one, two = MemoryModule(), MemoryModule(), MemoryModule()
    store = ReplicationModule(primary=primary, replicas=[one, two])
    await store.put(b"data", key="k", metadata={"a": "1"}, content_type="text/plain")
    for module in (primary, one, two):
        assert await read(module, "k") == b"data"
        info = await module.stat("k")
        assert (dict(info.metadata), info.content_type) == ({"a": "1"}, "text/plain")
    await store.delete("k")
    for module in (primary, one, two):
        assert not await module.available("k")


async def test_all_mode_fails_when_a_replica_fails_then_repair_fills_it() -> None:
    primary, replica = MemoryModule(), FailingWrites()
    store = ReplicationModule(primary=primary, replicas=[replica])
    await store.put(b"before", key="old")
    replica.fail = True
    with pytest.raises(OSError, match="replica is down"):
        await store.put(b"new", key="new")
    assert await read(primary, "new") == b"new"
    assert (await store.statistics())["replicate"]["needs_repair"] == 1
    replica.fail = False
    assert await store.repair() == {"checked": 2, "copied": 1, "skipped": 1, "failed": 0}
    assert await read(replica, "new") == b"new"
    assert await store.repair() == {"checked": 2, "copied": 0, "skipped": 2, "failed": 0}
    assert (await store.statistics())["replicate"]["needs_repair"] == 0


async def test_background_mode_survives_a_failing_replica() -> None:
    primary, replica = MemoryModule(), FailingWrites()
    store = ReplicationModule(primary=primary, replicas=[replica], mode="background")
    replica.fail = True
    await store.put(b"payload", key="k")  # returns once the primary has it
    await store.flush()
    stats = (await store.statistics())["replicate"]
    assert (stats["failed"], stats["needs_repair"], stats["queued"]) == (1, 1, 0)
    replica.fail = False
    assert (await store.repair())["copied"] == 1
    assert await read(replica, "k") == b"payload"


async def test_background_mode_with_a_runner_fills_replicas() -> None:
    primary, replica = MemoryModule(), MemoryModule()
    store = ReplicationModule(primary=primary, replicas=[replica], mode="background")
    async with anyio.create_task_group() as group:
        group.start_soon(store.run)
        await store.put(b"one", key="a")
        await store.put(b"two", key="b")
        for _ in range(500):
            if await replica.available("a") and await replica.available("b"):
                break
            await anyio.sleep(0.01)
        group.cancel_scope.cancel()
    assert await read(replica, "b") == b"two"


async def test_background_queue_is_bounded_without_a_runner() -> None:
    primary, replica = MemoryModule(), MemoryModule()
    store = ReplicationModule(primary=primary, replicas=[replica], mode="background", queue_size=3)
    for index in range(10):
        await store.put(b"x", key=f"k{index}")
        assert (await store.statistics())["replicate"]["queued"] <= 3
    assert len([i async for i in replica.list()]) == 7
    await store.aclose()  # drains the queue first
    assert (await store.statistics())["replicate"]["filled"] == 10


async def test_reads_fall_back_when_the_primary_loses_an_object() -> None:
    primary, replica = MemoryModule(), MemoryModule()
    store = ReplicationModule(primary=primary, replicas=[replica])
    await store.put(b"precious", key="k")
    await primary.delete("k")  # the primary loses it
    assert await read(store, "k") == b"precious"
    assert (await store.stat("k")).size == 8
    assert await store.available("k")
    assert await store.get_size("k") == 8


async def test_reads_fall_back_when_the_primary_fails() -> None:
    primary, replica = BrokenReads(), MemoryModule()
    store = ReplicationModule(primary=primary, replicas=[replica])
    await store.put(b"data", key="k")
    primary.broken = True
    assert await read(store, "k") == b"data"
    await replica.delete("k")
    with pytest.raises(TransientError):  # the primary's error, not the replica's miss
        await store.get_read_stream("k")
    with pytest.raises(NotFoundError):
        await ReplicationModule(primary=MemoryModule(), replicas=[replica]).stat("absent")


async def test_copy_uses_replicas_that_have_the_source() -> None:
    primary, replica = MemoryModule(), MemoryModule()
    store = ReplicationModule(primary=primary, replicas=[replica])
    await store.put(b"source", key="src")
    filled = (await store.statistics())["replicate"]["filled"]
    await store.copy("src", key="dst")
    stats = (await store.statistics())["replicate"]
    assert (stats["filled"], stats["skipped"]) == (filled, 1)
    assert await read(replica, "dst") == b"source"
    await replica.delete("src")
    await store.copy("src", key="dst2")  # the replica lacks it: the bytes are sent
    assert await read(replica, "dst2") == b"source"


async def test_configuration(tmp_path: Path) -> None:
    config = tmp_path / "asyncstore.toml"
    config.write_text(
        """
[stores.main]
module = "memory"

[stores.mirrored]
module = "replicate"
primary = "main"
replicas = ["memory://", "memory://?max_bytes=100"]
mode = "background"
queue_size = "5"
"""
    )
    async with open_store("mirrored", config=config) as store:
        assert isinstance(store, ReplicationModule)
        assert store.primary.name == "main"
        assert len(store.replicas) == 2
        stats = await store.statistics()
        assert stats["capacity"]["total"] == 100  # the tightest store bounds the effective one
        assert stats["replicate"]["mode"] == "background"
    with pytest.raises(ConfigError):
        ReplicationModule(primary=MemoryModule(), replicas=[MemoryModule()], mode="sometimes")
    with pytest.raises(ConfigError):
        ReplicationModule(primary=MemoryModule(), replicas="")
