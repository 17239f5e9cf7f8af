"""Benchmark the cost of conditional writes against plain ones, on the same store in one run.

    python bench/conditions.py                        # fs (with and without fsync), memory
    python bench/conditions.py --s3                   # and S3 on moto and SeaweedFS servers
                                                      # it starts on loopback
    python bench/conditions.py --endpoint URL         # and S3 on any endpoint (credentials
                                                      # from AWS_ACCESS_KEY_ID/SECRET)

For each store, rounds alternate between the plain and the conditional form of one write, so
that both see the same machine state:
  * create: ``put`` of a new 4 KiB object, plain vs ``overwrite=False``;
  * replace: ``put`` over an existing 4 KiB object, plain vs ``if_match=<its etag>`` (the etag
    the previous write returned, as a compare-and-swap loop has it).
Each figure is the median of --repeat rounds of --count writes (one task, so the time is the
store's, not the scheduler's); the ratio is conditional time / plain time (goal: <= 1.1).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from asyncstore import StorageModule
from asyncstore.memory import MemoryModule
from asyncstore_fs import FileSystemModule

PAYLOAD = os.urandom(4096)


async def _create(store: StorageModule, count: int, conditional: bool) -> float:
    prefix = uuid.uuid4().hex
    extra: dict[str, Any] = {"overwrite": False} if conditional else {}
    started = time.perf_counter()
    for index in range(count):
        await store.put(PAYLOAD, key=f"{prefix}/{index}", **extra)
    return time.perf_counter() - started


async def _replace(store: StorageModule, count: int, conditional: bool) -> float:
    key = f"replace-{uuid.uuid4().hex}"
    etag = getattr(await store.put(PAYLOAD, key=key), "etag", None)
    if conditional and etag is None:
        etag = (await store.stat(key)).etag
    started = time.perf_counter()
    for _ in range(count):
        if conditional:
            etag = getattr(await store.put(PAYLOAD, key=key, if_match=etag), "etag", None)
        else:
            await store.put(PAYLOAD, key=key)
    return time.perf_counter() - started


async def measure(
    name: str, opener: Callable[[], contextlib.AbstractAsyncContextManager[StorageModule]], args
) -> None:
    async with opener() as store:
        for label, run in (("create", _create), ("replace", _replace)):
            await run(store, max(10, args.count // 10), False)  # warm up
            await run(store, max(10, args.count // 10), True)
            plain: list[float] = []
            conditional: list[float] = []
            for _ in range(args.repeat):
                plain.append(await run(store, args.count, False))
                conditional.append(await run(store, args.count, True))
            p, c = statistics.median(plain), statistics.median(conditional)
            print(
                f"{name:<22} {label:<8} plain {args.count / p:>9.0f} op/s   "
                f"conditional {args.count / c:>9.0f} op/s   ratio {c / p:5.2f}x"
            )


@contextlib.asynccontextmanager
async def fs_store(fsync: bool) -> AsyncIterator[StorageModule]:
    with tempfile.TemporaryDirectory(prefix="bench-conditions-") as root:
        async with FileSystemModule(root=root, fsync=fsync) as store:
            yield store


@contextlib.asynccontextmanager
async def memory_store() -> AsyncIterator[StorageModule]:
    async with MemoryModule() as store:
        yield store


@contextlib.asynccontextmanager
async def s3_store(
    url: str, key_id: str, secret: str, **extra: Any
) -> AsyncIterator[StorageModule]:
    import boto3

    from asyncstore_s3 import S3Module

    bucket = f"bench-conditions-{uuid.uuid4().hex[:12]}"
    client = boto3.client(
        "s3",
        endpoint_url=url,
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
        region_name="us-east-1",
    )
    client.create_bucket(Bucket=bucket)
    try:
        options = {"access_key_id": key_id, "secret_access_key": secret}
        async with S3Module(bucket=bucket, endpoint_url=url, **options, **extra) as store:
            yield store
    finally:
        paginator = client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=bucket):
            for item in page.get("Contents", []):
                client.delete_object(Bucket=bucket, Key=item["Key"])
        client.delete_bucket(Bucket=bucket)


async def main(args: argparse.Namespace) -> None:
    stores: list[tuple[str, Callable[[], Any]]] = [
        ("fs", lambda: fs_store(False)),
        ("fs fsync", lambda: fs_store(True)),
        ("memory", memory_store),
    ]
    with contextlib.ExitStack() as stack:
        if args.s3:
            from tests import seaweedfs
            from tests.s3server import moto_server

            log_dir = Path(stack.enter_context(tempfile.TemporaryDirectory()))
            url = stack.enter_context(moto_server(log_dir, "bench", "bench"))
            stores.append(("s3 (moto)", lambda: s3_store(url, "bench", "bench", engine="moto")))
            weed = stack.enter_context(seaweedfs.seaweedfs_server(log_dir / "seaweedfs"))
            key_id, secret = seaweedfs.READ_WRITE
            stores.append(
                ("s3 (seaweedfs)", lambda: s3_store(weed.url, key_id, secret, engine="seaweedfs"))
            )
        if args.endpoint:
            key_id = os.environ.get("AWS_ACCESS_KEY_ID", "")
            secret = os.environ.get("AWS_SECRET_ACCESS_KEY", "")
            stores.append(("s3 (endpoint)", lambda: s3_store(args.endpoint, key_id, secret)))
        for name, opener in stores:
            await measure(name, opener, args)


def _run(coroutine: Callable[[], Awaitable[None]]) -> None:
    anyio.run(coroutine)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=500, help="writes per round")
    parser.add_argument("--repeat", type=int, default=7, help="rounds per figure")
    parser.add_argument("--s3", action="store_true", help="also S3 on a moto server")
    parser.add_argument("--endpoint", help="also S3 at this endpoint URL")
    arguments = parser.parse_args()
    _run(lambda: main(arguments))
