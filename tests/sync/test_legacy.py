"""The reverse adapter: legacy synchronous modules as async StorageModules."""

from __future__ import annotations

import json
import threading
import time

import anyio
import pytest

from asyncstore import (
    ConfigError,
    IntegrityError,
    NotFoundError,
    PermissionDeniedError,
    StorageError,
    StorageModule,
    UnsupportedError,
)
from asyncstore.config import Config, open_store
from asyncstore.memory import MemoryModule
from asyncstore.registry import Registry, module_options
from asyncstore.sync import LegacyModule, SyncStore, from_sync_module, legacy_module_class
from tests.sync.legacy_simple import SimpleModule, XorModule

pytestmark = pytest.mark.anyio


class _EntryPoint:
    def __init__(self, name: str, target: object) -> None:
        self.name = name
        self.value = f"tests:{name}"
        self._target = target

    def load(self) -> object:
        return self._target


def _registry() -> Registry:
    return Registry(
        [
            _EntryPoint("legacy-simple", legacy_module_class(SimpleModule)),
            _EntryPoint("legacy-xor", legacy_module_class(XorModule)),
            _EntryPoint("memory", MemoryModule),
        ]
    )


async def test_a_wrapper_stacks_on_a_legacy_module_through_get_module(tmp_path):
    config = Config.from_dict(
        {
            "stores": {
                "plain": {"module": "legacy-simple", "root": str(tmp_path / "plain")},
                "secret": {"module": "legacy-xor", "inner": "plain", "key": "7"},
            }
        }
    )
    async with open_store("secret", config=config, registry=_registry()) as secret:
        assert isinstance(secret, LegacyModule)
        handle = await secret.put(b"attack at dawn")
        async with await secret.get_read_stream(handle, start=7) as stream:
            assert await stream.read() == b"at dawn"
        # The inner legacy module holds the scrambled bytes under the same handle.
        stored = (tmp_path / "plain" / json.loads(handle)["id"]).read_bytes()
        assert stored == bytes(b ^ 7 for b in b"attack at dawn")
        assert await secret.get_size(handle) == 14
        await secret.delete(handle)
        assert not await secret.available(handle)
        assert list((tmp_path / "plain").iterdir()) == []


async def test_a_wrapper_stacks_on_an_async_module_through_a_view():
    config = Config.from_dict(
        {"stores": {"secret": {"module": "legacy-xor", "inner": "memory://"}}}
    )
    async with open_store("secret", config=config, registry=_registry()) as secret:
        data = bytes(range(256)) * 100
        handle = await secret.put(data)
        assert await secret.available(handle)
        async with await secret.get_read_stream(handle) as stream:
            await stream.seek(1000)
            assert await stream.read(10) == data[1000:1010]
        assert await secret.statistics() == {
            "capacity": {"total": None, "used": None, "free": None}
        }


async def test_get_module_without_a_host_is_a_config_error():
    module = from_sync_module(XorModule(inner="elsewhere"))
    with pytest.raises(ConfigError, match="offers no other stores"):
        await module.put(b"x")


def test_legacy_module_class_exposes_the_legacy_options(tmp_path):
    cls = legacy_module_class(SimpleModule)
    assert issubclass(cls, LegacyModule) and cls.__name__ == "SimpleModule"
    options = {o.name: o for o in module_options(cls)}
    assert set(options) == {"root", "chunk_size"}
    assert options["root"].required and options["chunk_size"].annotation == "int"
    assert options["root"].description == "The directory."
    registry = _registry()
    with pytest.raises(ConfigError, match="accepted: root, chunk_size"):
        registry.create("legacy-simple", {"rooot": "x"})
    module = registry.create("legacy-simple", {"root": str(tmp_path), "chunk_size": "10"})
    assert module.legacy.chunk_size == 10  # converted from the URL-style string
    assert registry.describe("legacy-simple").summary == "Keeps objects as files of one directory."


async def test_capabilities_and_statistics_are_normalised(tmp_path):
    async with from_sync_module(SimpleModule(str(tmp_path))) as module:
        capabilities = module.capabilities()
        assert capabilities["cdmi_encryption"] == []
        assert capabilities["named_keys"] is False and capabilities["metadata"] is False
        stats = await module.statistics()
        assert stats["capacity"]["total"] > 0 and stats["capacity"]["used"] is None
        assert stats["files"] == 0
        with pytest.raises(UnsupportedError, match="own handles"):
            await module.put(b"x", key="chosen")


