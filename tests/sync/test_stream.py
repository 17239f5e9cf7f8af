"""SyncReadStream: a real binary file for the standard library's consumers."""

from __future__ import annotations

import io
import os
import shutil
import tarfile
import zipfile

import pytest

from asyncstore.streams import BytesReadStream
from asyncstore.sync import SyncStore

DATA = bytes(range(256)) * 1000


@pytest.fixture
def store():
    with SyncStore.open("memory://") as store:
        store.put(DATA, key="data")
        yield store


@pytest.fixture
def reads(monkeypatch):
    """Count the reads that reach the async stream (each is a loop round trip)."""
    calls: list[int] = []
    read = BytesReadStream.read

    async def counting(self, n=-1):
        calls.append(n)
        return await read(self, n)

    monkeypatch.setattr(BytesReadStream, "read", counting)
    return calls


def test_zipfile_reads_an_archive_stored_in_a_module(store):
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("a.txt", "alpha " * 5000)
        zf.writestr("dir/b.bin", DATA)
    store.put(archive.getvalue(), key="archive.zip")
    with store.get_read_stream("archive.zip") as stream, zipfile.ZipFile(stream) as zf:
        assert zf.namelist() == ["a.txt", "dir/b.bin"]
        assert zf.read("dir/b.bin") == DATA
        with zf.open("a.txt") as member:
            assert member.read() == b"alpha " * 5000
        assert zf.testzip() is None


def test_tarfile_random_access_and_streaming(store):
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w:gz") as tf:
        for name, payload in [("one", b"1" * 3000), ("two", DATA)]:
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            tf.addfile(info, io.BytesIO(payload))
    store.put(archive.getvalue(), key="archive.tgz")
    with store.get_read_stream("archive.tgz") as stream, tarfile.open(fileobj=stream) as tf:
        assert tf.getnames() == ["one", "two"]
        assert tf.extractfile("two").read() == DATA
    with (
        store.get_read_stream("archive.tgz") as stream,
        tarfile.open(fileobj=stream, mode="r|gz") as tf,
    ):
        assert [member.name for member in tf] == ["one", "two"]


def test_text_wrapper_and_readline_loops_are_buffered(store, reads):
    lines = [f"line {index}\n".encode() for index in range(5000)]
    store.put(b"".join(lines), key="lines.txt")
    reads.clear()
    with store.get_read_stream("lines.txt", buffer_size=16384) as stream:
        assert list(stream) == lines
    assert len(reads) == 3  # 48,890 bytes in 16 KiB buffers: one round trip each
    with store.get_read_stream("lines.txt") as stream:
        text = io.TextIOWrapper(stream, encoding="utf-8")
        assert text.readline() == "line 0\n"
        assert text.read().count("\n") == 4999
        text.detach()


def test_readline_limits_and_small_reads(store, reads):
    store.put(b"ab\ncd\n\nlast", key="small")
    with store.get_read_stream("small") as stream:
        assert stream.readline(1) == b"a"
        assert stream.readline() == b"b\n"
        assert stream.readline(10) == b"cd\n"
        assert stream.readline() == b"\n"
        assert stream.readline() == b"last"
        assert stream.readline() == b""
    reads.clear()
    with store.get_read_stream("data") as stream:
        pieces = [stream.read(4) for _ in range(1000)]
    assert b"".join(pieces) == DATA[:4000]
    assert len(reads) == 1


def test_copyfileobj(store, tmp_path):
    target = tmp_path / "copy.bin"
    with store.get_read_stream("data") as stream, target.open("wb") as out:
        shutil.copyfileobj(stream, out)
    assert target.read_bytes() == DATA


def test_seek_tell_read1_readinto_peek(store):
    with store.get_read_stream("data") as stream:
        assert stream.readable() and stream.seekable() and not stream.writable()
        assert stream.seek(-10, os.SEEK_END) == len(DATA) - 10
        assert stream.read() == DATA[-10:]
        assert stream.read() == b""
        stream.seek(100)
        assert stream.peek(1)[:3] == DATA[100:103]
        assert stream.tell() == 100
        assert stream.read1(5) == DATA[100:105]
        assert stream.seek(5, os.SEEK_CUR) == 110
        buffer = bytearray(200_000)
        assert stream.readinto(buffer) == 200_000
        assert bytes(buffer) == DATA[110:200_110]
        small = bytearray(10)
        assert stream.readinto1(small) == 10
        assert bytes(small) == DATA[200_110:200_120]
        with pytest.raises(ValueError):
            stream.seek(-1)
        with pytest.raises(ValueError):
            stream.seek(len(DATA) + 1)
        with pytest.raises(TypeError):
            stream.seek(1.5)  # as for a file; it used to fail only at the next read
        assert stream.tell() == 200_120
    assert stream.closed
    with pytest.raises(ValueError, match="closed"):
        stream.read(1)
    stream.close()


def test_ranged_stream_positions_are_relative(store):
    with store.get_read_stream("data", start=1000, end=2000) as stream:
        assert stream.size == 1000
        assert stream.read(10) == DATA[1000:1010]
        stream.seek(0)
        assert stream.read() == DATA[1000:2000]
        assert stream.info.size == len(DATA)


def test_a_dropped_stream_is_closed_without_blocking(store):
    closed: list[bool] = []
    stream = store.get_read_stream("data")
    inner = stream._stream
    original = inner._close

    async def recording():
        closed.append(True)
        await original()

    inner._close = recording
    del stream
    for _ in range(100):
        if closed:
            break
        store.available("data")  # a round trip lets the scheduled close run
    assert closed == [True]


def test_a_small_object_is_read_and_closed_in_one_round_trip(store, reads, monkeypatch):
    store.put(b"0123456789", key="small")
    reads.clear()
    closes: list[int] = []
    close = BytesReadStream.aclose

    async def counting_close(self):
        closes.append(1)
        await close(self)

    monkeypatch.setattr(BytesReadStream, "aclose", counting_close)
    with store.get_read_stream("small") as stream:
        assert len(reads) == 1 and len(closes) == 1  # opened, read whole and closed
        assert stream.read(3) == b"012"
        stream.seek(-2, os.SEEK_END)
        assert stream.read() == b"89"
        stream.seek(5)
        assert stream.readline() == b"56789"
        assert stream.read() == b""
        target = bytearray(4)
        stream.seek(0)
        assert stream.readinto(target) == 4 and target == b"0123"
        store.put(stream, key="rest")
    assert len(reads) == 1 and len(closes) == 1
    assert store.get_read_stream("rest").read() == b"456789"
