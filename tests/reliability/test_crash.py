"""Crash tests: SIGKILL a process streaming large puts; the key is always one whole version.

See `tests.reliability.crash`. The regular run kills a few times per backend; a full harness
run kills at least a hundred times per backend. SIGINT trials check that an interrupted put
cleans up after itself, and two regression tests pin down the windows these trials found.
"""

from __future__ import annotations

import asyncio
import base64
import os
import random
import signal
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import anyio
import anyio.to_thread
import pytest

from asyncstore_fs import FileSystemModule
from asyncstore_s3 import S3Module
from tests.reliability.crash import (
    ACCESS_KEY_VAR,
    CHUNK,
    ENCRYPTION_KEY_VAR,
    REPO,
    SECRET_KEY_VAR,
    SEED_VAR,
    CrashCheckError,
    CrashSummary,
    Harness,
    Target,
    child_command,
    crash_trials,
    fs_leftovers,
    open_module,
    read_version,
    s3_leftovers,
    version_chunks,
)
from tests.reliability.faultproxy import FaultProxy, Request
from tests.reliability.harness import Figures, scaled
from tests.s3server import Endpoint

pytestmark = pytest.mark.anyio

MiB = 1 << 20
KEY = "crash/object.bin"
SECTION = "Crash tests"


@pytest.fixture
def seed() -> int:
    return int(os.environ.get(SEED_VAR) or random.randrange(1 << 32))


def record(figures: Figures, summary: CrashSummary, kills: int) -> None:
    figures.add(SECTION, **summary.row())
    assert summary.kills == kills
    assert summary.left_after == 0
    assert summary.old + summary.new + summary.absent == kills


async def test_checker_catches_partial_and_mixed_objects(tmp_path: Path) -> None:
    # The check every trial relies on must see a torn object for what it is.
    async with FileSystemModule(root=str(tmp_path), fsync=False) as module:
        assert await read_version(module, "k") is None
        size = 3 * CHUNK + 5
        whole = b"".join(version_chunks(7, size))
        other = b"".join(version_chunks(8, size))
        label = {"version": "7"}
        await module.put(whole, key="k", metadata=label)
        found = await read_version(module, "k")
        assert found is not None and (found.version, found.size) == (7, size)
        await module.put(whole, key="k", metadata={"version": "8"})
        with pytest.raises(CrashCheckError, match="metadata of 8"):
            await read_version(module, "k")
        await module.put(whole[:-1], key="k", metadata=label)
        with pytest.raises(CrashCheckError, match="partial object"):
            await read_version(module, "k")
        await module.put(whole[: 2 * CHUNK] + other[2 * CHUNK :], key="k", metadata=label)
        with pytest.raises(CrashCheckError, match="torn or mixed"):
            await read_version(module, "k")
        await module.put(other[100:], key="k", metadata=label)
        with pytest.raises(CrashCheckError, match="stamp"):
            await read_version(module, "k")


# SIGKILL leaves leftovers for the cleanup; SIGINT cancels the put, which must clean up itself.
# The quick run cleans up through the command line once, after a kill.
STOPS = [
    pytest.param(signal.SIGKILL, scaled(3, 100), scaled(3, 10), id="kill"),
    pytest.param(signal.SIGINT, scaled(1, 30), scaled(0, 10), id="interrupt"),
]


@pytest.mark.parametrize(("stop", "kills", "cli_every"), STOPS)
async def test_fs_survives_kills(
    tmp_path: Path, seed: int, figures: Figures, stop: signal.Signals, kills: int, cli_every: int
) -> None:
    root = str(tmp_path / "store")
    target = Target("fs", min_size=16 * MiB, max_size=40 * MiB + 12345, root=root)
    leftovers = partial(fs_leftovers, root, KEY)
    harness = Harness(target, tmp_path, {}, leftovers, seed=seed, stop=stop)
    summary = await crash_trials(harness, kills=kills, cli_every=cli_every)
    record(figures, summary, kills)


async def test_fs_with_sidecars_survives_kills(tmp_path: Path, seed: int, figures: Figures) -> None:
    # Metadata in sidecar files (filesystems without extended attributes): two renames a put.
    root = str(tmp_path / "store")
    target = Target("fs", min_size=16 * MiB, max_size=40 * MiB + 12345, root=root, xattrs=False)
    kills = scaled(2, 100)
    leftovers = partial(fs_leftovers, root, KEY)
    harness = Harness(target, tmp_path, {}, leftovers, seed=seed)
    summary = await crash_trials(harness, kills=kills, cli_every=scaled(0, 10))
    record(figures, summary, kills)


