"""The prefix sub-store: handles relative to the prefix, and no way out of it."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import asyncstore_fs as fs
from asyncstore import open_store
from asyncstore.errors import (
    AlreadyExistsError,
    ConfigError,
    InvalidKeyError,
    NotFoundError,
    PreconditionFailedError,
)
from asyncstore.memory import MemoryModule
from asyncstore.middleware.prefix import PrefixModule
from asyncstore.streams import BytesReadStream
from tests.reliability.strategies import RELIABILITY, any_keys, key_problem, prefix_problem

from .helpers import read
from .views_helpers import PresigningModule, RecordingModule, TrustingModule, put_all

PREFIX = "tenants/acme/"
OUTSIDE = {"tenants/acme": b"o1", "tenants/acme-old/x": b"o2", "tenants/b/x": b"o3", "z": b"o4"}

escapes = st.sampled_from(
    ["..", "../b/x", "../../z", "a/../../b", "./x", "x/.", "/z", "//z", "x//y", "", "a/", "..a"]
)


def room() -> int:
    return 1024 - len(PREFIX)


def refused(handle: object) -> bool:
    """Whether the sub-store must refuse ``handle``: the key rules, and the room left."""
    return key_problem(handle) is not None or len(str(handle).encode()) > room()


def climbs(handle: object) -> bool:
    """Whether ``handle`` could name a key outside the prefix, were it taken as a path."""
    if not isinstance(handle, str):
        return True
    return handle.startswith("/") or any(part in (".", "..") for part in handle.split("/"))


def inside(key: str) -> bool:
    """Whether a key beneath lies inside the prefix, even for a store that reads it as a path."""
    return key.startswith(PREFIX) and not climbs(key[len(PREFIX) :])


def operations(store: PrefixModule, handle: Any) -> list[Callable[[], Awaitable[object]]]:
    return [
        lambda: store.put(b"new", key=handle),
        lambda: store.assign(handle, b"new"),
        lambda: store.copy("src", key=handle),
        lambda: store.stat(handle),
        lambda: store.get_read_stream(handle),
        lambda: store.available(handle),
        lambda: store.delete(handle),
    ]


@settings(RELIABILITY, max_examples=300)
@given(handle=st.one_of(any_keys, escapes))
@example(handle="x" * room())
@example(handle="x" * (room() + 1))
def test_no_handle_reaches_a_key_outside_the_prefix(handle: object) -> None:
    async def check() -> None:
        inner = RecordingModule()
        await put_all(inner, OUTSIDE)
        inner.calls.clear()
        async with PrefixModule(inner=inner, prefix=PREFIX) as store:
            store.name = "acme"
            if refused(handle):
                for operation in operations(store, handle):
                    with pytest.raises(InvalidKeyError) as caught:
                        await operation()
                    assert caught.value.store == "acme"
                assert inner.keys() == sorted(OUTSIDE), "a refused handle stored something"
                if climbs(handle):
                    assert inner.calls == [], "a handle that climbs reached the store beneath"
            else:
                assert isinstance(handle, str)
                await store.put(b"src", key="src")
                assert await store.put(b"new", key=handle) == handle
                assert await read(inner, PREFIX + handle) == b"new"
                assert (await store.stat(handle)).handle == handle
                assert [info.handle async for info in store.list()] == sorted({"src", handle})
                await store.delete(handle)
            for method, key in inner.calls:
                assert key is None or inside(str(key)), (method, key)
            for key, data in OUTSIDE.items():
                assert await read(inner, key) == data
            assert [k for k in inner.keys() if not k.startswith(PREFIX)] == sorted(OUTSIDE)

    anyio.run(check)


@settings(RELIABILITY, max_examples=200)
@given(handle=st.one_of(any_keys, escapes))
def test_no_handle_escapes_even_a_store_that_applies_no_key_rules(handle: object) -> None:
    async def check() -> None:
        inner = TrustingModule()
        inner.objects.update(OUTSIDE)
        async with PrefixModule(inner=inner, prefix=PREFIX) as store:
            await store.put(b"src", key="src")
            for operation in operations(store, handle):
                with contextlib.suppress(InvalidKeyError, NotFoundError):
                    await operation()
        assert all(inside(key) for key in inner.seen), inner.seen
        assert {k: v for k, v in inner.objects.items() if not k.startswith(PREFIX)} == OUTSIDE

    anyio.run(check)


@settings(RELIABILITY, max_examples=150)
@given(prefix=st.one_of(any_keys, escapes, st.sampled_from(["", "a", "tenants/acme"])))
def test_listing_never_leaves_the_prefix(prefix: object) -> None:
    async def check() -> None:
        inner = RecordingModule()
        await put_all(inner, {**OUTSIDE, PREFIX + "a": b"in", PREFIX + "b/c": b"in"})
        inner.calls.clear()
        async with PrefixModule(inner=inner, prefix=PREFIX) as store:
            if prefix_problem(prefix) is not None or len(str(prefix).encode()) > room():
                with pytest.raises(InvalidKeyError):
                    [info async for info in store.list(prefix)]  # type: ignore[arg-type]
                assert inner.calls == []
                return
            assert isinstance(prefix, str)
            listed = [info.handle async for info in store.list(prefix)]
            assert listed == [key for key in ("a", "b/c") if key.startswith(prefix)]
            assert inner.calls == [("list", PREFIX + prefix)]

    anyio.run(check)


@pytest.mark.anyio
async def test_nothing_outside_the_prefix_directory_is_touched(tmp_path: Path) -> None:
    root = tmp_path / "store"
    inner = fs.FileSystemModule(root=str(root), fsync=False)
    await inner.put(b"neighbour", key="sub-other/x")
    before = sorted(os.walk(tmp_path))
    async with PrefixModule(inner=inner, prefix="sub") as store:
        for handle in ("../sub-other/x", "../../escape", "a/../../x", "..", "/etc/passwd"):
            with pytest.raises(InvalidKeyError):
                await store.put(b"evil", key=handle)
            with pytest.raises(InvalidKeyError):
                await store.delete(handle)
        assert sorted(os.walk(tmp_path)) == before
        await store.put(b"fine", key="a/b")
    assert (root / "sub" / "a" / "b").read_bytes() == b"fine"
    assert (root / "sub-other" / "x").read_bytes() == b"neighbour"


@pytest.mark.anyio
async def test_handles_streams_and_errors_are_relative() -> None:
    inner = MemoryModule()
    async with PrefixModule(inner=inner, prefix="tenants/acme") as store:
        store.name = "acme"
        assert store.prefix == PREFIX
        handle = await store.put(b"hello", key="docs/a.txt", metadata={"v": "1"})
        assert handle == "docs/a.txt" and handle.etag == (await inner.stat(PREFIX + handle)).etag
        async with await store.get_read_stream("docs/a.txt", start=1) as stream:
            assert isinstance(stream, BytesReadStream)  # the store's own stream, not a wrapper
            assert stream.info.handle == "docs/a.txt"
            assert stream.info.metadata == {"v": "1"}
            assert await stream.read() == b"ello"
        with pytest.raises(NotFoundError) as caught:
            await store.stat("docs/missing")
        assert str(caught.value) == "no such object (store 'acme', handle 'docs/missing')"
        assert isinstance(caught.value.__cause__, NotFoundError)
        assert caught.value.__cause__.handle == PREFIX + "docs/missing"


@pytest.mark.anyio
async def test_conditions_and_copies_pass_through() -> None:
    inner = RecordingModule()
    async with PrefixModule(inner=inner, prefix=PREFIX) as store:
        first = await store.put(b"v1", key="k")
        with pytest.raises(AlreadyExistsError):
            await store.put(b"v2", key="k", overwrite=False)
        second = await store.put(b"v2", key="k", if_match=first.etag)
        with pytest.raises(PreconditionFailedError):
            await store.put(b"v3", key="k", if_match=first.etag)
        with pytest.raises(PreconditionFailedError):
            await store.delete("k", if_match=first.etag)
        assert (await store.stat("k")).etag == second.etag == (await inner.stat(PREFIX + "k")).etag
        copied = await store.copy("k")  # a fresh handle, inside the prefix
        assert await read(inner, PREFIX + copied) == b"v2"
        assert ("copy", PREFIX + "k") in inner.calls  # the store's own copy (server-side)
        with pytest.raises(AlreadyExistsError):
            await store.copy("k", key=copied, overwrite=False)
        await store.delete("k", if_match=second.etag)
        assert inner.keys() == [PREFIX + copied]


@pytest.mark.anyio
async def test_key_length_left_to_callers() -> None:
    async with PrefixModule(inner=MemoryModule(), prefix=PREFIX) as store:
        limit = store.capabilities()["max_key_bytes"]
        assert limit == 1024 - len(PREFIX.encode())
        longest = "é" * (limit // 2) + "x" * (limit % 2)
        await store.put(b"x", key=longest)
        with pytest.raises(InvalidKeyError, match=f"the limit in this store is {limit}"):
            await store.put(b"x", key=longest + "x")
        nested = PrefixModule(inner=store, prefix="inner")
        assert nested.capabilities()["max_key_bytes"] == limit - len("inner/")
        await nested.put(b"deep", key="k")
        assert await read(store, "inner/k") == b"deep"


@pytest.mark.anyio
async def test_statistics_stay_inside() -> None:
    inner = MemoryModule(max_bytes=1000)
    await put_all(inner, {"other/big": b"x" * 500, PREFIX + "a": b"12345"})
    async with PrefixModule(inner=inner, prefix=PREFIX) as store:
        await store.put(b"123", key="b")
        stats = await store.statistics()
    assert stats == {
        "capacity": {"total": 1000, "used": 8, "free": 1000 - 508},
        "prefix": {"objects": 2, "bytes": 8},
    }


@pytest.mark.anyio
async def test_presign_names_the_key_beneath() -> None:
    async with PrefixModule(inner=PresigningModule(), prefix=PREFIX) as store:
        assert f"/{PREFIX}doc?method=GET" in await store.presign("doc")
        with pytest.raises(InvalidKeyError):
            await store.presign("../doc")


@pytest.mark.parametrize("prefix", ["", "/", "/abs", "a//b", "../up", "a/./b", "x\x00", 5])
def test_malformed_prefixes_are_config_errors(prefix: object) -> None:
    with pytest.raises(ConfigError, match="prefix"):
        PrefixModule(inner=MemoryModule(), prefix=prefix)  # type: ignore[arg-type]


def test_a_store_that_chooses_its_handles_is_refused() -> None:
    class Unkeyed(MemoryModule):
        keyed = False

    with pytest.raises(ConfigError, match="takes keys"):
        PrefixModule(inner=Unkeyed(), prefix="p")


@pytest.mark.anyio
async def test_configured_by_name(tmp_path: Path) -> None:
    config = tmp_path / "asyncstore.toml"
    config.write_text(
        f"""
[stores.local]
module = "fs"
root = "{tmp_path / "blobs"}"
fsync = false

[stores.acme]
module = "prefix"
inner = "local"
prefix = "tenants/acme"
"""
    )
    async with open_store("acme", config=config) as store:
        assert isinstance(store, PrefixModule)
        await store.put(b"invoice", key="2026/01.pdf")
    assert (tmp_path / "blobs" / "tenants" / "acme" / "2026" / "01.pdf").read_bytes() == b"invoice"
