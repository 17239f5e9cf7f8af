"""The key-value base: dict stores of a few lines pass the suite, with and without conditions,
and the base keeps its promises on conditions, threads, cancellation, errors and closing."""

from __future__ import annotations

import threading
import time
from collections.abc import AsyncIterator, Iterator
from functools import partial
from typing import Any

import anyio
import pytest

import asyncstore
from asyncstore import (
    AlreadyExistsError,
    IntegrityError,
    NotFoundError,
    PermissionDeniedError,
    PreconditionFailedError,
    StorageError,
    StorageFullError,
    TransientError,
    UnsupportedError,
)
from asyncstore.kv import BlockingKeyValueModule, Expected, KeyValueModule
from asyncstore.testing import StorageModuleTests


class AsyncDictStore(KeyValueModule):
    """A dict behind async hooks, with conditions."""

    name = "async-dict"

    def __init__(self) -> None:
        self.data: dict[str, tuple[str, bytes]] = {}

    async def _get(self, key: str, start: int, end: int) -> tuple[str, bytes] | None:
        await anyio.lowlevel.checkpoint()
        found = self.data.get(key)
        return None if found is None else (found[0], found[1][start:end])

    async def _set(
        self, key: str, value: bytes, record: str, expected: Expected | None = None
    ) -> bool:
        await anyio.lowlevel.checkpoint()
        # No await between the check and the write: atomic for every task.
        if expected and self._record(key) != expected.record:
            return False
        self.data[key] = (record, value)
        return True

    async def _delete(self, key: str, expected: Expected | None = None) -> bool:
        if expected and self._record(key) != expected.record:
            return False
        self.data.pop(key, None)
        return True

    async def _scan(self, prefix: str) -> AsyncIterator[tuple[str, str]]:
        for key in sorted(self.data):
            await anyio.lowlevel.checkpoint()
            if key.startswith(prefix) and key in self.data:
                yield key, self.data[key][0]

    def _record(self, key: str) -> str | None:
        found = self.data.get(key)
        return None if found is None else found[0]


class BlockingDictStore(BlockingKeyValueModule):
    """A dict behind blocking hooks, without conditions."""

    name = "blocking-dict"

    def __init__(self) -> None:
        self.data: dict[str, tuple[str, bytes]] = {}

    def _get(self, key: str, start: int, end: int) -> tuple[str, bytes] | None:
        found = self.data.get(key)
        return None if found is None else (found[0], found[1][start:end])

    def _set(self, key: str, value: bytes, record: str) -> None:
        self.data[key] = (record, value)

    def _delete(self, key: str) -> None:
        self.data.pop(key, None)

    def _scan(self, prefix: str) -> Iterator[tuple[str, str]]:
        for key in sorted(self.data):
            if key.startswith(prefix):
                yield key, self.data[key][0]


class ConditionalBlockingDictStore(BlockingDictStore):
    """The blocking dict, with conditions (hooks never overlap: max_threads is 1)."""

    def _set(  # type: ignore[override]
        self, key: str, value: bytes, record: str, expected: Expected | None = None
    ) -> bool:
        current = self.data.get(key)
        if expected and (current[0] if current else None) != expected.record:
            return False
        self.data[key] = (record, value)
        return True


class TestAsyncDictStore(StorageModuleTests):
    @pytest.fixture(params=["asyncio", "trio"])
    def anyio_backend(self, request: pytest.FixtureRequest) -> Any:
        return request.param

    @pytest.fixture
    async def module(self) -> AsyncIterator[AsyncDictStore]:
        async with AsyncDictStore() as store:
            yield store


class TestBlockingDictStore(StorageModuleTests):
    @pytest.fixture
    async def module(self) -> AsyncIterator[BlockingDictStore]:
        async with BlockingDictStore() as store:
            yield store


# ---- conditions -----------------------------------------------------------------------------

CONDITIONAL = [AsyncDictStore, ConditionalBlockingDictStore]


