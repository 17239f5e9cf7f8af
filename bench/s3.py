"""Benchmark asyncstore-s3 against raw aiobotocore calls and peers, on one S3 server.

    pip install -e ./asyncstore_s3 "moto[server]" -r bench/requirements.txt   # s3fs optional
    python bench/s3.py                        # 3 runs of every phase (a few minutes)
    python bench/s3.py --runs 1 --small-count 500 --large-count 50 --big-mib 0   # quick
    AWS_ACCESS_KEY_ID=... AWS_SECRET_ACCESS_KEY=... \
        python bench/s3.py --endpoint http://127.0.0.1:8333 --server-pid "$(pidof weed)"

Starts moto's S3 server as a separate process on 127.0.0.1 (it saturates one core and bounds
every wall figure, so the client process's CPU time is the fair comparison), or with
``--endpoint URL`` uses any running S3 server (SeaweedFS, MinIO, AWS): the credentials then
come from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_REGION (default us-east-1), each
client works in a bucket of its own (``bench-<client>``, created if missing), and the
server's CPU is reported when ``--server-pid`` names its local process. Every client keeps
its connections alive across requests. It measures:
  * small: 4 KiB objects, put / get / stat / delete with --small-concurrency tasks, reported
    as operations per second and client CPU milliseconds per operation;
  * large: 1 MiB objects x --large-count with --large-concurrency tasks, put and get, as
    MiB/s and client CPU seconds per GiB;
  * big: one --big-mib object put and get (multipart), same units;
  * with --rss-gib N instead: the peak RSS growth of a process streaming N GiB through
    asyncstore-s3's put (unknown length: multipart) and get;
  * with --pairs N instead: small-op client CPU of asyncstore-s3 against raw aiobotocore in N
    back-to-back pairs of short windows, as the median ratio and its quartiles (the steadiest
    figure on a shared machine).
Server CPU (from /proc) is reported next to the client's. Every figure is the median of
--runs runs; bytes are checked after each timed get. Peers that are not installed are skipped.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import resource
import socket
import ssl
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from aiobotocore.config import AioConfig
from aiobotocore.session import AioSession

from asyncstore_s3 import S3Module

KiB = 1 << 10
MiB = 1 << 20
GiB = 1 << 30
CREDS = {"access_key_id": "bench", "secret_access_key": "bench-secret", "region": "us-east-1"}


# ---- the server --------------------------------------------------------------------------------


@contextlib.contextmanager
def moto_server(tls: bool = False) -> Any:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
        + (["-s"] if tls else []),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"{'https' if tls else 'http'}://127.0.0.1:{port}"
    context = ssl._create_unverified_context()  # moto's throwaway certificate
    try:
        for _ in range(300):
            try:
                with urllib.request.urlopen(url + "/moto-api/", timeout=1, context=context):
                    break
            except urllib.error.HTTPError:
                break
            except OSError:
                time.sleep(0.1)
        yield url, process.pid
    finally:
        process.terminate()
        process.wait(timeout=10)


@contextlib.contextmanager
def s3_server(args: argparse.Namespace) -> Any:
    """Yield the URL and process id (None if unknown) of the server the bench runs against."""
    if args.endpoint is None:
        with moto_server(args.tls) as (url, pid):
            yield url, pid
        return
    credentials_from_environment()
    yield args.endpoint, args.server_pid


def credentials_from_environment() -> None:
    """Take the clients' credentials from the environment (for --endpoint)."""
    missing = [
        name for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY") if not os.environ.get(name)
    ]
    if missing:
        sys.exit(f"--endpoint takes its credentials from the environment: set {', '.join(missing)}")
    CREDS.update(
        access_key_id=os.environ["AWS_ACCESS_KEY_ID"],
        secret_access_key=os.environ["AWS_SECRET_ACCESS_KEY"],
        region=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1",
    )


def describe_server(args: argparse.Namespace) -> str:
    if args.endpoint is None:
        return f"moto server on loopback over {'TLS' if args.tls else 'plain HTTP'}"
    return f"S3 server at {args.endpoint}"


def server_cpu(pid: int | None) -> float:
    if pid is None:
        return float("nan")  # a server elsewhere: its CPU is not ours to read
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# ---- the clients -------------------------------------------------------------------------------


class Client:
    """put / get / stat / delete of whole objects, one implementation each."""

    name = "?"

    async def open(self, url: str, bucket: str) -> None: ...
    async def put(self, key: str, data: bytes) -> None: ...
    async def get(self, key: str) -> bytes: ...
    async def stat(self, key: str) -> int: ...
    async def delete(self, key: str) -> None: ...
    async def close(self) -> None: ...


