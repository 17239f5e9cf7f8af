"""The hand-off to the loop thread: outcomes, context, batching, timeouts and interrupts."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import os
import signal
import sys
import threading
import time
import traceback

import pytest

from asyncstore.sync import _portal

_who: contextvars.ContextVar[str] = contextvars.ContextVar("who", default="nobody")


class _Failure(Exception):
    pass


async def _fail_deep() -> None:
    raise _Failure("from the loop")


async def _fail() -> None:
    await _fail_deep()


async def _whoami() -> str:
    await asyncio.sleep(0)
    return _who.get()


def test_an_exception_keeps_its_type_and_the_loop_side_traceback():
    with pytest.raises(_Failure, match="from the loop") as caught:
        _portal.call(_fail)
    names = [frame.name for frame in traceback.extract_tb(caught.value.__traceback__)]
    assert names[0] == "test_an_exception_keeps_its_type_and_the_loop_side_traceback"
    assert names[-2:] == ["_fail", "_fail_deep"]
    # The loop survives a failed call.
    assert _portal.call(_whoami) == "nobody"


def test_a_base_exception_raised_on_the_loop_reaches_the_caller_and_spares_the_loop():
    async def interrupt() -> None:
        raise KeyboardInterrupt

    loop = _portal.current_loop()
    with pytest.raises(KeyboardInterrupt):
        _portal.call(interrupt)
    assert _portal.call(_whoami) == "nobody"
    assert loop is None or _portal.current_loop() is loop


def test_a_call_cancelled_on_the_loop_is_an_ordinary_exception_for_the_caller():
    async def cancelled() -> None:
        raise asyncio.CancelledError

    with pytest.raises(concurrent.futures.CancelledError) as caught:
        _portal.call(cancelled)
    assert isinstance(caught.value, Exception)


def test_each_call_sees_its_own_callers_context_variables():
    # Calls from many threads are started together; each must still run in a copy of its
    # own caller's context, not in the context of whichever caller woke the loop.
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def worker(number: int) -> None:
        try:
            _who.set(f"thread {number}")
            start.wait(10)
            for _ in range(200):
                assert _portal.call(_whoami) == f"thread {number}"
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors[0]


def test_a_call_cannot_change_its_callers_context():
    async def change() -> None:
        _who.set("changed on the loop")

    _portal.call(change)
    assert _who.get() == "nobody"


def test_calls_queued_while_the_loop_is_busy_wake_it_once(monkeypatch):
    _portal.call(_whoami)  # the loop thread is running
    loop = _portal.current_loop()
    assert loop is not None
    busy = threading.Event()
    release = threading.Event()

    async def block_the_loop() -> None:
        busy.set()
        release.wait(10)  # stalls the loop thread on purpose

    wakes: list[object] = []
    schedule = loop.call_soon_threadsafe

    def counting(callback, *args, **kwargs):  # type: ignore[no-untyped-def]
        wakes.append(callback)
        return schedule(callback, *args, **kwargs)

    blocker = threading.Thread(target=_portal.call, args=(block_the_loop,))
    blocker.start()
    assert busy.wait(10)
    monkeypatch.setattr(loop, "call_soon_threadsafe", counting)
    results: list[str] = []
    callers = [
        threading.Thread(target=lambda: results.append(_portal.call(_whoami))) for _ in range(6)
    ]
    for caller in callers:
        caller.start()
    queue = _portal._current.calls._queue  # type: ignore[union-attr]
    try:
        for _ in range(1000):  # until all six calls are queued
            if len(queue) == 6:
                break
            time.sleep(0.01)
        assert len(queue) == 6
    finally:
        release.set()
    for caller in callers:
        caller.join(10)
    blocker.join(10)
    assert results == ["nobody"] * 6
    assert len(wakes) == 1


def test_a_timeout_cancels_the_call_on_the_loop():
    started = threading.Event()
    cancelled = threading.Event()

    async def slow() -> None:
        started.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    with pytest.raises(TimeoutError):
        _portal.call(slow, timeout=0.2)
    assert started.is_set()
    assert cancelled.wait(10)
    assert _portal.call(_whoami) == "nobody"


@pytest.mark.skipif(sys.platform == "win32", reason="needs pthread_kill")
def test_an_interrupted_caller_cancels_its_call():
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signals reach the main thread only")
    started = threading.Event()
    cancelled = threading.Event()

    async def forever() -> None:
        started.set()
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    def interrupt() -> None:
        if started.wait(10):
            signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)  # type: ignore[arg-type]

    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        interrupter = threading.Thread(target=interrupt)
        interrupter.start()
        with pytest.raises(KeyboardInterrupt):
            _portal.call(forever)
        interrupter.join(10)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert cancelled.wait(10)
    # The abandoned call's lock is not reused: the next calls still get their own results.
    assert [_portal.call(_whoami) for _ in range(3)] == ["nobody"] * 3


def test_current_pid_is_the_process_id():
    assert _portal.current_pid() == os.getpid()