def test_capabilities_follow_the_hooks() -> None:
    for cls in CONDITIONAL:
        capabilities = cls().capabilities()
        assert capabilities["conditional_create"] and capabilities["conditional_replace"]
        assert capabilities["conditional_read"]
    assert AsyncDictStore().capabilities()["conditional_delete"] is True
    assert ConditionalBlockingDictStore().capabilities()["conditional_delete"] is False
    plain = BlockingDictStore().capabilities()
    assert not plain["conditional_create"] and not plain["conditional_replace"]
    assert plain["conditional_read"] and plain["list"] and not plain["server_side_copy"]
    assert plain["max_object_size"] == 64 << 20


@pytest.mark.anyio
@pytest.mark.parametrize("cls", CONDITIONAL)
async def test_overwrite_false_creates_once(cls: type[KeyValueModule]) -> None:
    async with cls() as store:
        first = await store.put(b"first", key="k", overwrite=False)
        assert first.etag == (await store.stat("k")).etag  # type: ignore[attr-defined]
        with pytest.raises(AlreadyExistsError):
            await store.put(b"second", key="k", overwrite=False)
        with pytest.raises(AlreadyExistsError):
            await store.copy("k", key="k", overwrite=False)
        async with await store.get_read_stream("k") as stream:
            assert await stream.read() == b"first"


@pytest.mark.anyio
@pytest.mark.parametrize("cls", CONDITIONAL)
async def test_if_match_replaces_only_that_version(cls: type[KeyValueModule]) -> None:
    async with cls() as store:
        old = await store.put(b"v1", key="k", metadata={"v": "1"})
        new = await store.put(b"v2", key="k", if_match=old.etag)  # type: ignore[attr-defined]
        assert new.etag != old.etag  # type: ignore[attr-defined]
        with pytest.raises(PreconditionFailedError):
            await store.put(b"v3", key="k", if_match=old.etag)  # type: ignore[attr-defined]
        with pytest.raises(PreconditionFailedError):
            await store.put(b"v3", key="absent", if_match=old.etag)  # type: ignore[attr-defined]
        with pytest.raises(PreconditionFailedError):
            await store.assign("k", b"v3", if_match="not-an-etag")
        info = await store.stat("k")
        assert info.etag == new.etag and info.size == 2  # type: ignore[attr-defined]
        assert not await store.available("absent")


@pytest.mark.anyio
async def test_conditional_delete_and_read() -> None:
    async with AsyncDictStore() as store:
        handle = await store.put(b"data", key="k")
        etag = handle.etag  # type: ignore[attr-defined]
        async with await store.get_read_stream("k", if_match=etag) as stream:
            assert await stream.read() == b"data"
        with pytest.raises(PreconditionFailedError):
            await store.get_read_stream("k", if_match="other")
        with pytest.raises(NotFoundError):
            await store.get_read_stream("absent", if_match=etag)
        with pytest.raises(PreconditionFailedError):
            await store.delete("k", if_match="other")
        with pytest.raises(PreconditionFailedError):
            await store.delete("absent", if_match=etag)
        assert await store.available("k")
        await store.delete("k", if_match=etag)
        assert not await store.available("k")


@pytest.mark.anyio
async def test_a_store_without_conditions_refuses_them_before_any_io() -> None:
    calls: list[str] = []

    class Counting(BlockingDictStore):
        def _set(self, key: str, value: bytes, record: str) -> None:
            calls.append(key)
            super()._set(key, value, record)

    async with Counting() as store:
        with pytest.raises(UnsupportedError, match="conditional_create"):
            await store.put(b"x", key="k", overwrite=False)
        with pytest.raises(UnsupportedError, match="conditional_replace"):
            await store.put(b"x", key="k", if_match="etag")
        with pytest.raises(UnsupportedError, match="conditional_delete"):
            await store.delete("k", if_match="etag")
        assert calls == []


@pytest.mark.anyio
@pytest.mark.parametrize("cls", CONDITIONAL)
async def test_concurrent_creates_have_one_winner(cls: type[KeyValueModule]) -> None:
    async with cls() as store:
        won: list[int] = []

        async def create(index: int) -> None:
            try:
                await store.put(str(index).encode(), key="once", overwrite=False)
                won.append(index)
            except AlreadyExistsError:
                pass

        async with anyio.create_task_group() as group:
            for index in range(16):
                group.start_soon(create, index)
        assert len(won) == 1
        async with await store.get_read_stream("once") as stream:
            assert await stream.read() == str(won[0]).encode()