class AsyncstoreClient(Client):
    name = "asyncstore-s3"

    async def open(self, url: str, bucket: str) -> None:
        self.store = S3Module(bucket=bucket, endpoint_url=url, verify_tls=False, **CREDS)
        await self.store.__aenter__()

    async def put(self, key: str, data: bytes) -> None:
        await self.store.put(data, key=key)

    async def get(self, key: str) -> bytes:
        async with await self.store.get_read_stream(key) as stream:
            return await stream.read()

    async def stat(self, key: str) -> int:
        return (await self.store.stat(key)).size

    async def delete(self, key: str) -> None:
        await self.store.delete(key)

    async def close(self) -> None:
        await self.store.aclose()


class AsyncstoreUnsignedClient(AsyncstoreClient):
    """asyncstore-s3 with sign_payload=False: over plain HTTP, the checksum alone guards bodies."""

    name = "asyncstore-s3 unsigned"

    async def open(self, url: str, bucket: str) -> None:
        self.store = S3Module(
            bucket=bucket, endpoint_url=url, verify_tls=False, sign_payload=False, **CREDS
        )
        await self.store.__aenter__()


class RawClient(Client):
    """Plain aiobotocore calls, configured as a typical user would (defaults)."""

    name = "aiobotocore (raw)"

    async def open(self, url: str, bucket: str) -> None:
        self.bucket = bucket
        self._context = AioSession().create_client(
            "s3",
            endpoint_url=url,
            region_name=CREDS["region"],
            aws_access_key_id=CREDS["access_key_id"],
            aws_secret_access_key=CREDS["secret_access_key"],
            config=AioConfig(max_pool_connections=64),
            verify=False,
        )
        self.client = await self._context.__aenter__()

    async def put(self, key: str, data: bytes) -> None:
        if len(data) <= 8 * MiB:
            await self.client.put_object(Bucket=self.bucket, Key=key, Body=data)
            return
        # What a user writes by hand for a large object: sequential multipart, 8 MiB parts,
        # with the whole-object CRC32 asyncstore-s3 asks for (so both verify whole reads).
        upload = await self.client.create_multipart_upload(
            Bucket=self.bucket, Key=key, ChecksumAlgorithm="CRC32", ChecksumType="FULL_OBJECT"
        )
        parts = []
        view = memoryview(data)
        for number, start in enumerate(range(0, len(data), 8 * MiB), 1):
            response = await self.client.upload_part(
                Bucket=self.bucket,
                Key=key,
                UploadId=upload["UploadId"],
                PartNumber=number,
                Body=bytes(view[start : start + 8 * MiB]),
            )
            part = {"PartNumber": number, "ETag": response["ETag"]}
            if "ChecksumCRC32" in response:  # botocore computed it (its default)
                part["ChecksumCRC32"] = response["ChecksumCRC32"]
            parts.append(part)
        await self.client.complete_multipart_upload(
            Bucket=self.bucket,
            Key=key,
            UploadId=upload["UploadId"],
            MultipartUpload={"Parts": parts},
        )

    async def get(self, key: str) -> bytes:
        response = await self.client.get_object(Bucket=self.bucket, Key=key)
        async with response["Body"] as body:
            return bytes(await body.read())

    async def stat(self, key: str) -> int:
        return int((await self.client.head_object(Bucket=self.bucket, Key=key))["ContentLength"])

    async def delete(self, key: str) -> None:
        await self.client.delete_object(Bucket=self.bucket, Key=key)

    async def close(self) -> None:
        await self._context.__aexit__(None, None, None)


class S3fsClient(Client):
    name = "s3fs"

    async def open(self, url: str, bucket: str) -> None:
        import s3fs

        self.bucket = bucket
        self.fs = s3fs.S3FileSystem(
            asynchronous=True,
            key=CREDS["access_key_id"],
            secret=CREDS["secret_access_key"],
            endpoint_url=url,
            client_kwargs={"region_name": CREDS["region"], "verify": False},
            skip_instance_cache=True,
        )
        self.session = await self.fs.set_session()

    async def put(self, key: str, data: bytes) -> None:
        await self.fs._pipe_file(f"{self.bucket}/{key}", data)

    async def get(self, key: str) -> bytes:
        return bytes(await self.fs._cat_file(f"{self.bucket}/{key}"))

    async def stat(self, key: str) -> int:
        return int((await self.fs._info(f"{self.bucket}/{key}"))["size"])

    async def delete(self, key: str) -> None:
        await self.fs._rm_file(f"{self.bucket}/{key}")

    async def close(self) -> None:
        await self.session.close()


