"""The readonly view: reads are the store's own, writes are refused before the store is asked."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from asyncstore import open_store
from asyncstore.errors import (
    InvalidConditionError,
    InvalidKeyError,
    InvalidMetadataError,
    NotFoundError,
    PermissionDeniedError,
)
from asyncstore.memory import MemoryModule
from asyncstore.middleware.readonly import ReadOnlyModule
from asyncstore.module import StorageModule
from asyncstore.testing._readonly import ReadOnlyTests

from .helpers import read
from .views_helpers import PresigningModule, RecordingModule

pytestmark = pytest.mark.anyio


async def test_reads_are_the_stores_own_methods() -> None:
    inner = MemoryModule()
    await inner.put(b"shown", key="a/b", metadata={"k": "v"})
    async with ReadOnlyModule(inner=inner) as view:
        for name in ("get_read_stream", "stat", "get_size", "available", "list"):
            assert getattr(view, name) == getattr(inner, name), name
        assert await read(view, "a/b") == b"shown"
        assert (await view.stat("a/b")).metadata == {"k": "v"}
        assert [info.handle async for info in view.list("a/")] == ["a/b"]
        with pytest.raises(NotFoundError):
            await view.stat("missing")


async def test_every_write_is_refused_before_the_store_is_asked() -> None:
    inner = RecordingModule()
    await inner.put(b"kept", key="kept")
    inner.calls.clear()
    async with ReadOnlyModule(inner=inner) as view:
        writes: list[Any] = [
            view.put(b"x", key="kept"),
            view.put(b"x"),
            view.new_data(),
            view.assign("new", b"x"),
            view.copy("kept", key="new"),
            view.copy("kept"),
            view.delete("kept"),
            view.delete("missing"),
            view.cleanup(older_than=0),
        ]
        for write in writes:
            with pytest.raises(PermissionDeniedError, match="read-only") as caught:
                await write
            assert isinstance(caught.value, PermissionError)
            assert caught.value.store == view.name
        assert inner.calls == []
        assert await read(inner, "kept") == b"kept"
        stats = await view.statistics()
        assert stats["readonly"] == {"refused_writes": len(writes)}


async def test_malformed_arguments_get_their_own_errors_first() -> None:
    async with ReadOnlyModule(inner=MemoryModule()) as view:
        with pytest.raises(InvalidKeyError):
            await view.put(b"x", key="../escape")
        with pytest.raises(InvalidKeyError):
            await view.delete("a//b")
        with pytest.raises(InvalidMetadataError):
            await view.put(b"x", key="k", metadata={"Bad Name": "x"})
        with pytest.raises(InvalidConditionError):
            await view.put(b"x", key="k", overwrite=False, if_match="etag")
        # Well-formed conditions are writes like any other.
        with pytest.raises(PermissionDeniedError):
            await view.put(b"x", key="k", overwrite=False)
        with pytest.raises(PermissionDeniedError):
            await view.delete("k", if_match="etag")


async def test_capabilities_declare_no_writes() -> None:
    async with ReadOnlyModule(inner=MemoryModule()) as view:
        capabilities = view.capabilities()
    assert capabilities["writable"] is False
    assert capabilities["new_data"] is False
    assert capabilities["assign"] is False
    assert capabilities["delete"] is False
    assert capabilities["conditional_create"] is False
    assert capabilities["conditional_replace"] is False
    assert capabilities["conditional_delete"] is False
    assert capabilities["conditional_read"] is True  # the memory module's, for reads
    assert capabilities["server_side_copy"] is False
    assert capabilities["list"] is True
    assert capabilities["named_keys"] is True


async def test_only_presigned_reads() -> None:
    inner = PresigningModule()
    await inner.put(b"x", key="doc")
    async with ReadOnlyModule(inner=inner) as view:
        assert view.capabilities()["presign"] is True
        assert "method=GET" in await view.presign("doc")
        assert "method=head" in await view.presign("doc", method="head")
        for method in ("PUT", "DELETE", "POST"):
            with pytest.raises(PermissionDeniedError):
                await view.presign("doc", method=method)


async def test_configured_by_name(tmp_path: Path) -> None:
    config = tmp_path / "asyncstore.toml"
    config.write_text(
        f"""
[stores.local]
module = "fs"
root = "{tmp_path / "blobs"}"
fsync = false

[stores.published]
module = "readonly"
inner = "local"
"""
    )
    async with open_store("local", config=config) as local:
        await local.put(b"report", key="reports/q3.pdf")
    async with open_store("published", config=config) as view:
        assert isinstance(view, ReadOnlyModule)
        assert view.name == "published"
        assert await read(view, "reports/q3.pdf") == b"report"
        with pytest.raises(PermissionDeniedError):
            await view.delete("reports/q3.pdf")
    async with open_store("local", config=config) as local:
        assert await local.available("reports/q3.pdf")


class _Seeded(ReadOnlyTests):
    async def seed(
        self, module: StorageModule, data: Any, *, key: str | None = None, **kwargs: Any
    ) -> str:
        assert isinstance(module, ReadOnlyModule)
        return await module.inner.put(data, key=key, **kwargs)


class _DeletingView(ReadOnlyModule):
    """A broken view that lets deletes through."""

    async def delete(self, handle: str, *, if_match: str | None = None) -> None:
        await self.inner.delete(handle, if_match=if_match)


class _ReadingView(ReadOnlyModule):
    """A broken view that reads the source before it refuses."""

    async def put(self, source: Any, **kwargs: Any) -> str:
        await self.inner.put(source, key="scratch")
        return await super().put(b"", **kwargs)


class _DeclaringDeletes(ReadOnlyModule):
    """A view that claims it can delete."""

    def capabilities(self) -> dict[str, Any]:
        return {**super().capabilities(), "delete": True}


class _RefusingMemory(MemoryModule):
    """A store that refuses writes without declaring it."""

    async def assign(self, handle: str, source: Any, **kwargs: Any) -> str:
        raise PermissionDeniedError("no", store=self.name, handle=handle)


async def test_the_suite_catches_a_view_that_writes() -> None:
    suite = _Seeded()
    check = suite.test_writes_follow_the_writable_capability
    async with _DeletingView(inner=MemoryModule()) as view:
        with pytest.raises(pytest.fail.Exception, match="DID NOT RAISE"):
            await check(view)
    async with _ReadingView(inner=MemoryModule()) as view:
        with pytest.raises(AssertionError, match="read the source"):
            await check(view)
    async with _DeclaringDeletes(inner=MemoryModule()) as view:
        with pytest.raises(AssertionError, match="declares 'delete'"):
            await check(view)
    async with _RefusingMemory() as store:
        with pytest.raises(PermissionDeniedError):
            await check(store)
    async with ReadOnlyModule(inner=MemoryModule()) as view:
        await check(view)
    async with MemoryModule() as store:
        await check(store)
