"""SyncStore: the blocking API, threads, the loop thread, fork, and misuse."""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import random
import subprocess
import sys
import threading
import time
import warnings

import anyio.to_thread
import pytest

from asyncstore import NotFoundError, ObjectInfo, StorageModule
from asyncstore.memory import MemoryModule
from asyncstore.sync import SyncListing, SyncReadStream, SyncStore, _portal


@pytest.fixture
def store():
    with SyncStore.open("memory://") as store:
        yield store


def test_every_contract_method_blocks_and_returns_plain_values(store):
    handle = store.put(b"hello", key="a/one", metadata={"k": "v"}, content_type="text/plain")
    assert handle == "a/one"
    fresh = store.new_data()
    assert not store.available(fresh)
    store.assign(fresh, [b"abc", b"def"])
    assert store.available(fresh)
    assert store.get_size(fresh) == 6
    info = store.stat(handle)
    assert isinstance(info, ObjectInfo) and info.metadata == {"k": "v"}
    with store.get_read_stream(handle, start=1, end=4) as stream:
        assert isinstance(stream, SyncReadStream) and isinstance(stream, io.BufferedIOBase)
        assert stream.read() == b"ell"
    assert store.copy(handle, key="a/two") == "a/two"
    listing = store.list("a/")
    assert isinstance(listing, SyncListing)
    assert [i.handle for i in listing] == ["a/one", "a/two"]
    store.delete("a/two")
    store.delete("a/two")
    assert store.statistics()["capacity"]["used"] == 11
    assert store.capabilities()["named_keys"] is True
    with pytest.raises(NotFoundError):
        store.stat("a/two")


def test_sources_from_threads(store, tmp_path):
    path = tmp_path / "file.bin"
    path.write_bytes(b"from a file" * 1000)

    def generator():
        for index in range(100):
            yield str(index).encode()

    with path.open("rb") as file:
        store.put(file, key="file")
    store.put(generator(), key="generator")
    store.put(bytearray(b"ba"), key="bytearray")
    store.put(io.BytesIO(b"bytesio"), key="bytesio")
    assert store.get_read_stream("file").read() == path.read_bytes()
    assert store.get_read_stream("generator").read() == b"".join(generator())
    assert store.get_read_stream("bytesio").read() == b"bytesio"
    with pytest.raises(TypeError, match="encode"):
        store.put("text", key="text")
    assert not store.available("text")


def test_a_sync_stream_of_the_same_loop_is_copied_on_the_loop(store):
    data = os.urandom(3 << 20)
    store.put(data, key="big")
    with store.get_read_stream("big") as stream:
        assert stream.read(10) == data[:10]
        store.put(stream, key="rest")
        assert stream.tell() == len(data)
    assert store.get_read_stream("rest").read() == data[10:]


def test_a_slow_generator_does_not_block_other_threads(store):
    started = threading.Event()
    release = threading.Event()

    def slow():
        yield b"first"
        started.set()
        release.wait(10)
        yield b"last"

    writer = threading.Thread(target=store.put, args=(slow(),), kwargs={"key": "slow"})
    writer.start()
    assert started.wait(10)
    began = time.monotonic()
    store.put(b"quick", key="quick")  # the loop is free while the generator waits
    assert time.monotonic() - began < 5
    release.set()
    writer.join(10)
    assert store.get_read_stream("slow").read() == b"firstlast"


def test_list_fetches_pages_and_can_stop_early(store, monkeypatch):
    monkeypatch.setattr(SyncStore, "list_page_size", 7)
    for index in range(50):
        store.put(b"x", key=f"k/{index:03d}")
    calls = []
    fetch = SyncListing._fetch

    async def counting(self, module):
        calls.append(1)
        return await fetch(self, module)

    monkeypatch.setattr(SyncListing, "_fetch", counting)
    assert [i.handle for i in store.list("k/")] == [f"k/{i:03d}" for i in range(50)]
    assert len(calls) == 8  # 50 objects in pages of 7
    with store.list("k/") as listing:
        assert next(listing).handle == "k/000"
    assert list(listing) == []


def test_32_threads_hammering_one_store_see_every_byte(store):
    errors: list[BaseException] = []
    expected: dict[str, bytes] = {}
    lock = threading.Lock()

    def worker(number: int) -> None:
        rng = random.Random(number)
        try:
            for step in range(40):
                key = f"t{number}/{step % 5}"
                data = rng.randbytes(rng.choice([0, 1, 4096, 70_000]))
                operation = rng.choice(["put", "put", "read", "range", "copy", "stat", "list"])
                if operation == "put" or key not in expected:
                    store.put(data, key=key, metadata={"sha": hashlib.sha256(data).hexdigest()})
                    with lock:
                        expected[key] = data
                elif operation == "read":
                    with store.get_read_stream(key) as stream:
                        assert stream.read() == expected[key]
                elif operation == "range":
                    size = len(expected[key])
                    start = rng.randrange(size + 1)
                    with store.get_read_stream(key, start=start) as stream:
                        assert stream.read() == expected[key][start:]
                elif operation == "copy":
                    target = store.copy(key, key=f"{key}-copy")
                    assert store.get_read_stream(target).read() == expected[key]
                elif operation == "stat":
                    info = store.stat(key)
                    assert info.metadata["sha"] == hashlib.sha256(expected[key]).hexdigest()
                else:
                    assert {i.handle for i in store.list(f"t{number}/")} >= {
                        k for k in expected if k.startswith(f"t{number}/")
                    }
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(32)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors[0]
    for key, data in expected.items():
        with store.get_read_stream(key) as stream:
            assert hashlib.sha256(stream.read()).digest() == hashlib.sha256(data).digest()


