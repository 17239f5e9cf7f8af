"""No escape from the root, no partial objects, no leftovers, no leaks."""

from __future__ import annotations

import asyncio
import hashlib
import os
import time

import anyio
import anyio.lowlevel
import pytest

from asyncstore.errors import InvalidKeyError, NotFoundError, PermissionDeniedError
from asyncstore_fs import FileSystemModule

pytestmark = pytest.mark.anyio

TEMP_TAG = ".asyncstore-tmp\x7f"


@pytest.fixture(params=["openat2", "checked-path"])
async def store(tmp_path, request):
    async with FileSystemModule(root=str(tmp_path / "root")) as module:
        if request.param == "checked-path":
            # Where the kernel has no openat2, the layout checks the path it opened instead.
            module._layout._open_beneath = None
        else:
            assert module._layout._open_beneath is not None
        yield module


@pytest.fixture
def outside(tmp_path):
    path = tmp_path / "outside"
    path.mkdir()
    (path / "secret").write_bytes(b"not yours")
    return path


def write_file(path: str, data: bytes) -> None:
    with open(path, "wb") as file:
        file.write(data)


def is_link(path: str) -> bool:
    return os.path.islink(path)


def tree(root) -> list[str]:
    return sorted(
        os.path.relpath(os.path.join(directory, name), root)
        for directory, dirs, files in os.walk(root)
        for name in dirs + files
    )


def temporaries(root) -> list[str]:
    return [name for name in tree(root) if "\x7f" in name]


async def listed(store, prefix=""):
    return [info.handle async for info in store.list(prefix)]


async def test_symlinked_directory_leaving_the_root_is_refused(store, outside):
    os.symlink(outside, os.path.join(store.root, "link"))
    with pytest.raises(PermissionDeniedError, match="outside the store's root"):
        await store.stat("link/secret")
    with pytest.raises(PermissionDeniedError):
        await store.get_read_stream("link/secret")
    with pytest.raises(PermissionDeniedError):
        await store.put(b"planted", key="link/planted")
    with pytest.raises(PermissionDeniedError):
        await store.put(b"planted", key="link/deeper/planted")
    with pytest.raises(PermissionDeniedError):
        await store.delete("link/secret")
    with pytest.raises(PermissionDeniedError):
        await store.copy("link/secret", key="stolen")
    assert sorted(os.listdir(outside)) == ["secret"]
    assert (outside / "secret").read_bytes() == b"not yours"
    assert await listed(store) == []
    assert await listed(store, "link/") == []


async def test_symlinked_file_leaving_the_root_is_refused(store, outside):
    os.symlink(outside / "secret", os.path.join(store.root, "alias"))
    with pytest.raises(PermissionDeniedError):
        await store.stat("alias")
    assert await listed(store) == []
    # Storing under that key replaces the link itself, never the file it points to.
    await store.put(b"mine", key="alias")
    assert (outside / "secret").read_bytes() == b"not yours"
    assert not is_link(os.path.join(store.root, "alias"))


async def test_symlinks_inside_the_root_are_followed(store):
    await store.put(b"real", key="real/x")
    os.symlink("real", os.path.join(store.root, "same"))
    os.symlink("real/x", os.path.join(store.root, "file-link"))
    async with await store.get_read_stream("same/x") as stream:
        assert await stream.read() == b"real"
    assert (await store.stat("file-link")).size == 4
    assert await listed(store) == ["file-link", "real/x"]  # linked directories are not walked


@pytest.mark.parametrize(
    "key", ["../escape", "a/../../escape", "/etc/passwd", "a//b", "a/./b", "a\x00b"]
)
async def test_bad_keys_touch_nothing(store, key):
    before = tree(os.path.dirname(store.root))
    with pytest.raises(InvalidKeyError):
        await store.put(b"x", key=key)
    with pytest.raises(InvalidKeyError):
        await store.get_read_stream(key)
    with pytest.raises(InvalidKeyError):
        await store.delete(key)
    assert tree(os.path.dirname(store.root)) == before


async def test_leftover_temporaries_are_invisible_and_cleaned(store):
    await store.put(b"kept", key="d/kept")
    old = time.time() - 7200
    for path in (
        os.path.join(store.root, TEMP_TAG + "deadbeef"),
        os.path.join(store.root, "d", TEMP_TAG + "cafe"),
    ):
        write_file(path, b"partial")
        os.utime(path, (old, old))
    fresh = os.path.join(store.root, "d", TEMP_TAG + "fresh")
    write_file(fresh, b"a write in progress elsewhere")
    assert await listed(store) == ["d/kept"]
    assert await store.remove_temporaries(older_than=3600) == 2
    assert temporaries(store.root) == ["d/" + TEMP_TAG + "fresh"]
    assert await store.remove_temporaries(older_than=0) == 1
    assert temporaries(store.root) == []
    assert await listed(store) == ["d/kept"]


