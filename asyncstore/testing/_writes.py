"""Conformance checks for writing: put, new_data, assign, sources, atomicity, concurrency."""

from __future__ import annotations

import hashlib
import io
import tempfile

import anyio
import anyio.lowlevel
import pytest

from asyncstore.errors import NotFoundError
from asyncstore.memory import MemoryModule
from asyncstore.module import StorageModule
from asyncstore.testing._base import (
    MiB,
    SourceFailed,
    SuiteBase,
    expect_bytes,
    expect_error,
    failing_source,
    show,
)


class _AsyncReader:
    def __init__(self, data: bytes) -> None:
        self._buffer = io.BytesIO(data)

    async def read(self, n: int = -1) -> bytes:
        await anyio.lowlevel.checkpoint()
        return self._buffer.read(n)


class WriteTests(SuiteBase):
    """Checks of `put`, `new_data` and `assign`."""

    async def test_put_returns_a_str_handle(self, module: StorageModule) -> None:
        self.require(module, "writable")
        handle = await module.put(b"payload")
        assert isinstance(handle, str) and handle, (
            f"put() without a key: expected a non-empty str handle, got {show(handle)}"
        )
        available = await module.available(handle)
        assert available, f"available() right after put(): expected True, got {available!r}"
        expect_bytes(await self.read_all(module, handle), b"payload", "reading what put() stored")

    async def test_put_with_key_returns_the_key(self, module: StorageModule) -> None:
        self.require(module, "writable")
        self.require(module, "named_keys")
        handle = await module.put(b"x", key=self.k("dir/file.txt"))
        assert handle == self.k("dir/file.txt"), (
            f"put(key=...): expected the key {self.k('dir/file.txt')!r} as the handle, "
            f"got {show(handle)}"
        )

    async def test_put_without_key_gives_distinct_handles(self, module: StorageModule) -> None:
        self.require(module, "writable")
        handles = {await module.put(b"same") for _ in range(5)}
        assert len(handles) == 5, (
            f"five put() calls without a key: expected five distinct handles, got {sorted(handles)}"
        )

    async def test_put_bytearray_and_memoryview(self, module: StorageModule) -> None:
        self.require(module, "writable")
        first = await self.put(module, bytearray(b"from bytearray"), "ba")
        second = await self.put(module, memoryview(b"--from memoryview--")[2:-2], "mv")
        expect_bytes(await self.read_all(module, first), b"from bytearray", "a bytearray source")
        expect_bytes(
            await self.read_all(module, second), b"from memoryview", "a memoryview slice source"
        )

    async def test_put_empty_object(self, module: StorageModule) -> None:
        self.require(module, "writable")
        handle = await self.put(module, b"", "empty")
        available = await module.available(handle)
        assert available, f"available() of an empty object: expected True, got {available!r}"
        size = await module.get_size(handle)
        assert size == 0, f"get_size() of an empty object: expected 0, got {size!r}"
        expect_bytes(await self.read_all(module, handle), b"", "reading an empty object")

    async def test_put_large_multi_chunk_object(self, module: StorageModule) -> None:
        self.require(module, "writable")
        data = self.pattern(self.large_object_size, seed=1)
        handle = await self.put(module, self.chunks(data, 256 * 1024 + 7), "large")
        size = await module.get_size(handle)
        assert size == len(data), (
            f"get_size() of a {len(data)}-byte object put in chunks: expected {len(data)}, "
            f"got {size!r}"
        )
        digest = hashlib.sha256()
        received = 0
        async with await module.get_read_stream(handle) as stream:
            async for chunk in stream:
                digest.update(chunk)
                received += len(chunk)
        assert digest.hexdigest() == hashlib.sha256(data).hexdigest(), (
            f"iterating over a {len(data)}-byte object put in chunks: expected its bytes, got "
            f"{received} bytes that differ"
        )

    async def test_put_sync_iterable(self, module: StorageModule) -> None:
        self.require(module, "writable")
        handle = await self.put(module, [b"ab", bytearray(b"cd"), memoryview(b"ef")], "it")
        expect_bytes(await self.read_all(module, handle), b"abcdef", "a list of chunks as source")

    async def test_put_async_iterable(self, module: StorageModule) -> None:
        self.require(module, "writable")
        handle = await self.put(module, self.chunks(b"0123456789", 3), "ait")
        expect_bytes(await self.read_all(module, handle), b"0123456789", "an async iterable source")

    async def test_put_zero_length_chunks(self, module: StorageModule) -> None:
        self.require(module, "writable")
        handle = await self.put(module, [b"", b"a", b"", b"b", b""], "zero-chunks")
        expect_bytes(await self.read_all(module, handle), b"ab", "a source with zero-length chunks")

    async def test_put_async_reader(self, module: StorageModule) -> None:
        self.require(module, "writable")
        data = self.pattern(3 * MiB + 1, seed=2)
        handle = await self.put(module, _AsyncReader(data), "async-reader")
        expect_bytes(await self.read_all(module, handle), data, "a source with an async read(n)")

    async def test_put_sync_file_objects(self, module: StorageModule) -> None:
        self.require(module, "writable")
        data = self.pattern(2 * MiB + 3, seed=3)
        first = await self.put(module, io.BytesIO(data), "bytesio")
        with tempfile.TemporaryFile() as file:
            file.write(data)
            file.seek(0)
            second = await self.put(module, file, "tempfile")
        expect_bytes(await self.read_all(module, first), data, "an io.BytesIO source")
        expect_bytes(await self.read_all(module, second), data, "a temporary file as source")

    async def test_put_from_another_modules_read_stream(self, module: StorageModule) -> None:
        self.require(module, "writable")
        data = self.pattern(MiB + 5, seed=4)
        async with MemoryModule() as other:
            source_handle = await other.put(data, key="source")
            async with await other.get_read_stream(source_handle) as stream:
                handle = await self.put(module, stream, "from-stream")
        expect_bytes(
            await self.read_all(module, handle), data, "another module's ReadStream as source"
        )

    async def test_put_str_raises_type_error(self, module: StorageModule) -> None:
        self.require(module, "writable")
        with expect_error(TypeError, "put() of a str", match="encode"):
            await self.put(module, "text is not bytes", "str")
        if module.capabilities().get("named_keys"):
            assert not await module.available(self.k("str")), (
                "put() of a str failed: expected nothing stored, got an object"
            )

    @pytest.mark.parametrize(
        "source", [12345, object(), None, 1.5], ids=["int", "object", "None", "float"]
    )
    async def test_put_unsupported_source_raises_type_error(
        self, module: StorageModule, source: object
    ) -> None:
        self.require(module, "writable")
        with expect_error(TypeError, f"put() of {source!r}", match="accepted"):
            await self.put(module, source, "bad-source")
        if module.capabilities().get("named_keys"):
            assert not await module.available(self.k("bad-source")), (
                f"put() of {source!r} failed: expected nothing stored, got an object"
            )

    async def test_put_iterable_with_str_chunk_raises(self, module: StorageModule) -> None:
        self.require(module, "writable")
        with expect_error(TypeError, "put() of chunks with a str among them"):
            await self.put(module, [b"ok", "not ok"], "str-chunk")
        if module.capabilities().get("named_keys"):
            assert not await module.available(self.k("str-chunk")), (
                "put() of chunks with a str failed: expected nothing stored, got an object"
            )

    async def test_overwrite_replaces_content(self, module: StorageModule) -> None:
        self.require(module, "writable")
        self.require(module, "named_keys")
        await self.put(module, b"first version, longer", "over")
        handle = await self.put(module, b"second", "over")
        expect_bytes(await self.read_all(module, handle), b"second", "reading an overwritten key")
        size = await module.get_size(handle)
        assert size == 6, f"get_size() of an overwritten key: expected 6, got {size!r}"

    async def test_new_data_is_not_available(self, module: StorageModule) -> None:
        self.require(module, "new_data")
        handle = await module.new_data()
        assert isinstance(handle, str), f"new_data(): expected a str handle, got {show(handle)}"
        available = await module.available(handle)
        assert not available, (
            f"available() of a handle from new_data(), never assigned: expected False, got "
            f"{available!r}"
        )
        with expect_error(NotFoundError, "stat() of a handle from new_data(), never assigned"):
            await module.stat(handle)

    async def test_new_data_handles_are_unique(self, module: StorageModule) -> None:
        self.require(module, "new_data")
        handles = {await module.new_data() for _ in range(50)}
        assert len(handles) == 50, (
            f"50 calls of new_data(): expected 50 distinct handles, got {len(handles)}"
        )

    async def test_assign_after_new_data(self, module: StorageModule) -> None:
        self.require(module, "new_data")
        self.require(module, "assign")
        handle = await module.new_data()
        await module.assign(handle, b"assigned", content_type="text/plain")
        available = await module.available(handle)
        assert available, f"available() after assign(): expected True, got {available!r}"
        expect_bytes(
            await self.read_all(module, handle), b"assigned", "reading what assign() stored"
        )

    async def test_assign_to_a_chosen_key(self, module: StorageModule) -> None:
        self.require(module, "named_keys")
        self.require(module, "assign")
        await module.assign(self.k("chosen/key"), b"chosen")
        expect_bytes(
            await self.read_all(module, self.k("chosen/key")), b"chosen", "assign() to a key"
        )

    async def test_failing_source_stores_nothing(self, module: StorageModule) -> None:
        self.require(module, "writable")
        self.require(module, "named_keys")
        self.require(module, "atomic_writes")
        data = self.pattern(MiB, seed=5)
        with expect_error(SourceFailed, "put() from a source that fails midway"):
            await self.put(module, failing_source(data, 300 * 1024), "fails")
        assert not await module.available(self.k("fails")), (
            "put() from a source that failed midway: expected nothing stored, got an object"
        )
        with expect_error(NotFoundError, "opening what a failed put() left"):
            await module.get_read_stream(self.k("fails"))

    async def test_failing_large_source_stores_nothing(self, module: StorageModule) -> None:
        self.require(module, "writable")
        self.require(module, "named_keys")
        self.require(module, "atomic_writes")
        data = self.pattern(self.large_object_size, seed=6)
        with expect_error(SourceFailed, "put() from a large source that fails near its end"):
            await self.put(module, failing_source(data, len(data) - 1000, MiB), "fails-late")
        assert not await module.available(self.k("fails-late")), (
            "put() from a large source that failed near its end: expected nothing stored, got "
            "an object"
        )

    async def test_failing_source_keeps_the_old_object(self, module: StorageModule) -> None:
        self.require(module, "writable")
        self.require(module, "named_keys")
        self.require(module, "atomic_writes")
        await self.put(module, b"old content", "keep", metadata={"v": "1"})
        with expect_error(SourceFailed, "put() over an object from a source that fails"):
            await self.put(module, failing_source(self.pattern(MiB), 200 * 1024), "keep")
        expect_bytes(
            await self.read_all(module, self.k("keep")),
            b"old content",
            "the object a failed put() would have replaced",
        )
        if module.capabilities().get("metadata"):
            metadata = dict((await module.stat(self.k("keep"))).metadata)
            assert metadata == {"v": "1"}, (
                "metadata of the object a failed put() would have replaced: expected "
                f"{{'v': '1'}}, got {metadata!r}"
            )

    async def test_failing_source_on_new_data_leaves_it_unavailable(
        self, module: StorageModule
    ) -> None:
        self.require(module, "new_data")
        self.require(module, "assign")
        self.require(module, "atomic_writes")
        handle = await module.new_data()
        with expect_error(SourceFailed, "assign() from a source that fails"):
            await module.assign(handle, failing_source(self.pattern(MiB), 1000))
        assert not await module.available(handle), (
            "assign() to a new handle from a source that failed: expected the handle still "
            "unavailable, got an object"
        )

    async def test_concurrent_readers_never_see_a_mix(self, module: StorageModule) -> None:
        self.require(module, "writable")
        self.require(module, "named_keys")
        self.require(module, "atomic_writes")
        key = self.k("atomic")
        versions = {bytes([65 + i]) * (256 * 1024 + i * 4096) for i in range(4)}
        await module.put(next(iter(versions)), key=key)
        seen: list[bytes] = []

        async def writer(data: bytes) -> None:
            for _ in range(3):
                await module.put(self.chunks(data, 16 * 1024), key=key)

        async def reader() -> None:
            for _ in range(10):
                seen.append(await self.read_all(module, key))
                await anyio.lowlevel.checkpoint()

        async with anyio.create_task_group() as group:
            for data in versions:
                group.start_soon(writer, data)
            for _ in range(4):
                group.start_soon(reader)
        assert seen, "concurrent readers: expected reads, got none"
        for data in seen:
            assert data in versions, (
                f"readers during concurrent puts: expected one whole version, got a mixed object "
                f"of {len(data)} bytes {show(data)}"
            )

    async def test_concurrent_puts_to_one_key_leave_one_version(
        self, module: StorageModule
    ) -> None:
        self.require(module, "writable")
        self.require(module, "named_keys")
        self.require(module, "atomic_writes")
        key = self.k("contended")
        versions = [bytes([i]) * (10_000 + i) for i in range(self.concurrency)]

        async def writer(data: bytes) -> None:
            await module.put(self.chunks(data, 4096), key=key, metadata={"len": str(len(data))})

        async with anyio.create_task_group() as group:
            for data in versions:
                group.start_soon(writer, data)
        final = await self.read_all(module, key)
        assert final in versions, (
            f"after concurrent puts to one key: expected one whole version, got {show(final)}"
        )
        if module.capabilities().get("metadata"):
            recorded = (await module.stat(key)).metadata.get("len")
            assert recorded == str(len(final)), (
                f"after concurrent puts to one key: expected the metadata of the {len(final)}-byte "
                f"version that won, got len={recorded!r}"
            )

    async def test_concurrent_puts_to_distinct_keys(self, module: StorageModule) -> None:
        self.require(module, "writable")
        results: dict[str, bytes] = {}

        async def writer(index: int) -> None:
            data = self.pattern(1000 + index, seed=index)
            handle = await self.put(module, data, f"many/{index:03d}")
            results[handle] = data

        async with anyio.create_task_group() as group:
            for index in range(self.concurrency * 2):
                group.start_soon(writer, index)
        assert len(results) == self.concurrency * 2, (
            f"{self.concurrency * 2} concurrent puts to distinct keys: expected as many distinct "
            f"handles, got {len(results)}"
        )
        for handle, data in results.items():
            expect_bytes(
                await self.read_all(module, handle), data, f"concurrent put() to {handle!r}"
            )
