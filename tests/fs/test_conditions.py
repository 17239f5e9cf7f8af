"""Conditional writes on the filesystem across processes, and after a process is killed.

The conformance suite checks conditions between tasks of one process; these check them
between processes (each with its own module on the same root), and that a process killed
with SIGKILL, at any moment of its conditional writes, leaves no lock behind.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import anyio
import pytest

from asyncstore.errors import AlreadyExistsError, PreconditionFailedError
from asyncstore_fs import FileSystemModule

pytestmark = pytest.mark.anyio

REPO = Path(__file__).resolve().parents[2]

# A process that increments the counter under KEY by compare-and-swap, N times.
_INCREMENTER = textwrap.dedent(
    """
    import sys, anyio
    from asyncstore.errors import PreconditionFailedError
    from asyncstore_fs import FileSystemModule

    async def main(root, times):
        async with FileSystemModule(root=root, fsync=False) as store:
            done = 0
            while times < 0 or done < times:
                async with await store.get_read_stream("counter") as stream:
                    value = int(await stream.read())
                    etag = stream.info.etag
                try:
                    await store.put(str(value + 1).encode(), key="counter", if_match=etag)
                except PreconditionFailedError:
                    continue
                done += 1

    anyio.run(main, sys.argv[1], int(sys.argv[2]))
    """
)


def _python(script: str, *args: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, "-c", script, *args], env=env)


def _spawn(root: Path, times: int) -> subprocess.Popen[bytes]:
    return _python(_INCREMENTER, str(root), str(times))


async def test_compare_and_swap_across_processes_loses_no_update(tmp_path: Path) -> None:
    async with FileSystemModule(root=str(tmp_path), fsync=False) as store:
        await store.put(b"0", key="counter")
        processes = [_spawn(tmp_path, 40) for _ in range(4)]
        for process in processes:
            assert await anyio.to_thread.run_sync(process.wait) == 0
        assert await store.get_size("counter") > 0
        async with await store.get_read_stream("counter") as stream:
            assert int(await stream.read()) == 4 * 40


async def test_create_only_across_processes_has_one_winner(tmp_path: Path) -> None:
    script = textwrap.dedent(
        """
        import sys, anyio
        from asyncstore.errors import AlreadyExistsError
        from asyncstore_fs import FileSystemModule

        async def main(root, name):
            async with FileSystemModule(root=root, fsync=False) as store:
                try:
                    await store.put(name.encode() * 1000, key="lock", overwrite=False)
                except AlreadyExistsError:
                    sys.exit(3)

        anyio.run(main, sys.argv[1], sys.argv[2])
        """
    )
    processes = [_python(script, str(tmp_path), f"p{index}") for index in range(6)]
    codes = [await anyio.to_thread.run_sync(process.wait) for process in processes]
    assert sorted(codes) == [0] + [3] * 5, codes
    winner = f"p{codes.index(0)}".encode() * 1000
    async with FileSystemModule(root=str(tmp_path)) as store:
        async with await store.get_read_stream("lock") as stream:
            assert await stream.read() == winner
        with pytest.raises(AlreadyExistsError):
            await store.put(b"late", key="lock", overwrite=False)


async def test_killed_writers_leave_no_lock_behind(tmp_path: Path) -> None:
    """SIGKILL a process looping on conditional writes, many times, at random moments.

    After each kill, conditional writes of another process must complete at once (a lock
    held by the dead process would block them forever), and the counter must still be a
    whole version that only ever went up.
    """
    rng = random.Random()
    async with FileSystemModule(root=str(tmp_path), fsync=True) as store:
        await store.put(b"0", key="counter")
        last = 0
        for _ in range(8):
            before = (await store.stat("counter")).etag
            process = _spawn(tmp_path, -1)
            with anyio.fail_after(30):  # wait until it is writing, then kill it mid-loop
                # Another process writes: there is no event of ours to wait for.
                while (await store.stat("counter")).etag == before:  # noqa: ASYNC110
                    await anyio.sleep(0.01)
            await anyio.sleep(rng.uniform(0, 0.2))
            process.send_signal(signal.SIGKILL)
            await anyio.to_thread.run_sync(process.wait)
            started = time.monotonic()
            with anyio.fail_after(10):  # a stuck lock would hang here
                async with await store.get_read_stream("counter") as stream:
                    value = int(await stream.read())
                    etag = stream.info.etag
                assert value >= last, f"the counter went back from {last} to {value}"
                await store.put(str(value + 1).encode(), key="counter", if_match=etag)
                await store.delete("probe")
                await store.put(b"p", key="probe", overwrite=False)
            assert time.monotonic() - started < 5
            last = value + 1
        with pytest.raises(PreconditionFailedError):
            await store.put(b"stale", key="counter", if_match=etag)