class ObstoreClient(Client):
    name = "obstore"

    async def open(self, url: str, bucket: str) -> None:
        import obstore
        from obstore.store import S3Store

        self.obs = obstore
        self.store = S3Store(
            bucket,
            endpoint=url,
            region=CREDS["region"],
            access_key_id=CREDS["access_key_id"],
            secret_access_key=CREDS["secret_access_key"],
            virtual_hosted_style_request=False,
            client_options={"allow_http": True, "allow_invalid_certificates": True},
        )

    async def put(self, key: str, data: bytes) -> None:
        await self.obs.put_async(self.store, key, data)

    async def get(self, key: str) -> bytes:
        result = await self.obs.get_async(self.store, key)
        return bytes(await result.bytes_async())

    async def stat(self, key: str) -> int:
        return int((await self.obs.head_async(self.store, key))["size"])

    async def delete(self, key: str) -> None:
        await self.obs.delete_async(self.store, key)


class OpendalClient(Client):
    name = "opendal"

    async def open(self, url: str, bucket: str) -> None:
        import opendal

        self.op = opendal.AsyncOperator(
            "s3",
            bucket=bucket,
            endpoint=url,
            region=CREDS["region"],
            access_key_id=CREDS["access_key_id"],
            secret_access_key=CREDS["secret_access_key"],
        )

    async def put(self, key: str, data: bytes) -> None:
        await self.op.write(key, data)

    async def get(self, key: str) -> bytes:
        return bytes(await self.op.read(key))

    async def stat(self, key: str) -> int:
        return int((await self.op.stat(key)).content_length)

    async def delete(self, key: str) -> None:
        await self.op.delete(key)


CLIENTS: list[type[Client]] = [
    AsyncstoreClient,
    AsyncstoreUnsignedClient,
    RawClient,
    S3fsClient,
    ObstoreClient,
    OpendalClient,
]


# ---- the phases --------------------------------------------------------------------------------


async def gather(count: int, concurrency: int, work: Callable[[int], Awaitable[Any]]) -> None:
    queue = iter(range(count))

    async def worker() -> None:
        for index in queue:
            await work(index)

    await asyncio.gather(*(worker() for _ in range(concurrency)))


async def timed(
    pid: int | None, action: Callable[[], Awaitable[None]]
) -> tuple[float, float, float]:
    server = server_cpu(pid)
    cpu = time.process_time()
    wall = time.perf_counter()
    await action()
    return (
        time.perf_counter() - wall,
        time.process_time() - cpu,
        server_cpu(pid) - server,
    )


SMALL_OPS = ("put", "get", "stat", "delete")


def small_works(client: Client) -> list[Callable[[int], Awaitable[Any]]]:
    """Put, get (checked), stat (checked) and delete of 4 KiB object number ``index``."""
    small = os.urandom(4 * KiB)

    async def get(index: int) -> None:
        assert await client.get(f"small/{index}") == small

    async def stat(index: int) -> None:
        assert await client.stat(f"small/{index}") == len(small)

    return [
        lambda index: client.put(f"small/{index}", small),
        get,
        stat,
        lambda index: client.delete(f"small/{index}"),
    ]


async def run_phases(client: Client, pid: int | None, args: argparse.Namespace) -> dict[str, Any]:
    """One run of every phase; returns {phase: (wall, client cpu, server cpu, units)}."""
    results: dict[str, Any] = {}
    n = args.small_count
    c = args.small_concurrency
    phases: list[tuple[str, Callable[[], Awaitable[None]], float]] = [
        (f"4KiB {op}", partial(gather, n, c, work), n)
        for op, work in zip(SMALL_OPS, small_works(client), strict=True)
    ]
    large = os.urandom(MiB)
    m = args.large_count

    async def check_large(index: int) -> None:
        assert await client.get(f"large/{index}") == large

    async def delete_large() -> None:
        await gather(m, args.large_concurrency, lambda i: client.delete(f"large/{i}"))

    phases += [
        (
            "1MiB put",
            lambda: gather(m, args.large_concurrency, lambda i: client.put(f"large/{i}", large)),
            m * MiB,
        ),
        ("1MiB get", lambda: gather(m, args.large_concurrency, check_large), m * MiB),
    ]
    for name, action, units in phases:
        results[name] = (*await timed(pid, action), units)
    await delete_large()
    if args.big_mib:
        big = os.urandom(args.big_mib * MiB)

        async def get_big() -> None:
            assert await client.get("big") == big

        results[f"{args.big_mib}MiB put"] = (
            *await timed(pid, lambda: client.put("big", big)),
            len(big),
        )
        results[f"{args.big_mib}MiB get"] = (*await timed(pid, get_big), len(big))
        await client.delete("big")
    return results


