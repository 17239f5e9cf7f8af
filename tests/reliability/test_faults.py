"""Fault injection: the S3 backend talks to the S3 server through `FaultProxy`.

The mixed workload runs operations of every kind (puts small and multipart, whole, ranged and
seeking reads, stat, list, delete, copy) in four concurrent lanes of keys while a tenth of the
requests meet a connection reset, a lost response, a truncated body, a 500, a 503 SlowDown or
a delay; a second run injects three tenths with two attempts per request, so that operations
fail too. Every operation must either succeed with the right answer (checked against a model
of what was written) or raise a `StorageError`; a write reported as failed may have landed, so
the key is then read straight from the server (boto3, no proxy) and must hold the old or the
new bytes, which the model adopts. At the end every object on the server must equal the model.
A full harness run does 1,000 operations per run; the regular test run does 120. The focused
tests pin down single faults: a truncated body is resumed, a dead network gives
`TransientError` after exactly the configured attempts, a 503 once is retried.
"""

from __future__ import annotations

import contextlib
import random
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any
from urllib.parse import urlsplit

import anyio
import pytest

from asyncstore.errors import IntegrityError, NotFoundError, StorageError, TransientError
from asyncstore_s3 import S3Module, S3ReadStream
from tests.reliability.faultproxy import FAULTS, FaultProxy, Request
from tests.reliability.harness import Figures, scaled
from tests.s3server import Endpoint

pytestmark = pytest.mark.anyio

SECTION = "Fault injection"
MiB = 1 << 20
KiB = 1 << 10
FAULT_RATE = 0.10
OPERATIONS = scaled(120, 1000)
LANES = 4
KEYS_PER_LANE = 4
PART_SIZE = 5 * MiB
WEIGHTS = {**dict.fromkeys(FAULTS, 1), "truncate": 2}
"""Truncated bodies, the fault reads must resume from, come twice as often as the others."""


# ---- fixtures and helpers ----------------------------------------------------------------------


@pytest.fixture
def upstream(s3_endpoint: Endpoint) -> str:
    if urlsplit(s3_endpoint.url).hostname != "127.0.0.1":
        pytest.skip("fault injection runs against the loopback S3 server only")
    return s3_endpoint.url


@pytest.fixture
async def proxy(upstream: str) -> AsyncIterator[FaultProxy]:
    async with FaultProxy(upstream, seed=1) as proxy:
        yield proxy


def through(proxy: FaultProxy, module_options: dict[str, Any], **overrides: Any) -> S3Module:
    """An `S3Module` on the test's bucket that reaches the server through ``proxy``."""
    options = {**module_options, "endpoint_url": proxy.url, "part_size": PART_SIZE}
    return S3Module(**{**options, **overrides})