@pytest.mark.parametrize("xattrs", [True, False], ids=["xattrs", "sidecars"])
@pytest.mark.parametrize("bare", [False, True], ids=["with-metadata", "without-metadata"])
async def test_fs_kill_as_the_new_file_is_renamed_keeps_the_old_object(
    tmp_path: Path, xattrs: bool, bare: bool
) -> None:
    # The narrowest window of a put: with sidecars, the sidecar is renamed into place just
    # before the object is. Killed there, the old object once lost its metadata.
    root = str(tmp_path / "store")
    target = Target("fs", min_size=3 * MiB, max_size=3 * MiB, root=root, xattrs=xattrs)
    async with open_module(target, {}) as module:
        old = b"".join(version_chunks(1, 2 * MiB + 7))
        await module.put(old, key=KEY, metadata={"version": "1"})
        flags = ("--die-before-publish", "--bare") if bare else ("--die-before-publish",)
        command = child_command(target, key=KEY, start=2, seed=0, flags=flags)
        result = await anyio.run_process(command, check=False, cwd=REPO)
        assert result.returncode == -signal.SIGKILL, result.stderr.decode()[-2000:]
        assert result.stdout.decode().split("\n")[-2] == "end 2"
        found = await read_version(module, KEY)
        assert found is not None and found.version == 1
        leftovers = fs_leftovers(root, KEY)
        assert len(leftovers) == 1, leftovers
        assert await module.cleanup(older_than=0) == {"temporaries": 1}
        assert fs_leftovers(root, KEY) == []
        assert await read_version(module, KEY) == found


@pytest.mark.parametrize(("stop", "kills", "cli_every"), STOPS)
async def test_s3_survives_kills(
    tmp_path: Path,
    seed: int,
    figures: Figures,
    s3_endpoint: Endpoint,
    bucket: str,
    boto3_client: Any,
    stop: signal.Signals,
    kills: int,
    cli_every: int,
) -> None:
    target = Target(
        "s3",
        min_size=12 * MiB,
        max_size=20 * MiB + 12345,
        bucket=bucket,
        prefix="app/",
        endpoint_url=s3_endpoint.url,
        region=s3_endpoint.region,
        server=s3_endpoint.name,
    )
    env = {ACCESS_KEY_VAR: s3_endpoint.access_key_id, SECRET_KEY_VAR: s3_endpoint.secret_access_key}
    leftovers = partial(s3_leftovers, boto3_client, bucket)
    harness = Harness(target, tmp_path, env, leftovers, seed=seed, stop=stop)
    summary = await crash_trials(harness, kills=kills, cli_every=cli_every)
    record(figures, summary, kills)


async def test_middleware_stack_survives_kills(tmp_path: Path, seed: int, figures: Figures) -> None:
    root = str(tmp_path / "store")
    target = Target("stack", min_size=16 * MiB, max_size=24 * MiB + 12345, root=root)
    env = {ENCRYPTION_KEY_VAR: base64.b64encode(os.urandom(32)).decode()}
    kills = scaled(2, 30)
    harness = Harness(target, tmp_path, env, partial(fs_leftovers, root, KEY), seed=seed)
    summary = await crash_trials(harness, kills=kills, cli_every=scaled(0, 10))
    record(figures, summary, kills)


def starts_upload(request: Request) -> bool:
    return request.method == "POST" and "uploads" in parse_qs(
        urlsplit(request.target).query, keep_blank_values=True
    )


@pytest.mark.parametrize("how", ["cancel-scope", "task-cancel"])
async def test_s3_put_cancelled_while_starting_its_upload_aborts_it(
    s3_endpoint: Endpoint, bucket: str, boto3_client: Any, how: str
) -> None:
    # Found by the SIGINT trials: a put cancelled while CreateMultipartUpload was in flight
    # left the upload the server had created. Here the server creates it and the proxy holds
    # the response back; the put is cancelled once the upload exists, as anyio cancels
    # (a cancel scope) and as asyncio delivers Ctrl-C (Task.cancel() on the main task).
    async with FaultProxy(s3_endpoint.url, delay=(1.0, 1.0)) as proxy:
        proxy.force("delay", when=starts_upload)
        options = {**s3_endpoint.module_options(), "endpoint_url": proxy.url}
        async with S3Module(bucket=bucket, part_size=5 * MiB, **options) as module:

            async def put() -> None:
                await module.put(iter(version_chunks(1, 12 * MiB)), key="k")

            async def started() -> None:
                # The server has created the upload; its response is still held back.
                for _ in range(1000):
                    if await anyio.to_thread.run_sync(s3_leftovers, boto3_client, bucket):
                        return
                    await anyio.sleep(0.02)
                raise AssertionError("the upload never started")

            if how == "task-cancel":
                task = asyncio.ensure_future(put())
                await started()
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task
            else:
                async with anyio.create_task_group() as group:
                    group.start_soon(put)
                    await started()
                    group.cancel_scope.cancel()
        assert proxy.injected["delay"] == 1
    assert s3_leftovers(boto3_client, bucket) == []
    assert boto3_client.list_objects_v2(Bucket=bucket).get("KeyCount") == 0