async def test_a_failing_source_leaves_nothing(store):
    await store.put(b"old", key="k")

    class Boom(Exception):
        pass

    async def source(total):
        sent = 0
        while sent < total:
            yield b"\1" * 65536
            sent += 65536
        raise Boom

    for total in (0, 65536, 10 << 20):  # fails before, at and after the streaming switch
        with pytest.raises(Boom):
            await store.put(source(total), key="k")
        with pytest.raises(Boom):
            await store.put(source(total), key="new/key")
    async with await store.get_read_stream("k") as stream:
        assert await stream.read() == b"old"
    assert temporaries(store.root) == []
    assert await listed(store) == ["k"]
    with pytest.raises(NotFoundError):
        await store.stat("new/key")
    assert tree(store.root) == ["k"]  # not even the directory made for "new/key"


async def test_a_strided_buffer_is_refused_with_what_is_accepted(store):
    with pytest.raises(TypeError, match="accepted"):
        await store.put(memoryview(b"abcdef")[::2], key="d/strided")
    assert tree(store.root) == []


async def test_a_failing_source_keeps_directories_that_hold_objects(store):
    await store.put(b"old", key="d/e/kept")

    async def source():
        yield b"\1" * (1 << 20)
        raise RuntimeError("the source failed")

    with pytest.raises(RuntimeError):
        await store.put(source(), key="d/e/f/g/new")
    assert tree(store.root) == ["d", "d/e", "d/e/kept"]


@pytest.mark.parametrize("xattrs", [True, False])
async def test_segment_limit_holds_with_metadata(tmp_path, xattrs):
    # A sidecar is named after its object plus a suffix: the limit leaves room for it.
    async with FileSystemModule(root=str(tmp_path / "s"), xattrs=xattrs, fsync=False) as store:
        limit = store.capabilities()["max_segment_bytes"]
        assert limit == os.pathconf(store.root, "PC_NAME_MAX") - (0 if xattrs else 5)
        longest = "d/" + "n" * limit
        await store.put(b"x", key=longest, metadata={"a": "1"}, content_type="text/plain")
        info = await store.stat(longest)
        assert (dict(info.metadata), info.content_type) == ({"a": "1"}, "text/plain")
        await store.delete(longest)
        for key in ("d/" + "n" * (limit + 1), "n" * (limit + 1) + "/k"):
            for call in (store.put(b"x", key=key), store.stat(key), store.delete(key)):
                with pytest.raises(InvalidKeyError, match="segment"):
                    await call
        assert tree(store.root) == []


async def test_cancelled_writes_leave_no_temporaries_or_descriptors(tmp_path):
    async with FileSystemModule(root=str(tmp_path / "c"), fsync=False) as store:
        fds_before = len(os.listdir("/proc/self/fd"))

        async def slow_source():
            for _ in range(64):
                yield b"\2" * (1 << 20)
                await anyio.lowlevel.checkpoint()

        for delay in (0, 0.001, 0.005, 0.02):
            with anyio.move_on_after(delay):
                await store.put(slow_source(), key="cancelled")
        tasks = [asyncio.ensure_future(store.get_read_stream("missing")) for _ in range(50)]
        await store.put(b"small", key="small")
        await store.put(b"\3" * (1 << 20), key="big")  # read lazily: its stream holds an fd
        for key in ("small", "big"):
            tasks += [asyncio.ensure_future(store.get_read_stream(key)) for _ in range(50)]
        await asyncio.sleep(0)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await store.stat("small")  # runs after every abandoned call in the worker
    await asyncio.sleep(0.05)
    assert temporaries(str(tmp_path / "c")) == []
    assert len(os.listdir("/proc/self/fd")) <= fds_before


async def test_unclosed_streams_give_their_descriptor_back(store):
    await store.put(os.urandom(1 << 20), key="big")
    fds_before = len(os.listdir("/proc/self/fd"))
    for _ in range(20):
        stream = await store.get_read_stream("big")
        await stream.read(10)
        del stream
    assert len(os.listdir("/proc/self/fd")) <= fds_before


async def test_200_concurrent_puts_to_one_key_leave_one_complete_version(store):
    versions = {}
    for index in range(200):
        size = 1000 + index * 5000  # from 1 KB to about 1 MB: both write paths
        versions[index] = hashlib.sha256(str(index).encode()).digest() * (size // 32 + 1)

    async def chunked(data):
        for start in range(0, len(data), 65536):
            yield data[start : start + 65536]

    seen = []

    async def reader():
        for _ in range(100):
            try:
                async with await store.get_read_stream("contended") as stream:
                    seen.append(await stream.read())
            except NotFoundError:
                pass
            await anyio.lowlevel.checkpoint()

    async def put(index, data):
        await store.put(data if index % 2 else chunked(data), key="contended")

    async with anyio.create_task_group() as group:
        group.start_soon(reader)
        for index, data in versions.items():
            group.start_soon(put, index, data)

    async with await store.get_read_stream("contended") as stream:
        final = await stream.read()
    assert final in versions.values()
    assert all(version in versions.values() for version in seen)  # readers saw whole ones
    assert await listed(store) == ["contended"]
    assert temporaries(store.root) == []
    assert os.listdir(store.root) == ["contended"]
