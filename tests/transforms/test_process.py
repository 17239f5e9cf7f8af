"""Process isolation: the same results in a worker; a worker that crashes, hangs or runs out
of memory becomes a TransformError and the host goes on; cancelling kills the worker."""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest

from asyncstore import ConfigError, TransformError, run_transform
from asyncstore.memory import MemoryModule
from asyncstore.testing import SourceFailed, failing_source
from asyncstore.testing.transforms import run_on_bytes
from asyncstore.transforms import InputInfo, InputStream, RemoteError, Transform

from .helpers import Chatty, Crash, FailAfter, Hang, Hog, Split

pytestmark = pytest.mark.anyio

DATA = b"".join(b"%08d line\n" % i for i in range(300_000))  # 4.5 MB


@pytest.fixture
async def store() -> AsyncIterator[MemoryModule]:
    async with MemoryModule() as module:
        await module.put(DATA, key="in", metadata={"owner": "ann"}, content_type="text/plain")
        yield module


async def read(store: MemoryModule, key: str) -> bytes:
    async with await store.get_read_stream(key) as stream:
        return await stream.read()


async def still_works(store: MemoryModule) -> None:
    await run_transform(
        "identity", inputs=[(store, "in")], outputs=[(store, "again")], isolation="process"
    )
    assert await read(store, "again") == DATA


async def test_the_same_results_in_a_worker(store: MemoryModule) -> None:
    await run_transform(
        "gzip", inputs=[(store, "in")], outputs=[(store, "in.gz")], isolation="process"
    )
    await run_transform(
        "gzip",
        inputs=[(store, "in.gz")],
        outputs=[(store, "back")],
        params={"mode": "decompress"},
        isolation="process",
    )
    assert await read(store, "back") == DATA
    info = await store.stat("back")
    assert (dict(info.metadata), info.content_type) == ({"owner": "ann"}, "text/plain")
    even, odd = await run_on_bytes(Split, [b"a\nb\nc\n"], isolation="process")
    assert (even.data, odd.data, odd.metadata) == (b"a\nc\n", b"b\n", {"half": "odd"})


async def test_a_worker_that_exits_is_a_transform_error(store: MemoryModule) -> None:
    with pytest.raises(TransformError) as caught:
        await run_transform(
            Crash, inputs=[(store, "in")], outputs=[(store, "out")], isolation="process"
        )
    assert isinstance(caught.value.__cause__, ChildProcessError)
    assert "exited with status 3" in str(caught.value)
    assert "about to go" in str(caught.value)  # what it printed last
    assert not await store.available("out")
    await still_works(store)


async def test_a_worker_killed_by_a_signal_is_a_transform_error(store: MemoryModule) -> None:
    with pytest.raises(TransformError, match="SIGKILL"):
        await run_transform(
            Crash,
            inputs=[(store, "in")],
            outputs=[(store, "out")],
            params={"how": "signal"},
            isolation="process",
        )
    assert not await store.available("out")
    await still_works(store)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return (
        Path(f"/proc/{pid}").exists()
        and "zombie" not in Path(f"/proc/{pid}/status").read_text().lower()
    )


async def test_a_hung_worker_is_killed_after_the_timeout(
    store: MemoryModule, tmp_path: Path
) -> None:
    pidfile = tmp_path / "pid"
    start = anyio.current_time()
    with pytest.raises(TransformError) as caught:
        await run_transform(
            Hang,
            inputs=[(store, "in")],
            outputs=[(store, "out")],
            params={"pidfile": str(pidfile)},
            isolation="process",
            timeout=3.0,  # past a worker's start on a loaded machine: it hangs in the call
        )
    assert isinstance(caught.value.__cause__, TimeoutError)
    assert "3 s" in str(caught.value)
    assert 3.0 <= anyio.current_time() - start < 60
    assert not alive(int(pidfile.read_text()))
    assert not await store.available("out")
    await still_works(store)