@pytest.mark.anyio
async def test_calls_from_inside_a_running_loop_raise(store):
    with pytest.raises(RuntimeError, match="async API"):
        store.put(b"x", key="k")
    with pytest.raises(RuntimeError, match="async API"):
        SyncStore(MemoryModule())
    with pytest.raises(RuntimeError, match="async API"):
        SyncStore.open("memory://")
    # From a worker thread the same store works.
    assert await anyio.to_thread.run_sync(lambda: store.put(b"x", key="k")) == "k"


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["trio"])
async def test_calls_from_inside_a_trio_loop_raise(store, anyio_backend):
    with pytest.raises(RuntimeError, match="trio"):
        store.available("k")


def test_the_loop_thread_itself_cannot_block(store):
    async def inside() -> None:
        store.available("k")

    with pytest.raises(RuntimeError, match="running asyncio event loop"):
        _portal.call(inside)


class _LoopBound(MemoryModule):
    """A module holding a client bound to the loop it was created on (as aiohttp does)."""

    def __init__(self) -> None:
        super().__init__()
        self._session = type("Session", (), {})()
        self._session._loop = asyncio.get_running_loop()


def test_a_module_in_use_on_another_running_loop_is_refused():
    created = threading.Event()
    done = threading.Event()
    holder: list[StorageModule] = []

    async def owner() -> None:
        holder.append(_LoopBound())
        created.set()
        await asyncio.get_running_loop().run_in_executor(None, done.wait, 30)

    thread = threading.Thread(target=asyncio.run, args=(owner(),))
    thread.start()
    try:
        assert created.wait(10)
        with pytest.raises(RuntimeError, match="another running event loop"):
            SyncStore(holder[0])
    finally:
        done.set()
        thread.join(10)
    # Once that loop has finished, nothing is running it any more: wrapping is allowed.
    SyncStore(holder[0]).close()


def test_open_creates_the_module_on_the_loop_thread():
    seen: list[bool] = []

    class Recording(MemoryModule):
        async def __aenter__(self):
            seen.append(_portal.in_loop_thread())
            return self

    from asyncstore.registry import Registry

    class EntryPoint:
        name = "recording"
        value = "tests:Recording"

        def load(self):
            return Recording

    with SyncStore.open("recording://", registry=Registry([EntryPoint()])) as store:
        store.put(b"x", key="k")
        assert isinstance(store.module, Recording)
    assert seen == [True]


def test_closed_store_refuses_calls():
    store = SyncStore(MemoryModule())
    store.close()
    store.close()
    assert store.closed
    with pytest.raises(RuntimeError, match="closed"):
        store.put(b"x", key="k")


def test_not_a_module_is_a_type_error():
    with pytest.raises(TypeError, match="storage module"):
        SyncStore(object())  # type: ignore[arg-type]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_gets_its_own_loop(tmp_path):
    opened = SyncStore.open("memory://")
    wrapped = SyncStore(MemoryModule())
    opened.put(b"parent", key="k")
    wrapped.put(b"parent", key="k")
    parent_loop = _portal.current_loop()
    # A stream the parent is reading must not be used by the child.
    stream = wrapped.get_read_stream("k")
    read_end, write_end = os.pipe()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # "process is multi-threaded"
        pid = os.fork()
    if pid == 0:  # the child: report through the pipe, never return into pytest
        code = 1
        try:
            assert not opened.available("k")  # reopened: a fresh module on a new loop
            opened.put(b"child", key="k")
            assert opened.get_read_stream("k").read() == b"child"
            assert wrapped.get_read_stream("k").read() == b"parent"  # used as it is
            assert _portal.current_loop() is not parent_loop
            try:
                stream.read()
            except RuntimeError as exc:
                assert "fork" in str(exc)
            else:
                raise AssertionError("the parent's stream worked in the child")
            os.write(write_end, b"ok")
            code = 0
        except BaseException as exc:
            os.write(write_end, repr(exc).encode()[:500])
        finally:
            os._exit(code)
    os.close(write_end)
    deadline = time.monotonic() + 30
    while (waited := os.waitpid(pid, os.WNOHANG)) == (0, 0):
        if time.monotonic() > deadline:
            os.kill(pid, 9)
            pytest.fail("the forked child deadlocked")
        time.sleep(0.01)
    report = os.read(read_end, 1000)
    os.close(read_end)
    assert report == b"ok", report
    assert os.waitstatus_to_exitcode(waited[1]) == 0
    # The parent's loop and stores are untouched.
    assert _portal.current_loop() is parent_loop
    assert opened.get_read_stream("k").read() == b"parent"
    stream.close()
    opened.close()
    wrapped.close()


def test_interpreter_exit_closes_stores_and_stops_the_loop():
    code = """
import sys
from asyncstore.memory import MemoryModule
from asyncstore.sync import SyncStore

class Noisy(MemoryModule):
    async def aclose(self):
        print("closed", flush=True)

store = SyncStore(Noisy())
store.put(b"x", key="k")
print(store.get_size("k"), flush=True)
"""
    result = subprocess.run(
        [sys.executable, "-W", "error", "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["1", "closed"]
    assert result.stderr == ""