@pytest.mark.anyio
@pytest.mark.parametrize("cls", CONDITIONAL)
async def test_compare_and_swap_loses_no_update(cls: type[KeyValueModule]) -> None:
    async with cls() as store:
        await store.put(b"0", key="counter")

        async def increment() -> None:
            while True:
                async with await store.get_read_stream("counter") as stream:
                    value, etag = int(await stream.read()), stream.info.etag
                try:
                    await store.put(str(value + 1).encode(), key="counter", if_match=etag)
                    return
                except PreconditionFailedError:
                    continue

        async with anyio.create_task_group() as group:
            for _ in range(12):
                group.start_soon(increment)
        async with await store.get_read_stream("counter") as stream:
            assert await stream.read() == b"12"


# ---- streams ----------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_a_stream_never_mixes_versions() -> None:
    big = bytes(range(256)) * (12 * 1024)  # 3 MiB: more than the first read brings
    async with AsyncDictStore() as store:
        await store.put(big, key="k")
        stream = await store.get_read_stream("k")
        assert len(await stream.read(1 << 20)) == 1 << 20
        await store.put(b"replaced" * (1 << 18), key="k")
        with pytest.raises(PreconditionFailedError, match="replaced while it was being read"):
            await stream.read(10)
        stream = await store.get_read_stream("k")
        await stream.read(1 << 20)
        await store.delete("k")
        with pytest.raises(NotFoundError, match="deleted while it was being read"):
            await stream.read()


@pytest.mark.anyio
async def test_a_small_object_is_read_in_the_call_that_opens_it() -> None:
    async with AsyncDictStore() as store:
        await store.put(b"small object", key="k")
        stream = await store.get_read_stream("k", start=6)
        await store.put(b"replaced", key="k")
        assert await stream.read() == b"object"


# ---- sizes, records, errors -------------------------------------------------------------------


@pytest.mark.anyio
async def test_max_object_size() -> None:
    class Small(BlockingDictStore):
        max_object_size = 10

    async with Small() as store:
        assert store.capabilities()["max_object_size"] == 10
        await store.put(b"0123456789", key="fits")
        with pytest.raises(StorageFullError, match="at most 10"):
            await store.put(b"0123456789a", key="big")
        with pytest.raises(StorageFullError):
            await store.put([b"012345", b"6789a"], key="big")
        assert not await store.available("big")


@pytest.mark.anyio
async def test_hook_errors_become_storage_errors() -> None:
    class Failing(BlockingDictStore):
        failure: Exception = KeyError("boom")

        def _get(self, key: str, start: int, end: int) -> tuple[str, bytes] | None:
            raise self.failure

    async with Failing() as store:
        for failure, expected in [
            (KeyError("boom"), StorageError),
            (PermissionError("denied"), PermissionDeniedError),
            (TimeoutError("slow"), TransientError),
        ]:
            store.failure = failure
            with pytest.raises(expected) as caught:
                await store.stat("k")
            assert caught.value.__cause__ is failure
            assert type(failure).__name__ in str(caught.value) and "'k'" in str(caught.value)


@pytest.mark.anyio
async def test_a_record_the_base_did_not_write_is_an_integrity_error() -> None:
    async with BlockingDictStore() as store:
        store.data["k"] = ("not json", b"")
        with pytest.raises(IntegrityError, match="not one this module wrote"):
            await store.stat("k")


@pytest.mark.anyio
async def test_a_scan_out_of_order_is_reported() -> None:
    class Unsorted(BlockingDictStore):
        def _scan(self, prefix: str) -> Iterator[tuple[str, str]]:
            for key in sorted(self.data, reverse=True):
                yield key, self.data[key][0]

    async with Unsorted() as store:
        await store.put(b"a", key="a")
        await store.put(b"b", key="b")
        with pytest.raises(StorageError, match="code-point order"):
            [info async for info in store.list()]


@pytest.mark.anyio
async def test_statistics_count_the_records() -> None:
    async with AsyncDictStore() as store:
        await store.put(b"12345", key="a")
        await store.put(b"123", key="b")
        stats = await store.statistics()
        assert stats["objects"] == 2 and stats["bytes"] == 8
        assert stats["capacity"] == {"total": None, "used": 8, "free": None}


# ---- threads, cancellation, lifecycle ---------------------------------------------------------


