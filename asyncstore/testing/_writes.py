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
from asyncstore.testing._base import MiB, SourceFailed, SuiteBase, failing_source


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
        assert isinstance(handle, str) and handle
        assert await module.available(handle)
        assert await self.read_all(module, handle) == b"payload"

    async def test_put_with_key_returns_the_key(self, module: StorageModule) -> None:
        self.require(module, "writable")
        self.require(module, "named_keys")
        handle = await module.put(b"x", key=self.k("dir/file.txt"))
        assert handle == self.k("dir/file.txt")

    async def test_put_without_key_gives_distinct_handles(self, module: StorageModule) -> None:
        self.require(module, "writable")
        handles = {await module.put(b"same") for _ in range(5)}
        assert len(handles) == 5

    async def test_put_bytearray_and_memoryview(self, module: StorageModule) -> None:
        self.require(module, "writable")
        first = await self.put(module, bytearray(b"from bytearray"), "ba")
        second = await self.put(module, memoryview(b"--from memoryview--")[2:-2], "mv")
        assert await self.read_all(module, first) == b"from bytearray"
        assert await self.read_all(module, second) == b"from memoryview"

    async def test_put_empty_object(self, module: StorageModule) -> None:
        self.require(module, "writable")
        handle = await self.put(module, b"", "empty")
        assert await module.available(handle)
        assert await module.get_size(handle) == 0
        assert await self.read_all(module, handle) == b""

    async def test_put_large_multi_chunk_object(self, module: StorageModule) -> None:
        self.require(module, "writable")
        data = self.pattern(self.large_object_size, seed=1)
        handle = await self.put(module, self.chunks(data, 256 * 1024 + 7), "large")
        assert await module.get_size(handle) == len(data)
        digest = hashlib.sha256()
        async with await module.get_read_stream(handle) as stream:
            async for chunk in stream:
                digest.update(chunk)
        assert digest.hexdigest() == hashlib.sha256(data).hexdigest()

    async def test_put_sync_iterable(self, module: StorageModule) -> None:
        self.require(module, "writable")
        handle = await self.put(module, [b"ab", bytearray(b"cd"), memoryview(b"ef")], "it")
        assert await self.read_all(module, handle) == b"abcdef"

    async def test_put_async_iterable(self, module: StorageModule) -> None:
        self.require(module, "writable")
        handle = await self.put(module, self.chunks(b"0123456789", 3), "ait")
        assert await self.read_all(module, handle) == b"0123456789"

    async def test_put_zero_length_chunks(self, module: StorageModule) -> None:
        self.require(module, "writable")
        handle = await self.put(module, [b"", b"a", b"", b"b", b""], "zero-chunks")
        assert await self.read_all(module, handle) == b"ab"

    async def test_put_async_reader(self, module: StorageModule) -> None:
        self.require(module, "writable")
        data = self.pattern(3 * MiB + 1, seed=2)
        handle = await self.put(module, _AsyncReader(data), "async-reader")
        assert await self.read_all(module, handle) == data

    async def test_put_sync_file_objects(self, module: StorageModule) -> None:
        self.require(module, "writable")
        data = self.pattern(2 * MiB + 3, seed=3)
        first = await self.put(module, io.BytesIO(data), "bytesio")
        with tempfile.TemporaryFile() as file:
            file.write(data)
            file.seek(0)
            second = await self.put(module, file, "tempfile")
        assert await self.read_all(module, first) == data
        assert await self.read_all(module, second) == data

    async def test_put_from_another_modules_read_stream(self, module: StorageModule) -> None:
        self.require(module, "writable")
        data = self.pattern(MiB + 5, seed=4)
        async with MemoryModule() as other:
            source_handle = await other.put(data, key="source")
            async with await other.get_read_stream(source_handle) as stream:
                handle = await self.put(module, stream, "from-stream")
        assert await self.read_all(module, handle) == data

    async def test_put_str_raises_type_error(self, module: StorageModule) -> None:
        self.require(module, "writable")
        with pytest.raises(TypeError, match="encode"):
            await self.put(module, "text is not bytes", "str")
        if module.capabilities().get("named_keys"):
            assert not await module.available(self.k("str"))

    @pytest.mark.parametrize("source", [12345, object(), None, 1.5], ids=repr)
    async def test_put_unsupported_source_raises_type_error(
        self, module: StorageModule, source: object
    ) -> None:
        self.require(module, "writable")
        with pytest.raises(TypeError, match="accepted"):
            await self.put(module, source, "bad-source")
        if module.capabilities().get("named_keys"):
            assert not await module.available(self.k("bad-source"))

    async def test_put_iterable_with_str_chunk_raises(self, module: StorageModule) -> None:
        self.require(module, "writable")
        with pytest.raises(TypeError):
            await self.put(module, [b"ok", "not ok"], "str-chunk")
        if module.capabilities().get("named_keys"):
            assert not await module.available(self.k("str-chunk"))

    async def test_overwrite_replaces_content(self, module: StorageModule) -> None:
        self.require(module, "writable")
        self.require(module, "named_keys")
        await self.put(module, b"first version, longer", "over")
        handle = await self.put(module, b"second", "over")
        assert await self.read_all(module, handle) == b"second"
        assert await module.get_size(handle) == 6

    async def test_new_data_is_not_available(self, module: StorageModule) -> None:
        self.require(module, "new_data")
        handle = await module.new_data()
        assert isinstance(handle, str)
        assert not await module.available(handle)
        with pytest.raises(NotFoundError):
            await module.stat(handle)

    async def test_new_data_handles_are_unique(self, module: StorageModule) -> None:
        self.require(module, "new_data")
        handles = {await module.new_data() for _ in range(50)}
        assert len(handles) == 50

    async def test_assign_after_new_data(self, module: StorageModule) -> None:
        self.require(module, "new_data")
        self.require(module, "assign")
        handle = await module.new_data()
        await module.assign(handle, b"assigned", content_type="text/plain")
        assert await module.available(handle)
        assert await self.read_all(module, handle) == b"assigned"

    async def test_assign_to_a_chosen_key(self, module: StorageModule) -> None:
        self.require(module, "named_keys")
        self.require(module, "assign")
        await module.assign(self.k("chosen/key"), b"chosen")
        assert await self.read_all(module, self.k("chosen/key")) == b"chosen"

    async def test_failing_source_stores_nothing(self, module: StorageModule) -> None:
        self.require(module, "writable")
        self.require(module, "named_keys")
        self.require(module, "atomic_writes")
        data = self.pattern(MiB, seed=5)
        with pytest.raises(SourceFailed):
            await self.put(module, failing_source(data, 300 * 1024), "fails")
        assert not await module.available(self.k("fails"))
        with pytest.raises(NotFoundError):
            await module.get_read_stream(self.k("fails"))

    async def test_failing_large_source_stores_nothing(self, module: StorageModule) -> None:
        self.require(module, "writable")
        self.require(module, "named_keys")
        self.require(module, "atomic_writes")
        data = self.pattern(self.large_object_size, seed=6)
        with pytest.raises(SourceFailed):
            await self.put(module, failing_source(data, len(data) - 1000, MiB), "fails-late")
        assert not await module.available(self.k("fails-late"))

    async def test_failing_source_keeps_the_old_object(self, module: StorageModule) -> None:
        self.require(module, "writable")
        self.require(module, "named_keys")
        self.require(module, "atomic_writes")
        await self.put(module, b"old content", "keep", metadata={"v": "1"})
        with pytest.raises(SourceFailed):
            await self.put(module, failing_source(self.pattern(MiB), 200 * 1024), "keep")
        assert await self.read_all(module, self.k("keep")) == b"old content"
        if module.capabilities().get("metadata"):
            assert dict((await module.stat(self.k("keep"))).metadata) == {"v": "1"}

    async def test_failing_source_on_new_data_leaves_it_unavailable(
        self, module: StorageModule
    ) -> None:
        self.require(module, "new_data")
        self.require(module, "assign")
        self.require(module, "atomic_writes")
        handle = await module.new_data()
        with pytest.raises(SourceFailed):
            await module.assign(handle, failing_source(self.pattern(MiB), 1000))
        assert not await module.available(handle)

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
        assert seen
        for data in seen:
            assert data in versions, f"a reader saw a mixed object of {len(data)} bytes"

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
        assert final in versions
        if module.capabilities().get("metadata"):
            assert (await module.stat(key)).metadata.get("len") == str(len(final))

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
        assert len(results) == self.concurrency * 2
        for handle, data in results.items():
            assert await self.read_all(module, handle) == data
