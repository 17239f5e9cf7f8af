"""The tree on disk: plain files other tools can read, key order, prefix conflicts."""

from __future__ import annotations

import json
import os
import random
import re

import pytest

import asyncstore
from asyncstore.errors import AlreadyExistsError, ConfigError, NotFoundError
from asyncstore_fs import FileSystemModule

pytestmark = pytest.mark.anyio


@pytest.fixture
async def store(tmp_path):
    async with FileSystemModule(root=str(tmp_path / "root"), fsync=False) as module:
        yield module


def read_file(path: str) -> bytes:
    with open(path, "rb") as file:
        return file.read()


def write_file(path: str, data: bytes) -> None:
    with open(path, "wb") as file:
        file.write(data)


def own_files(root: str) -> list[str]:
    """Every name under root that holds the module's marker (temporaries, sidecars)."""
    return [
        os.path.join(directory, name)
        for directory, _, files in os.walk(root)
        for name in files
        if "\x7f" in name
    ]


async def keys(store: FileSystemModule, prefix: str = "") -> list[str]:
    return [info.handle async for info in store.list(prefix)]


async def test_key_is_a_plain_file_other_tools_read(store):
    data = os.urandom(300_000)
    await store.put(data, key="a/b/c.txt")
    path = os.path.join(store.root, "a", "b", "c.txt")
    assert read_file(path) == data
    assert sorted(os.listdir(store.root)) == ["a"]
    assert os.stat(path).st_mode & 0o444 == 0o444 & ~_umask()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


async def test_files_written_by_other_tools_are_objects(store):
    os.makedirs(os.path.join(store.root, "x"))
    write_file(os.path.join(store.root, "x", "y.bin"), b"from elsewhere")
    info = await store.stat("x/y.bin")
    assert info.size == 14
    assert info.modified is not None and info.modified.utcoffset().total_seconds() == 0
    async with await store.get_read_stream("x/y.bin") as stream:
        assert await stream.read() == b"from elsewhere"
    assert await keys(store) == ["x/y.bin"]


async def test_generated_handles_fan_out(store):
    handle = await store.put(b"generated")
    assert re.fullmatch(r"[0-9a-f]{2}/[0-9a-f]{2}/[0-9a-f]{32}", handle)
    assert handle.startswith(f"{handle[6:8]}/{handle[8:10]}/")
    assert read_file(os.path.join(store.root, handle)) == b"generated"
    fresh = await store.new_data()
    assert not await store.available(fresh)


async def test_list_is_in_key_order_not_walk_order(store):
    names = ["a/b", "a-c", "a.d/e", "a0", "b", "a/b0/x", "a/b-", "A", "a/b.c/d/e", "é/x", "z"]
    for name in names:
        await store.put(name.encode(), key=name)
    assert await keys(store) == sorted(names)
    assert await keys(store, "a/") == sorted(n for n in names if n.startswith("a/"))
    assert await keys(store, "a/b") == sorted(n for n in names if n.startswith("a/b"))
    assert await keys(store, "a/b/") == []
    assert await keys(store, "nothing/") == []


async def test_list_order_on_random_trees(store):
    rng = random.Random(7)
    alphabet = ["a", "b", "-", ".", "0", "~", "é"]
    wanted: set[str] = set()
    while len(wanted) < 150:
        depth = rng.randint(1, 3)
        key = "/".join("".join(rng.choices(alphabet, k=rng.randint(1, 3))) for _ in range(depth))
        if key.split("/")[-1] in (".", "..") or any(s in (".", "..") for s in key.split("/")):
            continue
        try:
            await store.put(b"", key=key)
        except AlreadyExistsError:
            continue  # a prefix of a stored key, or stored keys under it
        wanted.add(key)
    assert await keys(store) == sorted(wanted)
    for prefix in ["a", "a/", "b-", "é", "0/~"]:
        assert await keys(store, prefix) == sorted(k for k in wanted if k.startswith(prefix))


async def test_a_key_cannot_also_be_a_prefix(store):
    await store.put(b"file", key="a")
    with pytest.raises(AlreadyExistsError, match="'a' is an object"):
        await store.put(b"nested", key="a/b")
    with pytest.raises(AlreadyExistsError):
        await store.put(b"nested", key="a/b/c")
    assert read_file(os.path.join(store.root, "a")) == b"file"
    assert await keys(store) == ["a"]

    await store.put(b"inner", key="d/e")
    with pytest.raises(AlreadyExistsError, match="prefix"):
        await store.put(b"outer", key="d")
    with pytest.raises(AlreadyExistsError):
        await store.copy("a", key="d")
    assert await keys(store) == ["a", "d/e"]
    assert own_files(store.root) == []
    with pytest.raises(NotFoundError):
        await store.stat("d")  # a prefix is not an object
    await store.delete("d")  # nor is it deleted as one
    assert await keys(store) == ["a", "d/e"]