def payload(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


def stored(boto3_client: Any, bucket: str, key: str) -> bytes | None:
    """The object's bytes as the server holds them (no proxy), or None."""
    try:
        response = boto3_client.get_object(Bucket=bucket, Key=key)
    except boto3_client.exceptions.NoSuchKey:
        return None
    data: bytes = response["Body"].read()
    return data


def object_request(bucket: str, key: str, method: str = "GET") -> Callable[[Request], bool]:
    """Match the requests of ``method`` on the object (not on the bucket)."""
    path = f"/{bucket}/{key}"
    return lambda request: request.method == method and urlsplit(request.target).path == path


def upload_part(number: int) -> Callable[[Request], bool]:
    return lambda request: (
        request.method == "PUT"
        and f"partNumber={number}&" in (urlsplit(request.target).query + "&")
    )


async def read_all(stream: S3ReadStream, how: str) -> bytes:
    if how == "read":
        return await stream.read()
    if how == "chunks":
        return b"".join([chunk async for chunk in stream])
    buffer = bytearray(100 * KiB)
    pieces = []
    while count := await stream.readinto(buffer):
        pieces.append(bytes(buffer[:count]))
    return b"".join(pieces)


async def open_stream(module: S3Module, key: str, **kwargs: Any) -> S3ReadStream:
    stream = await module.get_read_stream(key, **kwargs)
    assert isinstance(stream, S3ReadStream)
    return stream


# ---- truncated bodies ----------------------------------------------------------------------


@pytest.mark.parametrize("how", ["read", "chunks", "readinto"])
async def test_a_truncated_body_is_resumed(
    proxy: FaultProxy, module_options: dict[str, Any], boto3_client: Any, bucket: str, how: str
) -> None:
    data = payload(700 * KiB, seed=1)
    boto3_client.put_object(Bucket=bucket, Key="obj", Body=data)
    proxy.force("truncate", when=object_request(bucket, "obj"))
    async with through(proxy, module_options) as module:
        async with await open_stream(module, "obj") as stream:
            assert await read_all(stream, how) == data
            assert stream.resumes == 1
    assert proxy.injected == Counter(truncate=1)


async def test_a_truncated_ranged_read_and_seek_are_resumed(
    proxy: FaultProxy, module_options: dict[str, Any], boto3_client: Any, bucket: str
) -> None:
    data = payload(700 * KiB, seed=2)
    boto3_client.put_object(Bucket=bucket, Key="obj", Body=data)
    async with through(proxy, module_options) as module:
        proxy.force("truncate", when=object_request(bucket, "obj"))
        async with await open_stream(module, "obj", start=1000, end=len(data) - 1000) as stream:
            assert await stream.read() == data[1000:-1000]
            assert stream.resumes == 1
        async with await open_stream(module, "obj") as stream:
            assert await stream.read(10) == data[:10]
            await stream.seek(300 * KiB)  # far forwards: a new ranged GET
            assert await stream.read(10) == data[300 * KiB : 300 * KiB + 10]
            proxy.force("truncate", when=object_request(bucket, "obj"))
            await stream.seek(100)  # backwards: another ranged GET, which is cut short
            assert await stream.read() == data[100:]
            assert stream.resumes == 1
    assert proxy.injected == Counter(truncate=2)


async def test_a_body_that_breaks_while_a_short_seek_skips_forward_is_resumed(
    proxy: FaultProxy, module_options: dict[str, Any], boto3_client: Any, bucket: str
) -> None:
    # A forward seek of up to 256 KiB reads through the open body rather than sending a GET.
    data = payload(700 * KiB, seed=7)
    boto3_client.put_object(Bucket=bucket, Key="obj", Body=data)
    proxy.force("truncate", when=object_request(bucket, "obj"), keep=100 * KiB)
    async with through(proxy, module_options) as module:
        async with await open_stream(module, "obj") as stream:
            assert await stream.read(10) == data[:10]
            await stream.seek(200 * KiB)
            assert await stream.read(10) == data[200 * KiB : 200 * KiB + 10]
            assert await stream.read() == data[200 * KiB + 10 :]
            assert stream.resumes == 1
    assert proxy.injected == Counter(truncate=1)
    assert proxy.requests == 2


async def test_truncating_every_body_raises_and_never_returns_short_data(
    upstream: str, module_options: dict[str, Any], boto3_client: Any, bucket: str
) -> None:
    data = payload(300 * KiB, seed=3)
    boto3_client.put_object(Bucket=bucket, Key="obj", Body=data)
    async with (
        FaultProxy(upstream, rate=1.0, weights={"truncate": 1}, seed=3) as proxy,
        through(proxy, module_options, max_attempts=3) as module,
    ):
        # Every response is cut at least one byte short, so the last byte never arrives.
        for how in ("read", "chunks", "readinto"):
            async with await open_stream(module, "obj") as stream:
                with pytest.raises(TransientError):
                    await read_all(stream, how)
                assert stream.resumes >= 2
        received = bytearray()
        async with await open_stream(module, "obj") as stream:
            with pytest.raises(TransientError):
                while piece := await stream.read(50 * KiB):
                    received += piece
        assert bytes(received) == data[: len(received)]
        assert len(received) < len(data)
    assert proxy.injected["truncate"] == proxy.requests


async def test_a_truncated_error_response_is_retried(
    proxy: FaultProxy, module_options: dict[str, Any], bucket: str
) -> None:
    # aiobotocore reads a GetObject error body outside botocore's retry loop.
    proxy.force("truncate", when=object_request(bucket, "missing"))
    async with through(proxy, module_options) as module:
        with pytest.raises(NotFoundError):
            await module.get_read_stream("missing")
    assert proxy.injected == Counter(truncate=1)
    assert proxy.requests == 2


async def test_a_copy_of_an_object_uploaded_in_parts_reads_back_verified(
    module_options: dict[str, Any], boto3_client: Any, bucket: str
) -> None:
    # The copy carries a full-object checksum of its own, which the whole read checks.
    data = payload(PART_SIZE + 5, seed=8)
    async with S3Module(**module_options, part_size=PART_SIZE) as module:
        await module.put(data, key="parts")
        assert boto3_client.head_object(Bucket=bucket, Key="parts")["ETag"].endswith('-2"')
        await module.copy("parts", key="copy")
        async with await module.get_read_stream("copy") as stream:
            assert await stream.read() == data


@pytest.mark.parametrize("size", [300 * KiB, 2 * PART_SIZE + 5], ids=["one PUT", "in parts"])
async def test_a_corrupted_whole_read_raises_integrity_error(
    proxy: FaultProxy, module_options: dict[str, Any], bucket: str, size: int
) -> None:
    # A body damaged on the way is caught by the object's CRC32, for an object uploaded in
    # parts too (it gets a CRC32 of the whole object); only the end of the read can tell.
    data = payload(size, seed=9)
    async with through(proxy, module_options) as module:
        await module.put(data, key="obj")
        for how in ("read", "chunks", "readinto"):
            proxy.force("corrupt", when=object_request(bucket, "obj"), keep=size // 2)
            async with await open_stream(module, "obj") as stream:
                with pytest.raises(IntegrityError, match="checksum"):
                    await read_all(stream, how)
                with pytest.raises(IntegrityError, match="checksum"):
                    await stream.read()  # a failed stream never hands out unchecked bytes
        async with await open_stream(module, "obj") as stream:
            assert await stream.read() == data  # the stored object is intact
    assert proxy.injected["corrupt"] == 3


@pytest.mark.parametrize("how", ["read", "chunks", "readinto"])
async def test_a_resumed_whole_read_is_still_checked(
    proxy: FaultProxy, module_options: dict[str, Any], bucket: str, how: str
) -> None:
    # The body breaks off, the ranged GET that resumes it brings a damaged byte: the check
    # runs over both responses' bytes, so the read fails at its end.
    data = payload(3 * 64 * KiB, seed=10)
    async with through(proxy, module_options) as module:
        await module.put(data, key="obj")
        gets = object_request(bucket, "obj")
        proxy.force("truncate", when=gets, keep=70 * KiB)
        proxy.force("corrupt", when=gets, keep=10)
        async with await open_stream(module, "obj") as stream:
            with pytest.raises(IntegrityError, match="checksum"):
                await read_all(stream, how)
            assert stream.resumes == 1
        async with await open_stream(module, "obj") as stream:
            assert await read_all(stream, how) == data
    first, resumed = [request for request in proxy.seen if gets(request)][:2]
    # Only a GET of the whole object asks for its checksum (S3 keeps none of a range).
    assert first.header("x-amz-checksum-mode") == "ENABLED" and first.header("range") is None
    assert resumed.header("x-amz-checksum-mode") is None and resumed.header("range")
    assert proxy.injected == Counter(truncate=1, corrupt=1)


async def test_a_whole_read_checks_a_sha256_another_client_stored(
    proxy: FaultProxy, module_options: dict[str, Any], boto3_client: Any, bucket: str
) -> None:
    data = payload(100 * KiB, seed=12)
    boto3_client.put_object(Bucket=bucket, Key="obj", Body=data, ChecksumAlgorithm="SHA256")
    async with through(proxy, module_options) as module:
        proxy.force("corrupt", when=object_request(bucket, "obj"))
        async with await open_stream(module, "obj") as stream:
            with pytest.raises(IntegrityError, match="checksum"):
                await stream.read()
        async with await open_stream(module, "obj") as stream:
            assert await stream.read() == data


async def test_a_read_that_seeks_is_not_checked_against_the_whole(
    proxy: FaultProxy, module_options: dict[str, Any], bucket: str
) -> None:
    # Bytes read out of order cannot be checked against the whole object's checksum: the
    # stream stops checking rather than fail a good read.
    data = payload(300 * KiB, seed=13)
    async with through(proxy, module_options) as module:
        await module.put(data, key="obj")
        async with await open_stream(module, "obj") as stream:
            assert await stream.read(1000) == data[:1000]
            await stream.seek(200 * KiB)
            assert await stream.read() == data[200 * KiB :]
            await stream.seek(0)
            assert await stream.read() == data


# ---- a dead network, throttling, timeouts --------------------------------------------------


async def first_listed(module: S3Module) -> Any:
    async with contextlib.aclosing(module.list()) as listing:
        async for info in listing:
            return info
    return None


OPERATIONS_ON_ONE_KEY: dict[str, Callable[[S3Module], Awaitable[Any]]] = {
    "put": lambda module: module.put(b"new bytes", key="obj"),
    "put multipart": lambda module: module.put(payload(PART_SIZE + 1, 4), key="obj"),
    "get": lambda module: module.get_read_stream("obj"),
    "stat": lambda module: module.stat("obj"),
    "list": lambda module: first_listed(module),
    "delete": lambda module: module.delete("obj"),
    "copy": lambda module: module.copy("obj", key="copy"),
}


@pytest.mark.parametrize("operation", OPERATIONS_ON_ONE_KEY)
async def test_resetting_every_connection_gives_transient_error_after_the_attempts(
    upstream: str, module_options: dict[str, Any], boto3_client: Any, bucket: str, operation: str
) -> None:
    boto3_client.put_object(Bucket=bucket, Key="obj", Body=b"old bytes")
    async with (
        FaultProxy(upstream, rate=1.0, weights={"reset": 1}) as proxy,
        through(proxy, module_options, max_attempts=2, connect_timeout=1, read_timeout=2) as module,
    ):
        with pytest.raises(TransientError) as caught:
            await OPERATIONS_ON_ONE_KEY[operation](module)
    assert caught.value.__cause__ is not None
    # botocore made its two attempts of one call; aiohttp sends an idempotent request once
    # more on a fresh connection when the first breaks. None reached the server.
    assert {r.header("amz-sdk-invocation-id") for r in proxy.seen} != {None}
    assert len({r.header("amz-sdk-invocation-id") for r in proxy.seen}) == 1
    assert {r.header("amz-sdk-request") for r in proxy.seen} == {
        "attempt=1",
        "attempt=2; max=2",
    }
    sends = 2 if proxy.seen[0].method in ("GET", "HEAD", "PUT", "DELETE") else 1
    assert proxy.requests == 2 * sends
    assert proxy.injected == Counter(reset=2 * sends)
    assert stored(boto3_client, bucket, "obj") == b"old bytes"
    assert stored(boto3_client, bucket, "copy") is None
    assert boto3_client.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


@pytest.mark.parametrize("operation", OPERATIONS_ON_ONE_KEY)
async def test_one_slowdown_is_retried(
    proxy: FaultProxy,
    module_options: dict[str, Any],
    boto3_client: Any,
    bucket: str,
    operation: str,
) -> None:
    boto3_client.put_object(Bucket=bucket, Key="obj", Body=b"old bytes")
    proxy.force("slowdown_503")
    async with through(proxy, module_options) as module:
        result = await OPERATIONS_ON_ONE_KEY[operation](module)
        if operation == "get":
            async with result as stream:
                assert await stream.read() == b"old bytes"
    assert proxy.injected == Counter(slowdown_503=1)
    assert proxy.retries == 1
    expected = {
        "put": b"new bytes",
        "put multipart": payload(PART_SIZE + 1, 4),
        "delete": None,
    }.get(operation, b"old bytes")
    assert stored(boto3_client, bucket, "obj") == expected
    if operation == "copy":
        assert stored(boto3_client, bucket, "copy") == b"old bytes"


@pytest.mark.parametrize("kind", ["error_500", "slowdown_503"])
async def test_persistent_server_errors_give_transient_error(
    upstream: str, module_options: dict[str, Any], bucket: str, kind: str
) -> None:
    async with (
        FaultProxy(upstream, rate=1.0, weights={kind: 1}) as proxy,
        through(proxy, module_options, max_attempts=2) as module,
    ):
        with pytest.raises(TransientError, match=r"InternalError|SlowDown"):
            await module.put(b"bytes", key="obj")
    assert proxy.injected == Counter({kind: 2})


async def test_a_response_slower_than_the_read_timeout_is_retried_then_gives_up(
    upstream: str, module_options: dict[str, Any], boto3_client: Any, bucket: str
) -> None:
    boto3_client.put_object(Bucket=bucket, Key="obj", Body=b"bytes")
    async with FaultProxy(upstream, delay=(1.5, 1.5)) as proxy:
        async with through(proxy, module_options, max_attempts=2, read_timeout=0.5) as module:
            proxy.force("delay")
            assert (await module.stat("obj")).size == 5  # the retry is answered in time
            proxy.force("delay", times=2)
            with pytest.raises(TransientError):
                await module.stat("obj")
    assert proxy.injected == Counter(delay=3)
    assert proxy.requests == 4


async def test_a_write_answered_later_than_the_write_timeout_fails_in_bounded_time(
    upstream: str, module_options: dict[str, Any], boto3_client: Any, bucket: str
) -> None:
    # A cluster that cannot place the bytes (a volume server down) may never answer a write:
    # writes wait write_timeout for the first byte, not the read_timeout meant for reads.
    boto3_client.put_object(Bucket=bucket, Key="obj", Body=b"bytes")
    async with FaultProxy(upstream, delay=(1.5, 1.5)) as proxy:
        async with through(
            proxy, module_options, max_attempts=2, read_timeout=10, write_timeout=0.5
        ) as module:
            proxy.force("delay", times=2)
            started = anyio.current_time()
            with pytest.raises(TransientError) as caught:
                await module.put(b"new bytes", key="obj")
            assert anyio.current_time() - started < 3  # two attempts of 0.5 s, and backoff
            assert "PutObject timed out" in str(caught.value)
            assert "write_timeout=0.5 s of sending its request (2 attempts)" in str(caught.value)
            proxy.force("delay")
            # A read waits read_timeout; it sees the put, which the server did carry out.
            assert (await module.stat("obj")).size == 9
    assert proxy.injected == Counter(delay=3)


# ---- writes whose outcome the client cannot see ------------------------------------------------


async def test_a_multipart_put_whose_part_keeps_failing_leaves_the_old_object(
    proxy: FaultProxy, module_options: dict[str, Any], boto3_client: Any, bucket: str
) -> None:
    boto3_client.put_object(Bucket=bucket, Key="obj", Body=b"old bytes")
    proxy.force("reset", times=100, when=upload_part(2))
    async with through(proxy, module_options, max_attempts=3) as module:
        with pytest.raises(TransientError):
            await module.put(payload(2 * PART_SIZE + 7, 5), key="obj")
    assert proxy.injected["reset"] >= 3
    assert stored(boto3_client, bucket, "obj") == b"old bytes"
    assert boto3_client.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


@pytest.mark.parametrize("step", ["put", "complete"])
async def test_a_lost_response_after_the_commit(
    proxy: FaultProxy, module_options: dict[str, Any], boto3_client: Any, bucket: str, step: str
) -> None:
    # The server stored the object but its answer never arrived: botocore sends the request
    # again. The put may succeed or fail, but the server holds the new bytes either way.
    boto3_client.put_object(Bucket=bucket, Key="obj", Body=b"old bytes")
    if step == "put":
        data = b"new bytes"
        proxy.force("lost_response", when=object_request(bucket, "obj", "PUT"))
    else:
        data = payload(PART_SIZE + 3, 6)
        proxy.force(
            "lost_response",
            when=lambda r: r.method == "POST" and "uploadId=" in urlsplit(r.target).query,
        )
    async with through(proxy, module_options) as module:
        try:
            await module.put(data, key="obj")
        except StorageError:
            pass
    assert proxy.injected == Counter(lost_response=1)
    assert stored(boto3_client, bucket, "obj") == data


# ---- the mixed workload ------------------------------------------------------------------------


class WrongAnswerError(Exception):
    """An operation succeeded with an answer that disagrees with the model."""


@dataclass
class Tally:
    succeeded: int = 0
    failed: Counter[str] = field(default_factory=Counter)
    wrong: list[str] = field(default_factory=list)
    escaped: list[str] = field(default_factory=list)
    landed: int = 0
    resumes: int = 0
    kinds: Counter[str] = field(default_factory=Counter)


class Lane:
    """A sequence of operations on keys of its own, checked against a model of them."""

    def __init__(
        self,
        index: int,
        module: S3Module,
        server: Callable[[str], Awaitable[bytes | None]],
        tally: Tally,
        seed: int,
    ) -> None:
        self.prefix = f"lane{index}/"
        self.keys = [f"{self.prefix}k{number}" for number in range(KEYS_PER_LANE)]
        self.model: dict[str, bytes | None] = dict.fromkeys(self.keys)
        self.module = module
        self.server = server
        self.tally = tally
        self.rng = random.Random(f"{seed}-{index}")
        self.pending: tuple[str, bytes | None, bytes | None] | None = None
        self.operations: dict[str, tuple[int, Callable[[], Awaitable[None]]]] = {
            "put small": (20, self.put_small),
            "put large": (3, self.put_large),
            "get": (16, self.get),
            "ranged get": (12, self.ranged_get),
            "seek and read": (10, self.seek_and_read),
            "stat": (10, self.stat),
            "list": (8, self.list),
            "delete": (8, self.delete),
            "copy": (8, self.copy),
        }

    async def run(self, count: int) -> None:
        names = list(self.operations)
        weights = [self.operations[name][0] for name in names]
        for name in self.rng.choices(names, weights, k=count):
            self.tally.kinds[name] += 1
            await self.step(name)

    async def step(self, name: str) -> None:
        self.pending = None
        try:
            await self.operations[name][1]()
        except WrongAnswerError as exc:
            self.tally.wrong.append(f"{name}: {exc}")
        except StorageError as exc:
            self.tally.failed[type(exc).__name__] += 1
            await self.settle(name)
        except Exception as exc:
            self.tally.escaped.append(f"{name}: {exc!r}")
            await self.settle(name)
        else:
            self.tally.succeeded += 1

    async def settle(self, name: str) -> None:
        """After a failed write, adopt what the server holds: the old or the new bytes."""
        if self.pending is None:
            return
        key, old, new = self.pending
        actual = await self.server(key)
        if actual != old and actual != new:
            self.tally.wrong.append(
                f"{name}: a failed write left {describe(actual)} under {key}, "
                f"neither the old {describe(old)} nor the new {describe(new)}"
            )
        elif actual != old:
            self.tally.landed += 1
        self.model[key] = actual

    # ---- writes ------------------------------------------------------------------------

    def new_bytes(self, size: int) -> bytes:
        return self.rng.randbytes(size)

    async def put(self, data: bytes) -> None:
        key = self.rng.choice(self.keys)
        self.pending = (key, self.model[key], data)
        source: Any = data
        if self.rng.random() < 0.5:
            # A source of unknown length, in uneven chunks.
            source = chunked(data, self.rng.randint(64 * KiB, 2 * MiB))
        await self.module.put(source, key=key)
        self.model[key] = data

    async def put_small(self) -> None:
        size = 0 if self.rng.random() < 0.05 else self.rng.randint(1, 96 * KiB)
        await self.put(self.new_bytes(size))

    async def put_large(self) -> None:
        await self.put(self.new_bytes(self.rng.randint(PART_SIZE + 1, 2 * PART_SIZE + MiB)))

    async def delete(self) -> None:
        key = self.rng.choice(self.keys)
        self.pending = (key, self.model[key], None)
        await self.module.delete(key)
        self.model[key] = None

    async def copy(self) -> None:
        source, target = self.rng.sample(self.keys, 2)
        data = self.model[source]
        old = self.model[target]
        # A copy of a missing object writes nothing, even when it fails.
        self.pending = (target, old, old if data is None else data)
        try:
            await self.module.copy(source, key=target)
        except NotFoundError:
            if data is not None:
                raise WrongAnswerError(
                    f"copy of {source} ({describe(data)}) found nothing"
                ) from None
            self.pending = None  # the expected answer: nothing was written
            return
        if data is None:
            raise WrongAnswerError(f"copy of the missing {source} succeeded")
        self.model[target] = data

    # ---- reads -------------------------------------------------------------------------

    async def get(self) -> None:
        key = self.rng.choice(self.keys)
        how = self.rng.choice(["read", "chunks", "readinto"])

        async def read() -> bytes:
            async with await open_stream(self.module, key) as stream:
                found = await read_all(stream, how)
                self.tally.resumes += stream.resumes
                return found

        self.expect_bytes(key, await self.attempt(key, read), lambda data: data)

    async def ranged_get(self) -> None:
        key = self.rng.choice(self.keys)
        size = len(self.model[key] or b"")
        start = self.rng.randint(0, size + 5)
        end = None if self.rng.random() < 0.2 else self.rng.randint(start, size + 10)

        async def read() -> bytes:
            async with await open_stream(self.module, key, start=start, end=end) as stream:
                found = await stream.read()
                self.tally.resumes += stream.resumes
                return found

        self.expect_bytes(key, await self.attempt(key, read), lambda data: data[start:end])

    async def seek_and_read(self) -> None:
        key = self.rng.choice(self.keys)
        size = len(self.model[key] or b"")
        requests = [self.rng.randint(0, 1000)]
        positions: list[int | None] = [None]
        for _ in range(self.rng.randint(1, 3)):
            positions.append(self.rng.randint(0, size))
            requests.append(self.rng.randint(1, 200 * KiB))
        positions.append(None)
        requests.append(-1)

        async def read() -> list[tuple[int, int, bytes]]:
            # Each read as (position, bytes asked for, bytes returned).
            reads = []
            async with await open_stream(self.module, key) as stream:
                for position, count in zip(positions, requests, strict=True):
                    if position is not None:
                        await stream.seek(position)
                    at = stream.tell()
                    reads.append((at, count, await stream.read(count)))
                self.tally.resumes += stream.resumes
            return reads

        found = await self.attempt(key, read)
        data = self.model[key]
        if found is None:
            return  # missing, as the model says
        if data is None:
            raise WrongAnswerError(f"the missing {key} was read")
        for at, count, piece in found:
            # A sized read may return fewer bytes than asked (as a raw file does), never none
            # before the end; a read without a size returns everything that remains.
            wanted = data[at:] if count < 0 else data[at : at + count]
            if piece != wanted[: len(piece)] or (
                len(piece) < len(wanted) and (count < 0 or not piece)
            ):
                raise WrongAnswerError(
                    f"read {describe(piece)} at {at} (asked {count}) from {key} "
                    f"({describe(data)}), expected {describe(wanted)}"
                )

    async def stat(self) -> None:
        key = self.rng.choice(self.keys)
        found = await self.attempt(key, partial(self.module.stat, key))
        data = self.model[key]
        if found is not None and (data is None or found.size != len(data)):
            raise WrongAnswerError(f"stat of {key} said {found.size} bytes, not {describe(data)}")

    async def list(self) -> None:
        found = [(info.handle, info.size) async for info in self.module.list(self.prefix)]
        expected = sorted((key, len(data)) for key, data in self.model.items() if data is not None)
        if found != expected:
            raise WrongAnswerError(f"listed {found}, expected {expected}")

    async def attempt(self, key: str, read: Callable[[], Awaitable[Any]]) -> Any:
        """Run ``read``: its result, or None when the key is missing as the model says."""
        try:
            return await read()
        except NotFoundError:
            if self.model[key] is not None:
                raise WrongAnswerError(
                    f"{key} ({describe(self.model[key])}) was not found"
                ) from None
            return None

    def expect_bytes(
        self, key: str, found: bytes | None, expected: Callable[[bytes], bytes]
    ) -> None:
        data = self.model[key]
        if found is None:
            return  # missing, as the model says
        if data is None:
            raise WrongAnswerError(f"the missing {key} was read: {describe(found)}")
        want = expected(data)
        if found != want:
            raise WrongAnswerError(f"read {describe(found)} from {key}, expected {describe(want)}")


async def chunked(data: bytes, size: int) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def describe(data: object) -> str:
    if data is None:
        return "nothing"
    if isinstance(data, bytes):
        return f"{len(data)} bytes ({hash(data) & 0xFFFF:04x})"
    return repr(data)


def creates_multipart_upload(request: Request) -> bool:
    return request.method == "POST" and "uploads" in urlsplit(request.target).query.split("&")


def aborts_multipart_upload(request: Request) -> bool:
    return request.method == "DELETE" and "uploadId=" in urlsplit(request.target).query


@pytest.mark.parametrize(
    ("rate", "attempts", "floor"),
    [(FAULT_RATE, 5, 0.9), (0.3, 2, 0.5)],
    ids=["10% faults, 5 attempts", "30% faults, 2 attempts"],
)
async def test_mixed_operations_under_faults(
    upstream: str,
    module_options: dict[str, Any],
    boto3_client: Any,
    bucket: str,
    figures: Figures,
    rate: float,
    attempts: int,
    floor: float,
) -> None:
    async def server(key: str) -> bytes | None:
        return await anyio.to_thread.run_sync(stored, boto3_client, bucket, key)

    tally = Tally()
    started = time.perf_counter()
    async with (
        FaultProxy(upstream, rate=rate, weights=WEIGHTS, seed=7, delay=(0.05, 3.0)) as proxy,
        through(
            proxy, module_options, max_attempts=attempts, connect_timeout=2, read_timeout=2
        ) as module,
    ):
        lanes = [Lane(index, module, server, tally, seed=11) for index in range(LANES)]
        async with anyio.create_task_group() as group:
            for index, lane in enumerate(lanes):
                count = OPERATIONS // LANES + (index < OPERATIONS % LANES)
                group.start_soon(lane.run, count)
    seconds = time.perf_counter() - started

    # Every object on the server is what the model says, and nothing else is there.
    mismatches = []
    for lane in lanes:
        for key, data in lane.model.items():
            actual = await server(key)
            if actual != data:
                mismatches.append(
                    f"{key}: {describe(actual)} on the server, model {describe(data)}"
                )
    listed = boto3_client.list_objects_v2(Bucket=bucket).get("Contents", [])
    expected_keys = {key for lane in lanes for key, data in lane.model.items() if data is not None}
    if {item["Key"] for item in listed} != expected_keys:
        mismatches.append(f"the bucket holds {sorted(item['Key'] for item in listed)}")
    # An upload whose creation answer was lost (or came too late) cannot be aborted by the
    # put, which never learnt its id: the stale-upload sweep is what removes those.
    uploads = boto3_client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    unknown_uploads = sum(
        kind in ("lost_response", "delay") and creates_multipart_upload(request)
        for kind, request in proxy.faults
    )
    failed_aborts = sum(aborts_multipart_upload(request) for _, request in proxy.faults)

    failed = sum(tally.failed.values())
    figures.add(
        SECTION,
        **{
            "operations": OPERATIONS,
            "fault rate": rate,
            "attempts": attempts,
            "requests": proxy.requests,
            "resent": proxy.retries,
            **{f"injected {kind}": proxy.injected[kind] for kind in FAULTS},
            "succeeded": tally.succeeded,
            "failed": failed,
            "failed by class": ", ".join(f"{n} {c}" for c, n in sorted(tally.failed.items())),
            "failed writes that landed": tally.landed,
            "resumed bodies": tally.resumes,
            "corrupted": len(tally.wrong) + len(mismatches),
            "uploads left": len(uploads),
            "creations lost": unknown_uploads,
            "seconds": round(seconds, 1),
        },
    )
    assert tally.escaped == []
    assert tally.wrong == []
    assert mismatches == []
    assert tally.succeeded + failed == OPERATIONS
    assert set(tally.kinds) == set(lanes[0].operations)
    for kind in FAULTS:
        assert proxy.injected[kind] >= 1, kind
    assert tally.succeeded >= floor * OPERATIONS
    assert len(uploads) <= unknown_uploads + failed_aborts


async def test_cleanup_counts_only_what_it_aborted_and_reports_a_failed_abort(
    upstream: str, module_options: dict[str, Any], boto3_client: Any, bucket: str
) -> None:
    for key in ("a", "b", "c"):
        boto3_client.create_multipart_upload(Bucket=bucket, Key=f"crashed/{key}")

    def abort_of_b(request: Request) -> bool:
        return request.method == "DELETE" and "/crashed/b?" in request.target

    async with (
        FaultProxy(upstream) as proxy,
        through(proxy, module_options, max_attempts=2) as module,
    ):
        proxy.force("error_500", times=2, when=abort_of_b)  # both attempts of one abort
        with pytest.raises(TransientError):
            await module.cleanup(older_than=0)
        # The others were aborted all the same; the failed one is still there.
        left = boto3_client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
        assert [upload["Key"] for upload in left] == ["crashed/b"]
        assert await module.cleanup(older_than=0) == {"uploads": 1}
    assert boto3_client.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
