"""A minimal backend writes only the abstract core and inherits the rest."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from asyncstore import (
    NotFoundError,
    ObjectInfo,
    ReadStream,
    StorageModule,
    Store,
    UnsupportedError,
)
from asyncstore.streams import ByteSource, BytesReadStream, check_range, iter_source

pytestmark = pytest.mark.anyio


class DictModule(StorageModule):
    """Keeps objects in a dict: only assign, get_read_stream, stat and delete."""

    def __init__(self) -> None:
        self.objects: dict[str, tuple[bytes, ObjectInfo]] = {}

    async def assign(
        self,
        handle: str,
        source: ByteSource,
        *,
        metadata: Mapping[str, str] | None = None,
        content_type: str | None = None,
    ) -> None:
        data = b"".join([bytes(c) async for c in iter_source(source)])
        info = ObjectInfo(
            handle, len(data), metadata=dict(metadata or {}), content_type=content_type
        )
        self.objects[handle] = (data, info)

    async def get_read_stream(
        self, handle: str, *, start: int = 0, end: int | None = None
    ) -> ReadStream:
        check_range(start, end)
        if handle not in self.objects:
            raise self._not_found(handle)
        data, info = self.objects[handle]
        return BytesReadStream(data, info, start=start, end=end)

    async def stat(self, handle: str) -> ObjectInfo:
        if handle not in self.objects:
            raise self._not_found(handle)
        return self.objects[handle][1]

    async def delete(self, handle: str) -> None:
        self.objects.pop(handle, None)


async def test_inherited_defaults() -> None:
    async with DictModule() as module:
        handle = await module.put(b"abc", metadata={"m": "1"}, content_type="text/plain")
        assert await module.available(handle)
        assert await module.get_size(handle) == 3
        copy = await module.copy(handle, key="copy")
        assert copy == "copy"
        assert module.objects["copy"][0] == b"abc"
        assert dict(module.objects["copy"][1].metadata) == {"m": "1"}
        assert not await module.available("missing")
        with pytest.raises(NotFoundError):
            await module.get_size("missing")
        assert await module.statistics() == {
            "capacity": {"total": None, "used": None, "free": None}
        }
        with pytest.raises(UnsupportedError):
            await module.presign(handle)
        with pytest.raises(UnsupportedError):
            await module.reconfigure(x=1)
        with pytest.raises(UnsupportedError):
            [i async for i in module.list()]


def test_capabilities_are_derived_from_overrides() -> None:
    caps = DictModule().capabilities()
    assert caps["list"] is False
    assert caps["server_side_copy"] is False
    assert caps["presign"] is False
    assert caps["named_keys"] is True
    assert DictModule.class_capabilities() == caps


def test_a_module_must_write_somehow() -> None:
    class ReadOnly(StorageModule):
        async def get_read_stream(
            self, handle: str, *, start: int = 0, end: int | None = None
        ) -> ReadStream:
            raise NotImplementedError

        async def stat(self, handle: str) -> ObjectInfo:
            raise NotImplementedError

        async def delete(self, handle: str) -> None:
            raise NotImplementedError

    with pytest.raises(TypeError, match="put\\(\\) or assign\\(\\)"):
        ReadOnly()


def test_abstract_core_is_enforced() -> None:
    class Incomplete(StorageModule):
        async def assign(self, handle: str, source: ByteSource, **kw: object) -> None: ...

    with pytest.raises(TypeError, match="abstract"):
        Incomplete()  # type: ignore[abstract]


def test_modules_satisfy_the_caller_protocol() -> None:
    assert isinstance(DictModule(), Store)


def test_repr_names_the_store() -> None:
    module = DictModule()
    module.name = "archive"
    assert repr(module) == "<DictModule name='archive'>"


def test_metadata_handed_out_is_read_only() -> None:
    info = ObjectInfo("h", 1, metadata={"k": "v"})
    with pytest.raises(TypeError):
        info.metadata["k"] = "changed"  # type: ignore[index]


async def test_memory_metadata_cannot_be_changed_through_stat() -> None:
    from asyncstore.memory import MemoryModule

    async with MemoryModule() as module:
        await module.put(b"x", key="a", metadata={"k": "v"})
        with pytest.raises(TypeError):
            (await module.stat("a")).metadata["k"] = "bad\nvalue"  # type: ignore[index]
        await module.copy("a", key="b")
        assert dict((await module.stat("b")).metadata) == {"k": "v"}


class PutOnly(DictModule):
    """A keyed module that implements put, not assign."""

    assign = StorageModule.assign  # type: ignore[assignment]

    async def put(
        self,
        source: ByteSource,
        *,
        key: str | None = None,
        metadata: Mapping[str, str] | None = None,
        content_type: str | None = None,
    ) -> str:
        handle = key or "generated"
        await DictModule.assign(self, handle, source, metadata=metadata, content_type=content_type)
        return handle


async def test_keyed_put_only_module_assigns_through_put() -> None:
    module = PutOnly()
    await module.assign("chosen", b"data")
    assert module.objects["chosen"][0] == b"data"


def test_a_module_without_a_constructor_takes_no_options() -> None:
    from asyncstore import ConfigError, ModuleContext
    from asyncstore.registry import create_module

    with pytest.raises(ConfigError, match="unknown option"):
        create_module(NoInit, {"bogus": "1"}, context=ModuleContext("x"))


class NoInit(StorageModule):
    async def assign(self, handle: str, source: ByteSource, **kw: object) -> None: ...

    async def get_read_stream(
        self, handle: str, *, start: int = 0, end: int | None = None
    ) -> ReadStream:
        raise NotImplementedError

    async def stat(self, handle: str) -> ObjectInfo:
        raise NotImplementedError

    async def delete(self, handle: str) -> None: ...


def test_read_streams_check_their_range() -> None:
    from asyncstore import InvalidRangeError

    with pytest.raises(InvalidRangeError):
        BytesReadStream(b"0123456789", ObjectInfo("h", 10), start=-3)
