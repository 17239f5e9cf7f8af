"""The ``asyncstore://`` filesystem's own promises: registration, store names, derived
directories, ranged reads, streamed writes that publish only on close, exclusive creation,
async use, and use after a fork."""

from __future__ import annotations

import multiprocessing
import pickle
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar

import fsspec
import pytest

from asyncstore.errors import ConfigError, PreconditionFailedError, UnsupportedError
from asyncstore.fsspec import AsyncStoreFileSystem
from asyncstore.memory import MemoryModule
from asyncstore.streams import ByteSource, ReadStream, iter_source

MiB = 1 << 20


class RecordingModule(MemoryModule):
    """A memory store that records the ranges it is asked for, its copies and put chunks."""

    def __init__(self) -> None:
        super().__init__()
        self.ranges: list[tuple[int, int | None]] = []
        self.copies = 0
        self.received = 0

    async def get_read_stream(
        self, handle: str, *, start: int = 0, end: int | None = None, if_match: str | None = None
    ) -> ReadStream:
        self.ranges.append((start, end))
        return await super().get_read_stream(handle, start=start, end=end, if_match=if_match)

    async def copy(self, handle: str, **kwargs: Any) -> str:
        self.copies += 1
        return await super().copy(handle, **kwargs)

    async def assign(self, handle: str, source: ByteSource, **kwargs: Any) -> str:
        async def counted() -> AsyncIterator[bytes]:
            async for chunk in iter_source(source):
                self.received += len(chunk)
                yield bytes(chunk)

        return await super().assign(handle, counted(), **kwargs)


class NoCreateModule(MemoryModule):
    """A memory store that cannot create conditionally."""

    CAPABILITIES: ClassVar[Mapping[str, Any]] = {
        **MemoryModule.CAPABILITIES,
        "conditional_create": False,
    }


@pytest.fixture
def recording() -> RecordingModule:
    return RecordingModule()


@pytest.fixture
def rfs(recording: RecordingModule, make_fs: Callable[..., AsyncStoreFileSystem]) -> Any:
    return make_fs(recording)


# ---- registration and store names -----------------------------------------------------------


def test_registered_through_fsspec_entry_points() -> None:
    assert "asyncstore" not in fsspec.registry  # found through the entry point, not registered
    assert fsspec.get_filesystem_class("asyncstore") is AsyncStoreFileSystem


def test_urls_name_configured_stores(configured: Path) -> None:
    with fsspec.open("asyncstore://local/reports/q1.csv", "w") as file:
        file.write("a,b\n1,2\n")
    assert (configured / "reports" / "q1.csv").read_text() == "a,b\n1,2\n"
    with fsspec.open("asyncstore://local/reports/q1.csv", "r") as file:
        assert file.read() == "a,b\n1,2\n"
    fs, path = fsspec.core.url_to_fs("asyncstore://local/reports")
    assert path == "reports"
    assert fs.ls(path, detail=False) == ["reports/q1.csv"]
    assert fs.unstrip_protocol("reports/q1.csv") == "asyncstore://local/reports/q1.csv"


def test_a_url_of_another_store_is_refused(configured: Path) -> None:
    fs = fsspec.filesystem("asyncstore", store="local")
    with pytest.raises(ValueError, match="names store 'other'"):
        fs.cat_file("asyncstore://other/x")


def test_filesystem_takes_any_store_spec(make_fs: Callable[..., Any], tmp_path: Path) -> None:
    fs = make_fs(f"fs://{tmp_path}")
    fs.pipe_file("a/b.bin", b"spec")
    assert (tmp_path / "a" / "b.bin").read_bytes() == b"spec"
    assert fs.cat_file("asyncstore:///a/b.bin") == b"spec"
    assert fs.unstrip_protocol("a/b.bin") == "asyncstore:///a/b.bin"


def test_a_store_is_required() -> None:
    with pytest.raises(ConfigError, match="needs a store"):
        AsyncStoreFileSystem(skip_instance_cache=True)


# ---- directories --------------------------------------------------------------------------


