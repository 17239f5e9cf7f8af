"""The transform middleware: configured by name, transforms on put and on get, errors that
store nothing and reads that are never silently short, conditions passed to the inner store."""

from __future__ import annotations

import gzip
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import anyio
import pytest

from asyncstore import ConfigError, TransformError, open_store
from asyncstore.memory import MemoryModule
from asyncstore.middleware.transform import TransformModule
from asyncstore.streams import ByteSource, ReadStream
from asyncstore.testing import SourceFailed, failing_source

pytestmark = pytest.mark.anyio

MiB = 1 << 20
DATA = b"".join(b"%08d a line of text\n" % i for i in range(200_000))  # 4.2 MB


async def read(store: Any, key: str, **kwargs: Any) -> bytes:
    async with await store.get_read_stream(key, **kwargs) as stream:
        data: bytes = await stream.read()
        return data


def gzip_pair(inner: Any, **options: Any) -> TransformModule:
    return TransformModule(
        inner=inner,
        on_put="gzip",
        on_get="gzip",
        on_get_params={"mode": "decompress"},
        **options,
    )


async def test_a_gzip_pair_stores_compressed_and_reads_back() -> None:
    inner = MemoryModule()
    async with gzip_pair(inner) as store:
        await store.put(DATA, key="log", metadata={"app": "x"}, content_type="text/plain")
        stored = await read(inner, "log")
        assert gzip.decompress(stored) == DATA and len(stored) < len(DATA) // 3
        assert await read(store, "log") == DATA
        assert await read(store, "log", start=1000, end=5000) == DATA[1000:5000]
        info = await store.stat("log")
        assert (info.size, dict(info.metadata), info.content_type) == (
            len(DATA),
            {"app": "x"},
            "text/plain",
        )
        assert [i.size async for i in store.list()] == [len(DATA)]
        assert await store.copy("log", key="log2") == "log2"
        assert gzip.decompress(await read(inner, "log2")) == DATA
        figures = (await store.statistics())["transform"]
        assert figures["on_put"] == "gzip" and figures["runs"]["measure"] >= 1


async def test_on_put_alone_and_on_get_alone() -> None:
    inner = MemoryModule()
    async with TransformModule(inner=inner, on_put="checksum") as store:
        await store.put(b"abc", key="k")
        info = await store.stat("k")
        assert info.metadata["sha256"].startswith("ba7816bf")
        assert await read(store, "k") == b"abc"
    inner = MemoryModule()
    await inner.put(DATA, key="t.csv")
    async with TransformModule(
        inner=inner, on_get="csv-select", on_get_params="columns=x&where=x+%3D%3D+1"
    ) as view:
        await inner.put(b"x,y\n1,2\n3,4\n1,5\n", key="t.csv")
        assert await read(view, "t.csv") == b"x\n1\n1\n"
        assert (await view.stat("t.csv")).size == 6


async def test_a_failing_put_stores_nothing_and_keeps_the_old_object() -> None:
    inner = MemoryModule()
    store = TransformModule(inner=inner, on_put="gzip")
    strict = TransformModule(inner=inner, on_put="checksum", on_put_params={"verify": "0" * 64})
    await store.put(b"old", key="k")
    with pytest.raises(SourceFailed):  # the caller's source failed: its error, as it is
        await store.put(failing_source(DATA, 2 * MiB), key="k")
    assert gzip.decompress(await read(inner, "k")) == b"old"
    with pytest.raises(TransformError) as caught:
        await strict.put(DATA, key="k")
    assert caught.value.transform == "checksum"
    assert isinstance(caught.value.__cause__, ValueError)
    assert gzip.decompress(await read(inner, "k")) == b"old"
    with pytest.raises(TypeError):
        await store.put("text", key="k")  # type: ignore[arg-type]
    assert gzip.decompress(await read(inner, "k")) == b"old"
    await inner.aclose()


async def test_a_reader_sees_a_failure_never_a_short_object() -> None:
    from .helpers import FailMidway, Liar

    inner = MemoryModule()
    await inner.put(DATA, key="k")
    async with TransformModule(inner=inner) as store:
        store._on_get = FailMidway()  # a transform that fails after 1 MiB of its output
        store._get_params = {}
        store._get_params = {"after": str(3 * MiB)}
        got = bytearray()
        async with await store.get_read_stream("k") as stream:
            assert stream.size == len(DATA)
            with pytest.raises(TransformError, match="failed midway"):
                while chunk := await stream.read(64 * 1024):
                    got += chunk
        assert DATA.startswith(got) and len(got) < len(DATA)
        for extra, message in (("5", "more than"), ("-5", "wrote")):
            store._on_get = Liar()
            store._get_params = {"extra": extra}
            with pytest.raises(TransformError, match=message):
                await read(store, "k")


class Tracking(MemoryModule):
    """Counts the read streams left open, and records the keywords of each call."""

    def __init__(self) -> None:
        super().__init__()
        self.open_streams = 0
        self.calls: list[tuple[str, dict[str, Any]]] = []

    async def get_read_stream(self, handle: str, **kwargs: Any) -> ReadStream:  # type: ignore[override]
        self.calls.append(("get_read_stream", dict(kwargs)))
        kwargs.pop("if_match", None)
        stream = await super().get_read_stream(handle, **kwargs)
        self.open_streams += 1
        close = stream._close

        async def counted() -> None:
            self.open_streams -= 1
            await close()

        stream._close = counted  # type: ignore[method-assign]
        return stream

    async def put(self, source: ByteSource, **kwargs: Any) -> str:  # type: ignore[override]
        self.calls.append(
            ("put", {k: v for k, v in kwargs.items() if k in ("overwrite", "if_match")})
        )
        kwargs.pop("overwrite", None)
        kwargs.pop("if_match", None)
        return await super().put(source, **kwargs)

    async def delete(self, handle: str, **kwargs: Any) -> None:  # type: ignore[override]
        self.calls.append(("delete", kwargs))
        await super().delete(handle)

    def capabilities(self) -> dict[str, Any]:
        return {**super().capabilities(), "conditional_read": True}