class Tracking(BlockingDictStore):
    """Records overlapping hooks and lifecycle events; each write takes a while."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[str] = []
        self.running = 0
        self.most = 0
        self.lock = threading.Lock()

    def _open(self) -> None:
        time.sleep(0.05)
        self.events.append("open")

    def _close(self) -> None:
        self.events.append("close")

    def _set(self, key: str, value: bytes, record: str) -> None:
        with self.lock:
            self.running += 1
            self.most = max(self.most, self.running)
        time.sleep(0.02)
        super()._set(key, value, record)
        self.events.append(f"set {key}")
        with self.lock:
            self.running -= 1


@pytest.mark.anyio
@pytest.mark.parametrize("threads", [1, 4])
async def test_blocking_hooks_overlap_at_most_max_threads(threads: int) -> None:
    class Limited(Tracking):
        max_threads = threads

    async with Limited() as store:
        async with anyio.create_task_group() as group:
            for index in range(8):
                group.start_soon(partial(store.put, b"x", key=f"k{index}"))
        assert store.most == threads
        assert store.events.count("open") == 1 and store.events[0] == "open"


@pytest.mark.anyio
async def test_a_cancelled_blocking_write_completes() -> None:
    async with Tracking() as store:
        with anyio.move_on_after(0.01) as scope:
            await store.put(b"x", key="k")
        assert scope.cancel_called
        assert "set k" in store.events
        assert await store.available("k")


@pytest.mark.anyio
async def test_a_cancelled_async_write_completes() -> None:
    class Slow(AsyncDictStore):
        async def _set(
            self, key: str, value: bytes, record: str, expected: Expected | None = None
        ) -> bool:
            self.data[key + ".half"] = (record, b"")
            await anyio.sleep(0.05)  # a write in two steps, cancelled in between
            del self.data[key + ".half"]
            return await super()._set(key, value, record, expected)

    async with Slow() as store:
        with anyio.move_on_after(0.01) as scope:
            await store.put(b"x", key="k")
        assert scope.cancel_called
        assert set(store.data) == {"k"}


@pytest.mark.anyio
async def test_aclose_waits_for_calls_in_flight_then_refuses_calls() -> None:
    store = Tracking()
    async with anyio.create_task_group() as group:
        group.start_soon(partial(store.put, b"x", key="k"))
        await anyio.sleep(0.06)  # opened, the write in its thread
        await store.aclose()
    assert store.events == ["open", "set k", "close"]
    for call in (
        store.put(b"x", key="k2"),
        store.stat("k"),
        store.delete("k"),
        store.get_read_stream("k"),
    ):
        with pytest.raises(StorageError, match="closed"):
            await call
    with pytest.raises(StorageError, match="closed"):
        [info async for info in store.list()]
    assert store.capabilities()["list"]
    await store.aclose()
    assert store.events.count("close") == 1


@pytest.mark.anyio
async def test_a_store_never_opened_is_not_closed() -> None:
    async with Tracking() as store:
        pass
    assert store.events == []


@pytest.mark.anyio
async def test_async_open_runs_once_for_concurrent_first_calls() -> None:
    class Opening(AsyncDictStore):
        opened = 0

        async def _open(self) -> None:
            await anyio.sleep(0.02)
            self.opened += 1

    async with Opening() as store:
        async with anyio.create_task_group() as group:
            for index in range(5):
                group.start_soon(partial(store.put, b"x", key=f"k{index}"))
        assert store.opened == 1


def test_a_blocking_module_works_on_one_loop_after_another() -> None:
    store = Tracking()

    async def put(key: str) -> None:
        async with anyio.create_task_group() as group:
            group.start_soon(partial(store.put, b"x", key=f"{key}1"))
            group.start_soon(partial(store.put, b"x", key=f"{key}2"))

    anyio.run(put, "a")
    anyio.run(put, "b", backend="trio")
    anyio.run(put, "c")
    assert sorted(store.data) == ["a1", "a2", "b1", "b2", "c1", "c2"]


def test_the_bases_are_lazy_names_of_asyncstore() -> None:
    assert asyncstore.KeyValueModule is KeyValueModule
    assert asyncstore.BlockingKeyValueModule is BlockingKeyValueModule