def test_directories_derive_from_keys(rfs: Any) -> None:
    rfs.pipe({"d/a.txt": b"1", "d/sub/b.txt": b"22", "d/sub/deep/c.txt": b"333", "e.txt": b""})
    assert rfs.ls("", detail=False) == ["d", "e.txt"]
    assert rfs.ls("d", detail=False) == ["d/a.txt", "d/sub"]
    assert rfs.info("d/sub") == {"name": "d/sub", "size": 0, "type": "directory"}
    assert rfs.info("d/a.txt")["type"] == "file"
    assert rfs.isdir("d/sub") and not rfs.isdir("d/a.txt") and not rfs.exists("d/none")
    assert rfs.find("d") == ["d/a.txt", "d/sub/b.txt", "d/sub/deep/c.txt"]
    assert rfs.find("d", maxdepth=1) == ["d/a.txt"]
    assert rfs.find("d", withdirs=True) == [
        "d",
        "d/a.txt",
        "d/sub",
        "d/sub/b.txt",
        "d/sub/deep",
        "d/sub/deep/c.txt",
    ]
    assert rfs.glob("d/**/*.txt") == ["d/a.txt", "d/sub/b.txt", "d/sub/deep/c.txt"]
    assert rfs.glob("d/s*") == ["d/sub"]
    assert rfs.du("d") == 6
    assert rfs.du("d", total=False) == {"d/a.txt": 1, "d/sub/b.txt": 2, "d/sub/deep/c.txt": 3}
    assert [(root, dirs, files) for root, dirs, files in rfs.walk("d")] == [
        ("d", ["sub"], ["a.txt"]),
        ("d/sub", ["deep"], ["b.txt"]),
        ("d/sub/deep", [], ["c.txt"]),
    ]
    with pytest.raises(FileNotFoundError):
        rfs.ls("missing")


def test_empty_directories_are_not_stored(rfs: Any) -> None:
    rfs.mkdir("empty")
    rfs.makedirs("also/empty", exist_ok=True)
    assert not rfs.exists("empty")
    assert rfs.ls("", detail=False) == []


def test_rm_recursive_removes_every_key_below(rfs: Any, recording: RecordingModule) -> None:
    rfs.pipe({"t/a": b"1", "t/b/c": b"2", "keep": b"3"})
    rfs.rm("t", recursive=True)
    assert rfs.find("") == ["keep"]


# ---- reading ------------------------------------------------------------------------------


def test_small_read_near_the_end_is_one_small_ranged_read(
    rfs: Any, recording: RecordingModule
) -> None:
    data = bytes(range(256)) * (64 * 1024)  # 16 MiB
    rfs.pipe_file("big.bin", data)
    with rfs.open("big.bin", "rb") as file:
        file.seek(-8, 2)
        assert file.read(8) == data[-8:]
    # One ranged read of what was asked (readahead cannot pass the end), no whole read.
    assert recording.ranges == [(len(data) - 8, len(data))]


def test_reads_go_through_the_block_cache(rfs: Any, recording: RecordingModule) -> None:
    data = bytes(range(256)) * (32 * 1024)  # 8 MiB
    rfs.pipe_file("blocks.bin", data)
    with rfs.open("blocks.bin", "rb", block_size=MiB) as file:
        assert file.read(1000) == data[:1000]
        assert file.read(1000) == data[1000:2000]  # from the readahead block: no new read
        assert file.read(2 * MiB) == data[2000 : 2000 + 2 * MiB]  # reads on: same stream
        file.seek(5 * MiB)
        assert file.read(10) == data[5 * MiB : 5 * MiB + 10]
    # One stream reading on from the start, then one ranged read after the seek.
    assert recording.ranges == [(0, None), (5 * MiB, 6 * MiB + 10)]


def test_reading_front_to_back_is_one_stream(rfs: Any, recording: RecordingModule) -> None:
    data = bytes(range(256)) * (40 * 1024)  # 10 MiB
    rfs.pipe_file("whole.bin", data)
    with rfs.open("whole.bin", "rb", block_size=MiB) as file:
        pieces = iter(lambda: file.read(300_000), b"")
        assert b"".join(pieces) == data
    assert recording.ranges == [(0, None)]


def test_cat_file_ranges(rfs: Any) -> None:
    rfs.pipe_file("r.txt", b"0123456789")
    assert rfs.cat_file("r.txt", start=2, end=5) == b"234"
    assert rfs.cat_file("r.txt", start=-3) == b"789"
    assert rfs.cat_file("r.txt", start=1, end=-1) == b"12345678"
    assert rfs.cat_file("r.txt", start=8, end=100) == b"89"
    assert rfs.cat_file("r.txt", start=5, end=5) == b""
    assert rfs.cat_ranges(["r.txt", "r.txt"], [0, 9], [1, 10]) == [b"0", b"9"]
    with pytest.raises(FileNotFoundError):
        rfs.cat_file("nothing.txt", start=1, end=1)