async def test_delete_removes_emptied_directories(store):
    await store.put(b"1", key="p/q/r")
    await store.put(b"2", key="p/s")
    await store.delete("p/q/r")
    assert sorted(os.listdir(os.path.join(store.root, "p"))) == ["s"]
    await store.delete("p/s")
    assert os.listdir(store.root) == []
    await store.put(b"now a file", key="p")
    assert await keys(store) == ["p"]
    await store.delete("p")
    await store.delete("p")  # idempotent


async def test_empty_directory_gives_way_to_an_object(store):
    os.makedirs(os.path.join(store.root, "empty"))
    await store.put(b"x", key="empty")
    assert await keys(store) == ["empty"]


async def test_metadata_lives_in_an_extended_attribute(store):
    await store.put(b"x", key="m", metadata={"color": "blue"}, content_type="text/plain")
    record = json.loads(os.getxattr(os.path.join(store.root, "m"), "user.asyncstore"))
    assert record == {"metadata": {"color": "blue"}, "content_type": "text/plain"}
    await store.put(b"y", key="m")
    info = await store.stat("m")
    assert (dict(info.metadata), info.content_type) == ({}, None)


async def test_sidecars_are_invisible_and_follow_their_object(tmp_path):
    async with FileSystemModule(root=str(tmp_path / "s"), xattrs=False) as store:
        await store.put(b"x", key="k/m", metadata={"a": "1"}, content_type="text/plain")
        assert len(own_files(store.root)) == 1  # the sidecar
        assert await keys(store) == ["k/m"]
        # Another tool replaces the file: the old sidecar no longer describes it.
        os.replace(_write(tmp_path / "other", b"new"), os.path.join(store.root, "k", "m"))
        info = await store.stat("k/m")
        assert (info.size, dict(info.metadata), info.content_type) == (3, {}, None)
        await store.delete("k/m")
        assert own_files(store.root) == []
        assert os.listdir(store.root) == []


def _write(path, data: bytes) -> str:
    path.write_bytes(data)
    return str(path)


async def test_copy_is_independent_of_its_source(store):
    data = os.urandom(3 << 20)
    await store.put(data, key="src", metadata={"k": "v"}, content_type="application/x-test")
    assert await store.copy("src", key="dst/copy") == "dst/copy"
    await store.put(b"changed", key="src")
    info = await store.stat("dst/copy")
    assert (info.size, dict(info.metadata), info.content_type) == (
        len(data),
        {"k": "v"},
        "application/x-test",
    )
    assert read_file(os.path.join(store.root, "dst", "copy")) == data


async def test_statistics_come_from_statvfs(store):
    stats = await store.statistics()
    status = os.statvfs(store.root)
    assert stats["capacity"]["total"] == status.f_blocks * status.f_frsize
    assert 0 < stats["capacity"]["free"] <= stats["capacity"]["total"]
    assert stats["metadata_storage"] == "xattr"
    json.dumps(stats)
    assert json.dumps(store.capabilities())


def test_url_options():
    options = FileSystemModule.options_from_url("fs:///srv/my%20blobs?fsync=false&xattrs=none")
    assert options == {"root": "/srv/my blobs", "fsync": "false", "xattrs": "none"}
    assert FileSystemModule.options_from_url("file://localhost/x") == {"root": "/x"}
    for bad in ("fs://host/x", "fs:relative", "fs:///x?root=/y"):
        with pytest.raises(ConfigError):
            FileSystemModule.options_from_url(bad)


async def test_open_by_url_through_the_registry(tmp_path):
    root = tmp_path / "via url"
    for scheme in ("fs", "file"):
        async with asyncstore.open_store(
            f"{scheme}://{root.as_posix().replace(' ', '%20')}?fsync=no"
        ) as store:
            assert isinstance(store, FileSystemModule)
            await store.put(scheme.encode(), key=scheme)
    assert sorted(os.listdir(root)) == ["file", "fs"]


def test_bad_roots(tmp_path):
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(ConfigError, match="not an existing directory"):
        FileSystemModule(root=str(tmp_path / "file"), create=False)
    with pytest.raises(ConfigError):
        FileSystemModule(root=str(tmp_path / "missing"), create=False)
    with pytest.raises(ConfigError):
        FileSystemModule(root=str(tmp_path), fsync="yes")  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        FileSystemModule(root=str(tmp_path), threads=0)


def test_registered_as_fs_and_file_plugins():
    found = {info.name: info for info in asyncstore.plugins()}
    for name in ("fs", "file"):
        assert found[name].target == "asyncstore_fs:FileSystemModule"
        assert found[name].distribution == "asyncstore-fs"
    described = asyncstore.describe_plugin("fs")
    options = {option.name: option for option in described.options}
    assert set(options) == {"root", "fsync", "create", "xattrs", "threads"}
    assert options["root"].required and options["fsync"].default == "True"
    assert all(option.description for option in options.values())
