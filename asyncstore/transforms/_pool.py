"""The worker processes of process isolation, kept for reuse as a storlet's daemon is.

A worker serves one call at a time. One that finished a call cleanly waits for the next call
of the same transform (with the same memory limit), so only the first call pays for starting
Python; one whose call failed, crashed, hung or was cancelled is killed. A worker idle for
`IDLE_SECONDS` exits by itself, and at most `MAX_IDLE` wait per transform. Workers use raw
pipes, not objects of an event loop, so calls from any event loop (or thread) share them; a
process forked from the host drops the pool it inherited (those workers are its parent's).
"""

from __future__ import annotations

import atexit
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Hashable

import anyio
import anyio.to_thread

from asyncstore.transforms._protocol import grow_pipe, map_region, region_fd

__all__ = ["IDLE_SECONDS", "MAX_IDLE", "Worker", "give_back", "take"]

IDLE_SECONDS = 60.0
"""How long a worker waits for another call before it exits."""
MAX_IDLE = 4
"""How many idle workers are kept per transform."""
STDERR_TAIL = 4000
"""How many bytes of a worker's stderr are kept for error messages."""


class Worker:
    """One worker process and the host's ends of its pipes."""

    def __init__(self, memory_limit: int | None) -> None:
        region = region_fd()
        worker_in, self.write_fd = os.pipe()
        self.read_fd, worker_out = os.pipe()
        self.err_fd, worker_err = os.pipe()
        for fd in (self.write_fd, worker_out):
            grow_pipe(fd)
        for fd in (self.read_fd, self.write_fd, self.err_fd):
            os.set_blocking(fd, False)
        try:
            self.region = map_region(region)
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "asyncstore.transforms._worker",
                    repr(IDLE_SECONDS),
                    str(memory_limit or 0),
                    str(region),
                ],
                stdin=worker_in,
                stdout=worker_out,
                stderr=worker_err,
                pass_fds=(region,),
                start_new_session=True,
            )
        except BaseException:
            self._close_fds()
            raise
        finally:
            for fd in (worker_in, worker_out, worker_err, region):
                os.close(fd)
        self.view = memoryview(self.region)
        self.tail = bytearray()
        self.calls = 0

    @property
    def pid(self) -> int:
        """The worker's process id."""
        return self.process.pid

    def alive(self) -> bool:
        """Whether the process is still running."""
        return self.process.poll() is None

    def read_stderr(self) -> bool:
        """Keep what the worker printed since last time; return False at the end of it."""
        while True:
            try:
                data = os.read(self.err_fd, 65536)
            except BlockingIOError:
                return True
            except OSError:
                return False
            if not data:
                return False
            self.tail += data
            del self.tail[:-STDERR_TAIL]

    async def keep_stderr(self) -> None:
        """Keep the tail of what the worker prints, until cancelled or the worker closes it."""
        while self.read_stderr():
            await anyio.wait_readable(self.err_fd)

    def last_words(self) -> str:
        """The last lines the worker printed, joined."""
        lines = bytes(self.tail).decode(errors="replace").strip().splitlines()[-3:]
        return " | ".join(lines)

    def exit_reason(self) -> str:
        """How the process ended, in words."""
        code = self.process.returncode
        if code is None:
            return "closed its pipe"
        if code < 0:
            try:
                return f"was killed by {signal.Signals(-code).name}"
            except ValueError:
                return f"was killed by signal {-code}"
        return f"exited with status {code}"

    async def reap(self, *, kill: bool = True) -> None:
        """Kill the process (unless it ended) and wait for it; close the pipes."""
        with anyio.CancelScope(shield=True):
            if kill and self.process.poll() is None:
                self.process.kill()
            if self.process.poll() is None:
                with anyio.move_on_after(10):
                    await anyio.to_thread.run_sync(self.process.wait)
            self.read_stderr()
            self._close_fds()
        if self.process.returncode is None:
            _retire(self)

    def _close_fds(self) -> None:
        for name in ("read_fd", "write_fd", "err_fd"):
            fd = getattr(self, name, -1)
            if fd >= 0:
                os.close(fd)
                setattr(self, name, -1)
        view = getattr(self, "view", None)
        if view is not None:
            self.view = None  # type: ignore[assignment]
            try:
                view.release()
                self.region.close()
            except BufferError:
                pass  # a traceback still holds a view of it: unmapped when that goes

    def stop(self) -> None:
        """Stop an idle worker without waiting (it exits when its pipe closes)."""
        self._close_fds()
        if self.process.poll() is None:
            self.process.kill()
            _retire(self)


_lock = threading.Lock()
_idle: dict[Hashable, list[Worker]] = {}
_retired: list[Worker] = []  # killed, not yet reaped: kept so no Popen is collected running


def _retire(worker: Worker) -> None:
    with _lock:
        _retired.append(worker)


def _reap_retired() -> None:
    _retired[:] = [w for w in _retired if w.process.poll() is None]


def take(key: Hashable, memory_limit: int | None) -> tuple[Worker, bool]:
    """Return an idle worker for ``key`` (and True), or a new one (and False)."""
    with _lock:
        _reap_retired()
        idle = _idle.get(key, [])
        while idle:
            worker = idle.pop()
            if worker.alive():
                return worker, True
            worker._close_fds()  # it left after its idle time
    return Worker(memory_limit), False


def give_back(key: Hashable, worker: Worker) -> None:
    """Keep a worker that finished its call cleanly for the next call of ``key``."""
    worker.calls += 1
    worker.tail.clear()
    with _lock:
        idle = _idle.setdefault(key, [])
        if len(idle) < MAX_IDLE and worker.alive():
            idle.append(worker)
            return
    worker.stop()


def _drop_inherited() -> None:
    # In a forked child: the workers are the parent's; forget them without touching them.
    global _lock
    _lock = threading.Lock()
    for workers in _idle.values():
        for worker in workers:
            worker._close_fds()
            worker.process.returncode = 0  # not ours to wait for
    _idle.clear()
    for worker in _retired:
        worker.process.returncode = 0
    _retired.clear()


def _stop_all() -> None:
    with _lock:
        workers = [w for idle in _idle.values() for w in idle] + _retired
        _idle.clear()
    for worker in workers:
        worker._close_fds()
        if worker.process.poll() is None:
            worker.process.kill()
        try:
            worker.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_drop_inherited)
atexit.register(_stop_all)