async def test_conditions_reach_the_inner_store_only_when_given() -> None:
    inner = Tracking()
    async with gzip_pair(inner) as store:
        await store.put(b"abc", key="k")
        await store.put(b"abc", key="k", overwrite=False, if_match=None)
        await store.put(b"abc", key="k", if_match="e1")
        await store.delete("k", if_match="e2")
        assert [c for c in inner.calls if c[0] != "get_read_stream"] == [
            ("put", {}),
            ("put", {"overwrite": False}),
            ("put", {"if_match": "e1"}),
            ("delete", {"if_match": "e2"}),
        ]
        inner.calls.clear()
        await store.put(DATA, key="k")
        etag = (await inner.stat("k")).etag
        async with await store.get_read_stream("k", if_match="e3") as stream:
            await stream.seek(1000)
            await stream.read(10)
            await stream.seek(0)  # a new run: it reads the version the first one read
            await stream.read(10)
        reads = [kw for name, kw in inner.calls if name == "get_read_stream"]
        assert reads[0] == {"if_match": "e3"}
        assert all(kw.get("if_match") in ("e3", etag) for kw in reads)


async def test_closing_a_transformed_read_early_stops_its_run() -> None:
    inner = Tracking()
    await inner.put(DATA * 4, key="k")
    async with TransformModule(inner=inner, on_get="identity") as store:
        for _ in range(3):
            async with await store.get_read_stream("k") as stream:
                assert await stream.read(1000) == DATA[:1000]
            assert inner.open_streams == 0
        with anyio.move_on_after(0.01):
            async with await store.get_read_stream("k") as stream:
                while await stream.read(100):  # noqa: ASYNC110 - slowly, until cancelled
                    await anyio.sleep(0.001)
        assert inner.open_streams == 0


async def test_process_isolation_through_the_layer() -> None:
    inner = MemoryModule()
    async with gzip_pair(inner, isolation="process", timeout=30) as store:
        await store.put(DATA, key="k")
        assert await read(store, "k", start=10) == DATA[10:]
        assert (await store.statistics())["transform"]["isolation"] == "process"


async def test_configured_by_name_in_a_file_and_by_url(tmp_path: Path) -> None:
    config = tmp_path / "asyncstore.toml"
    config.write_text(
        f"""
[stores.raw]
module = "fs"
root = "{tmp_path / "raw"}"
fsync = false

[stores.logs]
module = "transform"
inner = "raw"
on_put = "gzip"
on_put_params = {{ level = "9" }}
on_get = "gzip"
on_get_params = {{ mode = "decompress" }}
"""
    )
    async with open_store("logs", config=str(config)) as store:
        await store.put(DATA, key="app/today.log")
        assert await read(store, "app/today.log") == DATA
    packed = (tmp_path / "raw" / "app" / "today.log").read_bytes()
    assert gzip.decompress(packed) == DATA
    url = "transform://?inner=memory://&on_put=gzip&on_get=gzip&on_get_params=mode%3Ddecompress"
    async with open_store(url) as store:
        await store.put(b"hello", key="k")
        assert await read(store, "k") == b"hello"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"on_get": "no-such-transform"}, "no transform named"),
        ({"on_get_params": {"mode": "x"}}, "without on_get"),
        ({"on_put": "gzip", "on_put_params": {"level": "11"}}, "level must be 1 to 9"),
        ({"on_put": "gzip", "on_put_params": {"speed": "1"}}, "unknown parameter"),
        ({"on_put": "gzip", "isolation": "container"}, "isolation"),
    ],
)
async def test_bad_configuration_is_a_config_error(
    options: Mapping[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        TransformModule(inner=MemoryModule(), **options)


async def test_without_transforms_it_passes_everything_through() -> None:
    inner = MemoryModule()
    async with TransformModule(inner=inner) as store:
        await store.put(b"abc", key="k", metadata={"a": "1"})
        assert await store.copy("k", key="k2") == "k2"
        assert await read(inner, "k2") == b"abc"
        assert isinstance(await store.get_read_stream("k"), type(await inner.get_read_stream("k")))


@pytest.fixture
async def fs_pair(tmp_path: Path) -> AsyncIterator[TransformModule]:
    from asyncstore_fs import FileSystemModule

    async with gzip_pair(FileSystemModule(root=str(tmp_path / "fs"), fsync=False)) as store:
        yield store


async def test_over_fs(fs_pair: TransformModule, tmp_path: Path) -> None:
    await fs_pair.put(DATA, key="a/b.log")
    assert await read(fs_pair, "a/b.log", start=len(DATA) - 10) == DATA[-10:]
    with pytest.raises(SourceFailed):
        await fs_pair.put(failing_source(DATA, MiB), key="a/c.log")
    files = sorted(p.name for p in (tmp_path / "fs").rglob("*") if p.is_file())
    assert files == ["b.log"]


def test_through_the_sync_adapter() -> None:
    from asyncstore.sync import SyncStore

    url = "transform://?inner=memory://&on_put=gzip&on_get=gzip&on_get_params=mode%3Ddecompress"
    with SyncStore.open(url) as store:
        store.put(DATA, key="k")
        with store.get_read_stream("k") as file:
            assert file.read(10) == DATA[:10]
            file.seek(len(DATA) - 5)
            assert file.read() == DATA[-5:]
        assert store.stat("k").size == len(DATA)