def test_a_file_keeps_the_version_it_opened(rfs: Any) -> None:
    rfs.pipe_file("v.bin", b"A" * (3 * MiB))
    with rfs.open("v.bin", "rb", block_size=MiB) as file:
        assert file.read(10) == b"A" * 10
        rfs.pipe_file("v.bin", b"B" * (3 * MiB))
        # The stream reading on holds the version it opened...
        assert file.read(MiB) == b"A" * MiB
        # ...and a ranged read elsewhere asks for that version (the memory store honours
        # if_match on reads), so the replacement is refused instead of mixed in.
        file.seek(2 * MiB + 100)
        with pytest.raises(PreconditionFailedError):
            file.read(10)


def test_opening_a_directory_fails(rfs: Any) -> None:
    rfs.pipe_file("dir/x", b"x")
    with pytest.raises(IsADirectoryError):
        rfs.open("dir", "rb")


# ---- writing ------------------------------------------------------------------------------


def test_writes_stream_and_publish_on_close(rfs: Any, recording: RecordingModule) -> None:
    block = b"w" * MiB
    with rfs.open("stream.bin", "wb", block_size=2 * MiB) as file:
        for _ in range(24):
            file.write(block)
        # Most of the bytes already went to the store's put, and nothing is visible yet.
        assert recording.received >= 18 * MiB
        assert not rfs.exists("stream.bin")
    assert rfs.size("stream.bin") == 24 * MiB
    assert recording.received == 24 * MiB


@pytest.mark.parametrize("size", [10, 5 * MiB], ids=["one-block", "streamed"])
def test_an_exception_inside_with_stores_nothing(rfs: Any, size: int) -> None:
    rfs.pipe_file("kept.bin", b"old")
    with pytest.raises(RuntimeError), rfs.open("kept.bin", "wb", block_size=MiB) as file:
        file.write(b"n" * size)
        raise RuntimeError("the writer failed")
    with pytest.raises(RuntimeError), rfs.open("new.bin", "wb", block_size=MiB) as file:
        file.write(b"n" * size)
        raise RuntimeError("the writer failed")
    assert rfs.cat_file("kept.bin") == b"old"
    assert not rfs.exists("new.bin")


def test_an_exception_inside_a_text_file_opened_by_url_stores_nothing(
    configured: Path,
) -> None:
    with pytest.raises(RuntimeError), fsspec.open("asyncstore://local/t.csv", "w") as file:
        file.write("partial,row\n")
        raise RuntimeError("the writer failed")
    assert not (configured / "t.csv").exists()


def test_a_file_opened_in_an_except_block_is_published(rfs: Any) -> None:
    try:
        raise KeyError("missing")
    except KeyError:
        with rfs.open("fallback.txt", "wb") as file:
            file.write(b"fallback")
    assert rfs.cat_file("fallback.txt") == b"fallback"


def test_transactions_publish_on_commit(rfs: Any) -> None:
    with rfs.transaction:
        with rfs.open("tx/a", "wb", block_size=MiB) as file:
            file.write(b"a" * (3 * MiB))
        with rfs.open("tx/b", "wb") as file:
            file.write(b"b")
        assert not rfs.exists("tx/a") and not rfs.exists("tx/b")
    assert rfs.size("tx/a") == 3 * MiB and rfs.cat_file("tx/b") == b"b"
    with pytest.raises(RuntimeError), rfs.transaction:
        with rfs.open("tx/c", "wb") as file:
            file.write(b"c")
        raise RuntimeError("abandon the transaction")
    assert not rfs.exists("tx/c")


def test_append_is_refused(rfs: Any) -> None:
    with pytest.raises(UnsupportedError, match="append"):
        rfs.open("x", "ab")


def test_content_types_are_guessed_from_names(rfs: Any) -> None:
    rfs.pipe_file("t/report.csv", b"a,b\n")
    with rfs.open("t/page.html", "wb") as file:
        file.write(b"<p>")
    assert rfs.info("t/report.csv")["ContentType"] == "text/csv"
    assert rfs.info("t/page.html")["ContentType"] == "text/html"