async def open_client(cls: type[Client], url: str) -> Client:
    client = cls()
    bucket = f"bench-{cls.__name__.lower()}"
    async with AioSession().create_client(
        "s3",
        endpoint_url=url,
        region_name=CREDS["region"],
        aws_access_key_id=CREDS["access_key_id"],
        aws_secret_access_key=CREDS["secret_access_key"],
        verify=False,
    ) as admin:
        with contextlib.suppress(Exception):
            await admin.create_bucket(Bucket=bucket)
    await client.open(url, bucket)
    return client


def report(table: dict[str, dict[str, Any]]) -> None:
    phases = next(iter(table.values())).keys()
    raw = table.get(RawClient.name)
    header = f"{'phase':<12} {'client':<23} {'wall s':>8} {'rate':>12} {'client CPU':>14} "
    header += f"{'server CPU':>14} {'CPU/raw':>8}"
    print(header)
    print("-" * len(header))
    for phase in phases:
        for name, results in table.items():
            wall, cpu, server, units = results[phase]
            if "KiB" in phase:
                rate = f"{units / wall:8.0f} op/s"
                per = f"{cpu / units * 1000:8.3f} ms/op"
                sper = "-" if math.isnan(server) else f"{server / units * 1000:8.3f} ms/op"
            else:
                rate = f"{units / MiB / wall:7.1f} MiB/s"
                per = f"{cpu / (units / GiB):8.3f} s/GiB"
                sper = "-" if math.isnan(server) else f"{server / (units / GiB):8.3f} s/GiB"
            ratio = ""
            if raw is not None:
                ratio = f"{cpu / raw[phase][1]:7.2f}x"
            print(f"{phase:<12} {name:<23} {wall:8.2f} {rate:>12} {per:>14} {sper:>14} {ratio:>8}")
        print()