async def test_a_worker_past_its_memory_limit_is_a_transform_error(store: MemoryModule) -> None:
    with pytest.raises(TransformError) as caught:
        await run_transform(
            Hog,
            inputs=[(store, "in")],
            outputs=[(store, "out")],
            params={"mib": "1024"},
            isolation="process",
            memory_limit=256 << 20,
        )
    assert isinstance(caught.value.__cause__, (MemoryError, ChildProcessError))
    assert not await store.available("out")
    await still_works(store)


async def test_the_transforms_error_comes_back_with_its_traceback(store: MemoryModule) -> None:
    with pytest.raises(TransformError) as caught:
        await run_transform(
            FailAfter,
            inputs=[(store, "in")],
            outputs=[(store, "out")],
            params={"after": "100"},
            isolation="process",
        )
    cause = caught.value.__cause__
    assert isinstance(cause, ValueError) and str(cause) == "boom"
    assert "helpers.py" in cause.remote_traceback  # type: ignore[attr-defined]
    assert not await store.available("out")


async def test_a_failing_input_is_raised_as_it_is(store: MemoryModule) -> None:
    source = InputStream.from_source(failing_source(DATA, 2_000_000), InputInfo("x", None))
    with pytest.raises(SourceFailed):
        await run_transform(
            "identity", inputs=[source], outputs=[(store, "out")], isolation="process"
        )
    assert not await store.available("out")


async def test_prints_and_logs_of_the_worker(
    store: MemoryModule, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="asyncstore.transforms"):
        await run_transform(
            Chatty, inputs=[(store, "in")], outputs=[(store, "out")], isolation="process"
        )
    assert await read(store, "out") == DATA  # the print went to stderr, not into the protocol
    assert [(r.name, r.getMessage()) for r in caplog.records] == [
        ("asyncstore.transforms.chatty", "a warning from chatty")
    ]


async def test_cancelling_the_caller_kills_the_worker(store: MemoryModule, tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    with anyio.move_on_after(30):
        async with anyio.create_task_group() as group:
            group.start_soon(
                lambda: run_transform(
                    Hang,
                    inputs=[(store, "in")],
                    outputs=[(store, "out")],
                    params={"pidfile": str(pidfile)},
                    isolation="process",
                )
            )
            while not pidfile.exists() or not pidfile.read_text():  # noqa: ASYNC110
                await anyio.sleep(0.05)
            group.cancel_scope.cancel()
    assert not alive(int(pidfile.read_text()))
    assert not await store.available("out")


async def test_a_class_a_worker_cannot_import_is_refused(store: MemoryModule) -> None:
    class Local(Transform):
        async def __call__(self, inputs, outputs, params) -> None:  # type: ignore[no-untyped-def]
            pass

    with pytest.raises(TransformError, match="not importable"):
        await run_transform(
            Local, inputs=[(store, "in")], outputs=[(store, "out")], isolation="process"
        )


async def test_isolation_options_are_checked() -> None:
    async with MemoryModule() as store:
        for options in ({"isolation": "thread"}, {"timeout": 0}, {"memory_limit": 1000}):
            with pytest.raises(ConfigError):
                await run_transform(
                    "identity",
                    inputs=[(store, "in")],
                    outputs=[(store, "out")],
                    **options,  # type: ignore[arg-type]
                )


def test_remote_errors_of_unknown_types() -> None:
    error = RemoteError("LibError", "it broke", "Traceback ...")
    assert str(error) == "LibError: it broke" and error.type_name == "LibError"


async def test_workers_are_reused_until_a_call_fails(store: MemoryModule) -> None:
    from .helpers import Pid

    async def pid() -> int:
        (out,) = await run_on_bytes(Pid, [b"abc"], isolation="process")
        assert out.data == b"abc"
        return int(out.metadata["pid"])

    first = await pid()
    assert first != os.getpid() and await pid() == first  # the same worker, kept
    os.kill(first, 9)  # an idle worker that went away is replaced, the call unharmed
    second = await pid()
    assert second != first and await pid() == second
    with pytest.raises(TransformError):
        await run_on_bytes(Pid, [b"abc"], params={"x": "1"}, isolation="process")
    assert await pid() == second  # refused before it reached the worker
