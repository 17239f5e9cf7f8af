"""The mount module: routing by longest prefix, merged streaming listings, copies across mounts."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from asyncstore import open_store
from asyncstore.errors import (
    AlreadyExistsError,
    ConfigError,
    InvalidKeyError,
    NotFoundError,
    PermissionDeniedError,
    PreconditionFailedError,
    StorageError,
    UnsupportedError,
)
from asyncstore.info import ObjectInfo
from asyncstore.memory import MemoryModule
from asyncstore.middleware.dedup import DedupModule
from asyncstore.middleware.mount import MountModule
from asyncstore.middleware.prefix import PrefixModule
from asyncstore.middleware.readonly import ReadOnlyModule
from asyncstore.module import StorageModule
from asyncstore.streams import ByteSource, ReadStream

from .helpers import read
from .views_helpers import RecordingModule, put_all

pytestmark = pytest.mark.anyio


def three() -> tuple[MemoryModule, MemoryModule, MemoryModule]:
    return MemoryModule(), MemoryModule(), MemoryModule()


async def test_keys_go_to_the_longest_mount_point_without_it() -> None:
    media, thumbs, root = three()
    async with MountModule(mounts={"media/": media, "data/thumbs/": thumbs, "": root}) as store:
        for key in ("media/cat.jpg", "data/thumbs/cat.jpg", "data/raw/cat.jpg", "media", "x"):
            await store.put(key.encode(), key=key)
        assert sorted(media._objects) == ["cat.jpg"]
        assert sorted(thumbs._objects) == ["cat.jpg"]
        assert sorted(root._objects) == ["data/raw/cat.jpg", "media", "x"]
        for key in ("media/cat.jpg", "data/thumbs/cat.jpg", "data/raw/cat.jpg"):
            assert await read(store, key) == key.encode()
            info = await store.stat(key)
            assert info.handle == key
            async with await store.get_read_stream(key) as stream:
                assert stream.info.handle == key
        assert [info.handle async for info in store.list()] == [
            "data/raw/cat.jpg",
            "data/thumbs/cat.jpg",
            "media",
            "media/cat.jpg",
            "x",
        ]


async def test_root_keys_under_another_mount_point_are_hidden() -> None:
    media, root = MemoryModule(), MemoryModule()
    await put_all(root, {"media/old.jpg": b"hidden", "a": b"shown"})
    await media.put(b"new", key="new.jpg")
    async with MountModule(mounts={"": root, "media/": media}) as store:
        assert [info.handle async for info in store.list()] == ["a", "media/new.jpg"]
        assert [info.handle async for info in store.list("me")] == ["media/new.jpg"]
        assert not await store.available("media/old.jpg")
        with pytest.raises(NotFoundError):
            await store.stat("media/old.jpg")


class _CountingListings(MemoryModule):
    """Counts the objects its listings have handed out, and which listings were closed."""

    def __init__(self) -> None:
        super().__init__()
        self.pulled = 0
        self.closed = 0

    async def list(self, prefix: str = "") -> AsyncIterator[ObjectInfo]:
        try:
            async for info in super().list(prefix):
                self.pulled += 1
                yield info
        finally:
            self.closed += 1


async def test_listings_are_merged_as_they_stream() -> None:
    stores = [_CountingListings() for _ in range(3)]
    for index, store in enumerate(stores):
        # Interleaved handles: the merge must take from every store in turn.
        await put_all(store, {f"{n:04d}-{index}": b"" for n in range(500)})
    mounts: dict[str, StorageModule] = {"a/": stores[0], "b/": stores[1], "": stores[2]}
    async with MountModule(mounts=mounts) as store:
        listing = store.list()
        first = [(await anext(listing)).handle for _ in range(10)]
        assert first == sorted(first)
        assert first[:3] == ["0000-2", "0001-2", "0002-2"]  # the root's come before a/ and b/
        assert all(counting.pulled <= 11 for counting in stores), [s.pulled for s in stores]
        await listing.aclose()  # type: ignore[attr-defined]
        assert [counting.closed for counting in stores] == [1, 1, 1]
        everything = [info.handle async for info in store.list()]
    assert len(everything) == 1500
    assert everything == sorted(everything)
    assert everything[500] == "a/0000-0" and everything[1000] == "b/0000-1"


class _StreamedPuts(MemoryModule):
    """Records the kind of source each put was given."""

    def __init__(self) -> None:
        super().__init__()
        self.sources: list[type] = []

    async def put(self, source: ByteSource, **kwargs: Any) -> str:
        self.sources.append(type(source))
        return await super().put(source, **kwargs)


async def test_copies_across_mounts_stream_between_the_stores() -> None:
    source, target = RecordingModule(), _StreamedPuts()
    data = bytes(range(256)) * 12_000  # 3 MB
    async with MountModule(mounts={"hot/": source, "cold/": target}) as store:
        await store.put(data, key="hot/big.bin", metadata={"v": "1"}, content_type="x/y")
        copied = await store.copy("hot/big.bin", key="cold/archive/big.bin")
        assert copied == "cold/archive/big.bin"
        assert copied.etag == (await target.stat("archive/big.bin")).etag  # type: ignore[attr-defined]
        assert len(target.sources) == 1 and issubclass(target.sources[0], ReadStream)
        info = await store.stat("cold/archive/big.bin")
        assert (info.size, dict(info.metadata), info.content_type) == (len(data), {"v": "1"}, "x/y")
        assert await read(store, "cold/archive/big.bin") == data
        # Within one mount, the store copies by itself (memory: no bytes move).
        await store.copy("hot/big.bin", key="hot/again.bin")
        assert ("copy", "big.bin") in source.calls
        fresh = await store.copy("hot/big.bin")  # no key: a fresh handle in the same mount
        assert fresh.startswith("hot/") and await read(source, fresh[4:]) == data
        # Conditions pass through to the store that owns the target.
        with pytest.raises(AlreadyExistsError):
            await store.copy("hot/big.bin", key="cold/archive/big.bin", overwrite=False)
        with pytest.raises(PreconditionFailedError):
            await store.copy("hot/big.bin", key="cold/other", if_match="nope")
        with pytest.raises(NotFoundError) as caught:
            await store.copy("hot/missing", key="cold/x")
        assert caught.value.handle == "hot/missing"


async def test_conditions_pass_through_to_the_owning_store() -> None:
    media, root = MemoryModule(), MemoryModule()
    async with MountModule(mounts={"media/": media, "": root}) as store:
        first = await store.put(b"v1", key="media/k")
        assert first.etag == (await media.stat("k")).etag  # type: ignore[attr-defined]
        with pytest.raises(AlreadyExistsError):
            await store.put(b"v2", key="media/k", overwrite=False)
        await store.assign("media/k", b"v2", if_match=first.etag)  # type: ignore[attr-defined]
        with pytest.raises(PreconditionFailedError):
            await store.delete("media/k", if_match=first.etag)  # type: ignore[attr-defined]
        with pytest.raises(PreconditionFailedError):
            await store.get_read_stream("media/k", if_match=first.etag)  # type: ignore[attr-defined]
        assert await read(store, "media/k") == b"v2"


async def test_capabilities_are_what_every_mount_offers() -> None:
    mounts: dict[str, StorageModule] = {
        "d/": DedupModule(inner=MemoryModule()),  # no conditions
        "p/": PrefixModule(inner=MemoryModule(), prefix="x" * 100),
        "": MemoryModule(),
    }
    async with MountModule(mounts=mounts) as store:
        capabilities = store.capabilities()
        assert capabilities["conditional_create"] is False
        assert capabilities["list"] is True and capabilities["named_keys"] is True
        assert capabilities["server_side_copy"] is False  # copies across mounts stream
        assert capabilities["writable"] is True
        assert capabilities["max_key_bytes"] == 1024 - 101 + len("p/")
        assert capabilities["cdmi_encryption"] == []
        with pytest.raises(UnsupportedError):
            await store.put(b"x", key="k", overwrite=False)  # refused before any I/O
        assert not await store.available("k")


async def test_read_only_mounts() -> None:
    archive, root = MemoryModule(), RecordingModule()
    await archive.put(b"old", key="2020.tar")
    mounts: dict[str, StorageModule] = {"archive/": ReadOnlyModule(inner=archive), "": root}
    async with MountModule(mounts=mounts) as store:
        capabilities = store.capabilities()
        assert capabilities["writable"] is capabilities["delete"] is True
        assert capabilities["new_data"] is True  # the root's
        assert await read(store, "archive/2020.tar") == b"old"
        with pytest.raises(PermissionDeniedError) as caught:
            await store.delete("archive/2020.tar")
        assert caught.value.handle == "archive/2020.tar"
        await store.copy("archive/2020.tar", key="restored.tar")
        assert await read(store, "restored.tar") == b"old"
        assert await store.cleanup() == {"leftovers": 0}  # the read-only mount is left alone
    async with MountModule(mounts={"": ReadOnlyModule(inner=MemoryModule())}) as store:
        capabilities = store.capabilities()
        assert not any(capabilities[name] for name in ("writable", "new_data", "delete"))


async def test_keys_outside_every_mount() -> None:
    async with MountModule(mounts={"a/": MemoryModule(), "b/": MemoryModule()}) as store:
        with pytest.raises(InvalidKeyError, match=r"no mount holds this key.*'a/', 'b/'"):
            await store.put(b"x", key="c/x")
        with pytest.raises(NotFoundError):
            await store.stat("c/x")
        assert not await store.available("c/x")
        await store.delete("c/x")
        with pytest.raises(PreconditionFailedError):
            await store.delete("c/x", if_match="etag")
        assert [info async for info in store.list("c/")] == []
        handle = await store.put(b"anywhere")
        assert handle.startswith("a/")  # the first mount makes new handles without a root
        for bad in ("../a/x", "a//x", "a/../b", "", "/a/x", "a/" + "x" * 1023, 5):
            with pytest.raises(InvalidKeyError):
                await store.stat(bad)  # type: ignore[arg-type]


async def test_errors_name_the_mount_store_and_handle() -> None:
    async with MountModule(mounts={"media/": MemoryModule(), "": MemoryModule()}) as store:
        store.name = "app"
        with pytest.raises(NotFoundError) as caught:
            await store.stat("media/missing.jpg")
        assert str(caught.value) == "no such object (store 'app', handle 'media/missing.jpg')"
        assert isinstance(caught.value.__cause__, StorageError)
        assert caught.value.__cause__.handle == "missing.jpg"
        with pytest.raises(InvalidKeyError) as invalid:
            await store.put(b"x", key="media/../x")
        assert invalid.value.store == "app" and ".." in str(invalid.value)


async def test_statistics_per_mount_and_in_total() -> None:
    first, second = MemoryModule(max_bytes=100), MemoryModule(max_bytes=50)
    async with MountModule(mounts={"a/": first, "b/": second}) as store:
        await store.put(b"x" * 10, key="a/1")
        await store.put(b"x" * 5, key="b/1")
        stats = await store.statistics()
        assert stats["capacity"] == {"total": 150, "used": 15, "free": 135}
        assert stats["mount"]["mounts"]["a/"]["objects"] == 1
        assert stats["mount"]["mounts"]["b/"]["capacity"]["used"] == 5
    async with MountModule(mounts={"a/": MemoryModule(max_bytes=5), "": MemoryModule()}) as store:
        assert (await store.statistics())["capacity"] == {"total": None, "used": 0, "free": None}


class _FailingClose(MemoryModule):
    async def aclose(self) -> None:
        raise OSError("cannot close")


async def test_every_store_is_closed_once() -> None:
    closed: list[str] = []

    class Closing(MemoryModule):
        async def aclose(self) -> None:
            closed.append(self.name)

    shared, other = Closing(), Closing()
    shared.name, other.name = "shared", "other"
    store = MountModule(mounts={"a/": shared, "b/": shared, "": _FailingClose(), "c/": other})
    with pytest.raises(OSError, match="cannot close"):
        await store.aclose()
    assert closed == ["shared", "other"]


@pytest.mark.parametrize(
    ("mounts", "message"),
    [
        ({"media/": "m", "media/x/": "m"}, "'media/' and 'media/x/' overlap"),
        ({"a/": "m", "a/b/c/": "m", "a/b/": "m"}, "overlap"),
        ({"media": "m", "media/": "m"}, "are the same"),
        ({"/abs/": "m"}, "mount point"),
        ({"a//b/": "m"}, "mount point"),
        ({"../up/": "m"}, "mount point"),
        ({}, "non-empty table"),
        ("media/=m", "non-empty table"),
    ],
)
def test_bad_mount_tables_are_config_errors(mounts: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        MountModule(mounts=mounts)


def test_mount_points_that_only_share_characters_do_not_overlap() -> None:
    store = MountModule(
        mounts={"media/": MemoryModule(), "media-old/": MemoryModule(), "": MemoryModule()}
    )
    assert list(store.mounts) == ["media/", "media-old/", ""]


def test_stores_that_choose_their_handles_are_refused() -> None:
    class Unkeyed(MemoryModule):
        keyed = False

    with pytest.raises(ConfigError, match="chooses its own handles"):
        MountModule(mounts={"a/": Unkeyed()})


async def test_configured_by_name(tmp_path: Path) -> None:
    config = tmp_path / "asyncstore.toml"
    config.write_text(
        f"""
[stores.media]
module = "fs"
root = "{tmp_path / "media"}"
fsync = false

[stores.default]
module = "fs"
root = "{tmp_path / "default"}"
fsync = false

[stores.app]
module = "mount"
mounts = {{ "media/" = "media", "cache/" = "memory://", "" = "default" }}
"""
    )
    async with open_store("app", config=config) as store:
        assert isinstance(store, MountModule)
        await store.put(b"jpg", key="media/cat.jpg")
        await store.put(b"tmp", key="cache/x")
        await store.put(b"txt", key="notes.txt")
        assert [info.handle async for info in store.list()] == [
            "cache/x",
            "media/cat.jpg",
            "notes.txt",
        ]
    assert (tmp_path / "media" / "cat.jpg").read_bytes() == b"jpg"
    assert (tmp_path / "default" / "notes.txt").read_bytes() == b"txt"
    config.write_text(
        config.read_text().replace('"cache/" = "memory://"', '"media/x/" = "memory://"')
    )
    with pytest.raises(ConfigError, match="overlap"):
        open_store("app", config=config)
