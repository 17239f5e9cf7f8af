"""OSError from real system calls, translated at the boundary and chained."""

from __future__ import annotations

import asyncio
import errno
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap

import pytest

from asyncstore.errors import (
    InvalidKeyError,
    NotFoundError,
    PermissionDeniedError,
    StorageError,
    StorageFullError,
)
from asyncstore_fs import FileSystemModule, map_os_errors

pytestmark = pytest.mark.anyio

NOBODY = 65534


def chattr(flag: str, path: str) -> None:
    subprocess.run(["chattr", flag, path], check=True)


@pytest.fixture
async def store(tmp_path):
    async with FileSystemModule(root=str(tmp_path / "root"), fsync=False) as module:
        yield module


async def test_missing_object_names_store_and_handle(store):
    with pytest.raises(NotFoundError) as caught:
        await store.get_read_stream("no/such")
    assert "'fs'" in str(caught.value) and "'no/such'" in str(caught.value)
    assert isinstance(caught.value.__cause__, FileNotFoundError)


async def test_overlong_segment_is_an_invalid_key(store):
    # Refused before any I/O, so no directory is made for it either.
    with pytest.raises(InvalidKeyError, match="300 bytes") as caught:
        await store.put(b"x", key="d/" + "n" * 300)
    assert caught.value.__cause__ is None
    assert os.listdir(store.root) == []
    # The filesystem's own refusal (a mount with a shorter limit) means the same.
    with pytest.raises(InvalidKeyError) as caught, map_os_errors(store="fs", handle="k"):
        raise OSError(errno.ENAMETOOLONG, "File name too long")
    assert caught.value.__cause__.errno == errno.ENAMETOOLONG


async def test_immutable_directory_is_permission_denied(store):
    await store.put(b"old", key="locked/k")
    locked = os.path.join(store.root, "locked")
    chattr("+i", locked)
    try:
        with pytest.raises(PermissionDeniedError) as caught:
            await store.put(b"new", key="locked/k")
        assert caught.value.__cause__.errno == errno.EPERM
        with pytest.raises(PermissionDeniedError):
            await store.delete("locked/k")
    finally:
        chattr("-i", locked)
    async with await store.get_read_stream("locked/k") as stream:
        assert await stream.read() == b"old"


def test_unprivileged_user_is_permission_denied():
    # Tests run as root, which file modes do not stop: drop to nobody in a forked child.
    base = tempfile.mkdtemp(prefix="asyncstore-fs-perm-")
    try:
        os.chmod(base, 0o755)
        root = os.path.join(base, "root")
        os.makedirs(os.path.join(root, "private"))
        with open(os.path.join(root, "private", "secret"), "wb") as file:
            file.write(b"root only")
        os.chmod(os.path.join(root, "private", "secret"), 0o600)
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child reports through the pipe
            os.close(read_fd)
            outcome = _as_nobody(root)
            os.write(write_fd, outcome.encode())
            os._exit(0)
        os.close(write_fd)
        with os.fdopen(read_fd) as pipe:
            outcome = pipe.read()
        os.waitpid(pid, 0)
        assert outcome == "put:PermissionDeniedError:13 get:PermissionDeniedError:13"
    finally:
        shutil.rmtree(base)


def _as_nobody(root: str) -> str:
    try:
        os.setgroups([])
        os.setresgid(NOBODY, NOBODY, NOBODY)
        os.setresuid(NOBODY, NOBODY, NOBODY)

        async def attempt(what, call):
            try:
                await call
            except Exception as exc:
                cause = getattr(exc.__cause__, "errno", None)
                return f"{what}:{type(exc).__name__}:{cause}"
            return f"{what}:no error"

        async def main():
            store = FileSystemModule(root=root, fsync=False)
            put = await attempt("put", store.put(b"x", key="private/new"))
            get = await attempt("get", store.get_read_stream("private/secret"))
            await store.aclose()
            return f"{put} {get}"

        return asyncio.run(main())
    except BaseException as exc:
        return f"child failed: {exc!r}"


def test_mapping_helper_on_a_real_enospc():
    fd = os.open("/dev/full", os.O_WRONLY)
    try:
        with pytest.raises(StorageFullError) as caught:
            with map_os_errors(store="s", handle="k"):
                os.write(fd, b"x" * 4096)
    finally:
        os.close(fd)
    assert caught.value.__cause__.errno == errno.ENOSPC
    assert (caught.value.store, caught.value.handle) == ("s", "k")


def test_other_errors_stay_storage_errors():
    fd = os.open("/", os.O_RDONLY)
    try:
        with pytest.raises(StorageError) as caught:
            with map_os_errors(store="s", handle=None):
                os.read(fd, 1)  # EISDIR
    finally:
        os.close(fd)
    assert type(caught.value) is StorageError
    assert caught.value.__cause__.errno == errno.EISDIR


def test_file_size_limit_is_storage_full_and_keeps_the_old_object(tmp_path):
    # RLIMIT_FSIZE makes write() fail with EFBIG, as a full quota would, in a real write.
    script = textwrap.dedent(
        """
        import asyncio, os, resource, signal, sys
        from asyncstore.errors import StorageFullError
        from asyncstore_fs import FileSystemModule

        async def main(root):
            async with FileSystemModule(root=root) as store:
                await store.put(b"old", key="k")
                signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
                resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))
                for source in (b"x" * (2 << 20), iter([b"y" * (1 << 19)] * 4)):
                    try:
                        await store.put(source, key="k")
                    except StorageFullError as exc:
                        print(type(exc).__name__, exc.__cause__.errno)
                async with await store.get_read_stream("k") as stream:
                    print(await stream.read())
                print([i.handle async for i in store.list()])

        asyncio.run(main(sys.argv[1]))
        """
    )
    root = str(tmp_path / "root")
    result = subprocess.run(
        [sys.executable, "-c", script, root], capture_output=True, text=True, timeout=60
    )
    assert result.stderr == ""
    assert result.stdout.split("\n") == [
        f"StorageFullError {errno.EFBIG}",
        f"StorageFullError {errno.EFBIG}",
        "b'old'",
        "['k']",
        "",
    ]
    assert [name for name in os.listdir(root) if "\x7f" in name] == []
