"""`FsspecModule`'s configuration, URLs and honest capabilities."""

from __future__ import annotations

from pathlib import Path
from uuid import uuid4

import pytest

from asyncstore.config import Config, open_store
from asyncstore.errors import ConfigError, NotFoundError, UnsupportedError
from asyncstore.fsspec import FsspecModule
from tests.core.test_import_cost import loaded_after

pytestmark = pytest.mark.anyio


async def test_url_names_the_filesystem_and_its_root() -> None:
    root = f"/url-{uuid4().hex}"
    async with open_store(f"fsspec+memory://{root}?atomic_writes=false") as store:
        assert isinstance(store, FsspecModule)
        assert store.name == f"fsspec+memory://{root}"
        assert store.capabilities()["fsspec_protocol"] == "memory"
        assert store.capabilities()["atomic_writes"] is False
        await store.put(b"via url", key="a/b")
    async with FsspecModule(protocol="memory", root=root) as same:
        assert [info.handle async for info in same.list()] == ["a/b"]
        await same.delete("a/b")


def test_url_query_values_are_read_as_json() -> None:
    options = FsspecModule.options_from_url(
        "fsspec+file:///srv/data?auto_mkdir=false&block_size=1024&label=x"
    )
    assert options == {
        "protocol": "file",
        "root": "/srv/data",
        "auto_mkdir": False,
        "block_size": 1024,
        "label": "x",
    }


@pytest.mark.parametrize("url", ["fsspec:///x", "fsspec+://x"])
def test_url_without_a_protocol_is_refused(url: str) -> None:
    with pytest.raises(ConfigError, match=r"fsspec\+PROTOCOL://"):
        open_store(url)


def test_unknown_protocol_is_refused() -> None:
    with pytest.raises(ConfigError, match="no protocol 'nosuchfs'"):
        FsspecModule(protocol="nosuchfs")


async def test_config_file_form(tmp_path: Path) -> None:
    config = Config.from_dict(
        {
            "stores": {
                "files": {
                    "module": "fsspec",
                    "protocol": "file",
                    "root": str(tmp_path / "files"),
                }
            }
        }
    )
    async with open_store("files", config=config) as store:
        await store.put(b"configured", key="x/y.txt")
        assert store.name == "files"
    assert (tmp_path / "files" / "x" / "y.txt").read_bytes() == b"configured"


async def test_capabilities_say_what_fsspec_cannot_do(tmp_path: Path) -> None:
    async with FsspecModule(protocol="file", root=str(tmp_path)) as store:
        capabilities = store.capabilities()
        assert capabilities["metadata"] is False
        assert not any(
            capabilities[name]
            for name in (
                "conditional_create",
                "conditional_replace",
                "conditional_delete",
                "conditional_read",
            )
        )
        with pytest.raises(UnsupportedError, match="conditional_create"):
            await store.put(b"x", key="k", overwrite=False)
        assert not await store.available("k")
        # Metadata is checked and dropped, as the capability says.
        await store.put(b"x", key="m", metadata={"a": "1"}, content_type="text/plain")
        info = await store.stat("m")
        assert dict(info.metadata) == {} and info.content_type is None


def test_atomic_writes_are_declared_only_where_known() -> None:
    assert FsspecModule(protocol="memory").capabilities()["atomic_writes"] is True
    assert FsspecModule(protocol="s3", root="b").capabilities()["atomic_writes"] is True
    # A filesystem asyncstore knows nothing about is assumed to show partial files...
    assert FsspecModule(protocol="ftp", host="127.0.0.1").capabilities()["atomic_writes"] is False
    # ...unless the user knows better.
    declared = FsspecModule(protocol="ftp", host="127.0.0.1", atomic_writes=True)
    assert declared.capabilities()["atomic_writes"] is True


async def test_directories_and_foreign_names_are_not_objects(tmp_path: Path) -> None:
    (tmp_path / "dir").mkdir()
    (tmp_path / "dir" / "bad\nname").write_bytes(b"x")
    (tmp_path / "dir" / "good").write_bytes(b"y")
    async with FsspecModule(protocol="file", root=str(tmp_path)) as store:
        with pytest.raises(NotFoundError):
            await store.stat("dir")
        with pytest.raises(NotFoundError):
            await store.get_read_stream("dir")
        assert [info.handle async for info in store.list()] == ["dir/good"]


def test_listing_plugins_imports_no_fsspec() -> None:
    modules = loaded_after("import asyncstore; asyncstore.plugins()")
    assert "fsspec" not in modules
    assert "asyncstore.fsspec" not in modules