# ---- exclusive creation -------------------------------------------------------------------


def test_exclusive_create(rfs: Any) -> None:
    rfs.pipe_file("once", b"1", mode="create")
    with pytest.raises(FileExistsError):
        rfs.pipe_file("once", b"2", mode="create")
    with pytest.raises(FileExistsError):
        rfs.open("once", "xb")
    assert rfs.cat_file("once") == b"1"


def test_exclusive_create_without_conditional_create_is_refused(
    make_fs: Callable[..., Any],
) -> None:
    fs = make_fs(NoCreateModule())
    with pytest.raises(UnsupportedError, match="conditional_create"):
        fs.pipe_file("x", b"1", mode="create")
    with pytest.raises(UnsupportedError, match="conditional_create"):
        fs.open("x", "xb")
    assert not fs.exists("x")


# ---- copies and local transfers ------------------------------------------------------------


def test_cp_file_uses_the_stores_copy(rfs: Any, recording: RecordingModule) -> None:
    rfs.pipe_file("src.bin", b"payload")
    rfs.cp_file("src.bin", "dst/copy.bin")
    assert recording.copies == 1
    assert rfs.cat_file("dst/copy.bin") == b"payload"


def test_put_and_get_files_stream_with_progress(rfs: Any, tmp_path: Path) -> None:
    local = tmp_path / "up.bin"
    local.write_bytes(b"u" * (3 * MiB + 5))
    progress: list[int] = []

    class Recorder(fsspec.callbacks.Callback):  # type: ignore[misc]
        def call(self, *args: Any, **kwargs: Any) -> None:
            progress.append(self.value)

    rfs.put_file(str(local), "remote/up.bin", callback=Recorder())
    assert rfs.size("remote/up.bin") == 3 * MiB + 5
    assert progress[-1] == 3 * MiB + 5
    rfs.get_file("remote/up.bin", str(tmp_path / "down.bin"))
    assert (tmp_path / "down.bin").read_bytes() == local.read_bytes()
    with pytest.raises(FileNotFoundError):
        rfs.get_file("remote/none.bin", str(tmp_path / "none.bin"))
    assert not (tmp_path / "none.bin").exists()


# ---- async use, pickling and forks ----------------------------------------------------------


@pytest.mark.anyio
async def test_async_use() -> None:
    fs = AsyncStoreFileSystem(store="memory://", asynchronous=True, skip_instance_cache=True)
    try:
        await fs._pipe_file("a/x.bin", b"0123456789")
        assert await fs._cat_file("a/x.bin", start=3, end=6) == b"345"
        assert await fs._ls("a", detail=False) == ["a/x.bin"]
        async with await fs.open_async("a/y.bin", "wb", block_size=MiB) as file:
            await file.write(b"y" * (3 * MiB))
        file = await fs.open_async("a/y.bin", "rb")
        assert await file.read(5) == b"yyyyy"
        file.seek(3 * MiB - 2)
        assert await file.read() == b"yy"
        await file.close()
        with pytest.raises(RuntimeError):
            async with await fs.open_async("a/z.bin", "wb", block_size=MiB) as file:
                await file.write(b"z" * (2 * MiB))
                raise RuntimeError("the writer failed")
        assert not await fs._exists("a/z.bin")
    finally:
        await fs._close()


def test_pickled_filesystem_reopens_its_store(configured: Path) -> None:
    fs = fsspec.filesystem("asyncstore", store="local")
    fs.pipe_file("p.txt", b"pickled")
    clone = pickle.loads(pickle.dumps(fs))
    assert clone.cat_file("p.txt") == b"pickled"


def _read_in_child(queue: Any) -> None:
    with fsspec.open("asyncstore://local/forked.txt", "rb") as file:
        queue.put(file.read())


@pytest.mark.filterwarnings("ignore:.*fork.*:DeprecationWarning")
def test_works_after_a_fork(configured: Path) -> None:
    with fsspec.open("asyncstore://local/forked.txt", "wb") as file:
        file.write(b"from the parent")
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_read_in_child, args=(queue,))
    child.start()
    child.join(60)
    assert child.exitcode == 0
    assert queue.get(timeout=5) == b"from the parent"