class _Minimal:
    """Only put and get_read_stream: everything else is derived or unsupported."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}

    def put(self, context, stream):
        handle = f"obj-{len(self.objects)}"
        self.objects[handle] = stream.read()
        return handle

    def get_read_stream(self, context, module_data):
        import io

        return io.BytesIO(self.objects[module_data])


class _Unseekable:
    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    def read(self, n=-1):
        end = len(self._data) if n < 0 else self._pos + n
        chunk = self._data[self._pos : end]
        self._pos += len(chunk)
        return chunk


async def test_missing_methods_map_to_defaults_or_unsupported():
    module = from_sync_module(_Minimal())
    handle = await module.put(b"0123456789")
    assert await module.get_size(handle) == 10  # measured on the stream
    assert await module.available(handle)
    assert not await module.available("obj-99")  # KeyError -> NotFoundError -> False
    with pytest.raises(NotFoundError):
        await module.stat("obj-99")
    with pytest.raises(UnsupportedError, match="assign"):
        await module.assign(handle, b"x")
    with pytest.raises(UnsupportedError, match="delete"):
        await module.delete(handle)
    assert (await module.statistics())["capacity"] == {"total": None, "used": None, "free": None}
    assert module.capabilities()["range_read"] is True
    await module.aclose()


async def test_an_unseekable_legacy_stream_still_serves_ranges_and_seeks():
    class Legacy(_Minimal):
        def get_read_stream(self, context, module_data):
            return _Unseekable(self.objects[module_data])

    module = from_sync_module(Legacy())
    data = bytes(range(200))
    handle = await module.put(data)
    async with await module.get_read_stream(handle, start=50, end=150) as stream:
        assert await stream.read(10) == data[50:60]
        await stream.seek(5)  # backwards: the adapter reopens and skips forward
        assert await stream.read() == data[55:150]


async def test_errors_are_translated_and_chained(tmp_path):
    class Failing(_Minimal):
        def get_size(self, context, module_data):
            raise PermissionError("no")

        def delete(self, context, module_data):
            raise RuntimeError("boom")

    module = from_sync_module(Failing())
    with pytest.raises(PermissionDeniedError) as denied:
        await module.get_size("h")
    assert isinstance(denied.value.__cause__, PermissionError)
    with pytest.raises(StorageError, match="RuntimeError: boom") as failed:
        await module.delete("h")
    assert failed.value.handle == "h"


async def test_a_short_legacy_stream_is_an_integrity_error():
    class Lying(_Minimal):
        def get_size(self, context, module_data):
            return 100

    module = from_sync_module(Lying())
    handle = await module.put(b"only ten..")
    async with await module.get_read_stream(handle) as stream:
        with pytest.raises(IntegrityError, match="ended at byte 10 of 100"):
            await stream.read()


async def test_a_swallowed_source_failure_still_propagates_and_stores_nothing(tmp_path):
    class Swallowing(SimpleModule):
        def put(self, context, stream):
            module_data = self.new_data(context)
            try:
                self.assign(context, module_data, stream)
            except Exception:
                with open(self._path(module_data), "wb") as file:
                    file.write(b"partial")
            return module_data

    class Broken(Exception):
        pass

    async def source():
        yield b"some"
        raise Broken

    module = from_sync_module(Swallowing(str(tmp_path)))
    with pytest.raises(Broken):
        await module.put(source())
    assert [p.name for p in tmp_path.iterdir()] == []


async def test_legacy_calls_are_bounded_by_max_threads():
    running = 0
    peak = 0
    lock = threading.Lock()

    class Slow(_Minimal):
        def get_size(self, context, module_data):
            nonlocal running, peak
            with lock:
                running += 1
                peak = max(peak, running)
            time.sleep(0.02)
            with lock:
                running -= 1
            return 1

    module = from_sync_module(Slow(), max_threads=3)
    async with anyio.create_task_group() as group:
        for _ in range(12):
            group.start_soon(module.get_size, "h")
    assert peak == 3


async def test_copy_saturating_the_threads_does_not_deadlock(tmp_path):
    module = from_sync_module(SimpleModule(str(tmp_path), chunk_size=1000), max_threads=2)
    handle = await module.put(bytes(range(256)) * 1000)
    with anyio.fail_after(30):
        async with anyio.create_task_group() as group:
            for _ in range(6):
                group.start_soon(module.copy, handle)


def test_not_a_legacy_module_is_a_type_error():
    with pytest.raises(TypeError, match="get_read_stream"):
        from_sync_module(object())


def test_a_sync_store_over_a_legacy_module(tmp_path):
    with SyncStore(from_sync_module(SimpleModule(str(tmp_path)))) as store:
        handle = store.put(iter([b"legacy ", b"callers"]))
        with store.get_read_stream(handle) as stream:
            assert stream.read() == b"legacy callers"
        store.delete(handle)
        assert not store.available(handle)
    assert isinstance(store.module, StorageModule)