async def run_guarded(client: Client, pid: int | None, args: argparse.Namespace) -> Any:
    try:
        return await run_phases(client, pid, args)
    except Exception as exc:
        print(f"dropping {client.name}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return None


async def main_async(args: argparse.Namespace) -> None:
    runs: dict[str, list[dict[str, Any]]] = {}
    with s3_server(args) as (url, pid):
        clients: list[Client] = []
        for cls in CLIENTS:
            if args.only and cls.name not in args.only:
                continue
            if args.tls and cls is AsyncstoreUnsignedClient:
                continue  # over TLS the default already leaves bodies unsigned
            try:
                clients.append(await open_client(cls, url))
            except Exception as exc:
                print(f"skipping {cls.name}: {type(exc).__name__}: {exc}", file=sys.stderr)
        # Runs are interleaved across clients, so drift of the shared server and of the
        # machine's load hits every client alike.
        for _ in range(args.runs):
            for client in list(clients):
                result = await run_guarded(client, pid, args)
                if result is None:
                    clients.remove(client)
                    runs.pop(client.name, None)
                else:
                    runs.setdefault(client.name, []).append(result)
        for client in clients:
            await client.close()
    table = {
        name: {
            phase: tuple(statistics.median(run[phase][i] for run in results) for i in range(4))
            for phase in results[0]
        }
        for name, results in runs.items()
    }
    print(
        f"{describe_server(args)}; {args.runs} run(s), medians; small: {args.small_count} x 4 KiB at concurrency "
        f"{args.small_concurrency}; large: {args.large_count} x 1 MiB at concurrency "
        f"{args.large_concurrency}"
    )
    report(table)


async def rss_child(url: str, size: int) -> None:
    """Stream ``size`` bytes through put and get in this process; print the peak RSS growth."""
    store = S3Module(bucket="bench-rss", endpoint_url=url, verify_tls=False, **CREDS)
    async with store:
        with contextlib.suppress(Exception):
            async with store._pool.client() as client:
                await client.create_bucket(Bucket="bench-rss")
        await store.put(b"warm-up", key="warm")
        async with await store.get_read_stream("warm") as stream:
            await stream.read()
        baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * KiB
        block = os.urandom(MiB)

        async def source() -> Any:
            for _ in range(size // MiB):
                yield block

        await store.put(source(), key="rss")
        after_put = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * KiB
        total = 0
        async with await store.get_read_stream("rss") as stream:
            async for chunk in stream:
                total += len(chunk)
        assert total == size // MiB * MiB
        after_get = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * KiB
        buffers = store.options.upload_concurrency * store.options.part_size
        await store.delete("rss")
    print(
        f"peak RSS growth streaming {size / GiB:.2f} GiB: put {(after_put - baseline) / MiB:.0f} "
        f"MiB, put+get {(after_get - baseline) / MiB:.0f} MiB (multipart buffers: "
        f"{buffers / MiB:.0f} MiB = upload_concurrency x part_size)"
    )


async def small_window(
    client: Client, pid: int | None, count: int, concurrency: int
) -> list[float]:
    """Put, get, stat and delete ``count`` 4 KiB objects; return the client CPU of each op."""
    works = small_works(client)
    return [(await timed(pid, partial(gather, count, concurrency, work)))[1] for work in works]


async def pairs(args: argparse.Namespace) -> None:
    """Client CPU of asyncstore-s3 against raw aiobotocore on small ops, in back-to-back pairs
    of short windows (their order alternating), so that drift of the server and of the
    machine's load hits both alike; prints the median ratio and its quartiles per op."""
    with s3_server(args) as (url, pid):
        ours, raw = await open_client(AsyncstoreClient, url), await open_client(RawClient, url)
        ratios: list[list[float]] = [[] for _ in SMALL_OPS]
        for number in range(args.pairs):
            first, second = (ours, raw) if number % 2 == 0 else (raw, ours)
            cpu = {}
            for client in (first, second):
                cpu[client.name] = await small_window(
                    client, pid, args.pair_ops, args.small_concurrency
                )
            for at in range(len(SMALL_OPS)):
                ratios[at].append(cpu[ours.name][at] / cpu[raw.name][at])
        await ours.close()
        await raw.close()
    print(
        f"asyncstore-s3 : aiobotocore (raw) client CPU, 4 KiB objects, {args.pairs} pairs of "
        f"{args.pair_ops} ops at concurrency {args.small_concurrency}"
    )
    for op, values in zip(SMALL_OPS, ratios, strict=True):
        low, median, high = statistics.quantiles(values, n=4)
        print(f"  {op:<7} median {median:.2f}x   quartiles {low:.2f}x - {high:.2f}x")


def rss(args: argparse.Namespace) -> None:
    with s3_server(args) as (url, _):
        subprocess.run(
            [sys.executable, __file__, "--rss-child", url, str(int(args.rss_gib * GiB))]
            + (["--endpoint", args.endpoint] if args.endpoint else []),
            check=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--small-count", type=int, default=1000)
    parser.add_argument("--small-concurrency", type=int, default=32)
    parser.add_argument("--large-count", type=int, default=200)
    parser.add_argument("--large-concurrency", type=int, default=16)
    parser.add_argument("--big-mib", type=int, default=256, help="0 to skip the big object")
    parser.add_argument("--only", nargs="*", help="client names to run (default: all)")
    parser.add_argument("--tls", action="store_true", help="serve over TLS (as real S3 is used)")
    parser.add_argument(
        "--endpoint",
        help="an S3 server's URL instead of starting moto (credentials from the environment)",
    )
    parser.add_argument(
        "--server-pid", type=int, help="with --endpoint: the local server process, for its CPU"
    )
    parser.add_argument(
        "--rss-gib", type=float, default=0, help="only measure peak RSS streaming this many GiB"
    )
    parser.add_argument(
        "--pairs",
        type=int,
        default=0,
        help="only compare small-op CPU with raw aiobotocore in this many back-to-back pairs",
    )
    parser.add_argument("--pair-ops", type=int, default=300, help="operations per window")
    parser.add_argument("--rss-child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rss_child:
        if args.endpoint:
            credentials_from_environment()
        asyncio.run(rss_child(args.rss_child[0], int(args.rss_child[1])))
    elif args.rss_gib:
        rss(args)
    elif args.pairs:
        if args.pairs < 2:
            parser.error("--pairs needs at least 2 pairs for quartiles")
        asyncio.run(pairs(args))
    else:
        asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
