"""Error mapping: botocore errors become asyncstore errors, chained, naming no secrets."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from botocore.exceptions import (
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    FlexibleChecksumError,
    ReadTimeoutError,
)

from asyncstore.errors import (
    ConfigError,
    IntegrityError,
    NotFoundError,
    PermissionDeniedError,
    StorageError,
    TransientError,
)
from asyncstore_s3 import S3Module, map_s3_errors
from asyncstore_s3._events import Timeout
from tests.s3server import free_loopback_port

pytestmark = pytest.mark.anyio

SECRET = "s3cr3t-Value-never-shown"


def client_error(code: str, status: int, message: str = "") -> ClientError:
    return ClientError(
        {
            "Error": {"Code": code, "Message": message},
            "ResponseMetadata": {"HTTPStatusCode": status},
        },
        "GetObject",
    )


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (client_error("NoSuchKey", 404), NotFoundError),
        (client_error("404", 404), NotFoundError),
        (client_error("AccessDenied", 403), PermissionDeniedError),
        (client_error("403", 403), PermissionDeniedError),
        (client_error("InvalidAccessKeyId", 403), PermissionDeniedError),
        (client_error("SignatureDoesNotMatch", 403), PermissionDeniedError),
        (client_error("SlowDown", 503), TransientError),
        (client_error("InternalError", 500), TransientError),
        (client_error("502", 502), TransientError),
        (client_error("RequestTimeout", 400), TransientError),
        (client_error("BadDigest", 400), IntegrityError),
        (client_error("NoSuchBucket", 404), ConfigError),
        (client_error("Weird", 400), StorageError),
        (EndpointConnectionError(endpoint_url="http://127.0.0.1:1"), TransientError),
        (ReadTimeoutError(endpoint_url="http://127.0.0.1:1"), TransientError),
        (FlexibleChecksumError(error_msg="mismatch"), IntegrityError),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, type) else str(value)[:40],
)
def test_mapping(error: Exception, expected: type[StorageError]) -> None:
    with pytest.raises(expected) as caught:
        with map_s3_errors(store="archive", handle="a/b", bucket="the-bucket"):
            raise error
    assert type(caught.value) is expected
    assert caught.value.__cause__ is error
    assert caught.value.store == "archive"
    assert caught.value.handle == "a/b"
    if expected is ConfigError:
        assert "the-bucket" in str(caught.value)


def test_not_found_is_a_file_not_found_error() -> None:
    with pytest.raises(FileNotFoundError):
        with map_s3_errors(store="s", handle="k", bucket="b"):
            raise client_error("NoSuchKey", 404)


async def test_missing_bucket_is_a_config_error_naming_it(
    s3_endpoint: Any,
) -> None:
    async with S3Module(bucket="no-such-bucket-here", **s3_endpoint.module_options()) as store:
        with pytest.raises(ConfigError, match="no-such-bucket-here"):
            await store.put(b"x", key="k")
        with pytest.raises(ConfigError, match="no-such-bucket-here"):
            await store.get_read_stream("k")
        with pytest.raises(ConfigError, match="no-such-bucket-here"):
            [info async for info in store.list()]


async def test_missing_object_errors_name_store_and_handle(s3_module: S3Module) -> None:
    for operation in (s3_module.stat, s3_module.get_read_stream, s3_module.copy):
        with pytest.raises(NotFoundError) as caught:
            await operation("nope/missing")
        assert "nope/missing" in str(caught.value)
        assert isinstance(caught.value.__cause__, ClientError)
    await s3_module.delete("nope/missing")  # idempotent


async def test_strided_buffer_is_a_type_error_saying_what_is_accepted(
    s3_module: S3Module,
) -> None:
    with pytest.raises(TypeError, match="accepted"):
        await s3_module.put(memoryview(b"abcdef")[::2], key="strided")
    assert not await s3_module.available("strided")


async def test_unreachable_endpoint_is_transient_and_names_no_secret() -> None:
    port = free_loopback_port()
    store = S3Module(
        bucket="b",
        endpoint_url=f"http://127.0.0.1:{port}",
        access_key_id="AKIDEXAMPLE",
        secret_access_key=SECRET,
        session_token=SECRET + "-token",
        max_attempts=1,
        connect_timeout=1,
    )
    async with store:
        with pytest.raises(TransientError) as caught:
            await store.put(b"x", key="k")
    text = f"{caught.value} {caught.value!r}"
    assert SECRET not in text
    assert "k" in str(caught.value)


def test_secrets_are_not_in_repr() -> None:
    key = base64.b64encode(b"k" * 32).decode()
    store = S3Module(
        bucket="b",
        access_key_id="AKIDEXAMPLE",
        secret_access_key=SECRET,
        session_token=SECRET + "-token",
        sse_customer_key=key,
    )
    for text in (repr(store), repr(store.options), str(store.options)):
        assert SECRET not in text
        assert key not in text
    assert "bucket='b'" in repr(store)


@pytest.mark.parametrize(
    "options",
    [
        {"bucket": ""},
        {"bucket": "b", "part_size": 1024},
        {"bucket": "b", "checksum": "sha1"},
        {"bucket": "b", "addressing_style": "sideways"},
        {"bucket": "b", "upload_concurrency": 0},
        {"bucket": "b", "access_key_id": "only-half"},
        {"bucket": "b", "sse_customer_key": SECRET},
        {"bucket": "b", "prefix": "../up"},
    ],
)
def test_bad_options_are_config_errors(options: dict[str, Any]) -> None:
    with pytest.raises((ConfigError, ValueError)) as caught:
        S3Module(**options)
    assert SECRET not in str(caught.value)


@pytest.mark.parametrize(
    ("error", "timeout", "expected"),
    [
        (
            ReadTimeoutError(endpoint_url="http://127.0.0.1:8333/bucket/a/b?uploadId=1"),
            Timeout("UploadPart", "write_timeout", 2.5, 3),
            "S3 UploadPart timed out: no answer from http://127.0.0.1:8333 within "
            "write_timeout=2.5 s of sending its request (3 attempts)",
        ),
        (
            ReadTimeoutError(endpoint_url="https://s3.example.com/bucket/a/b"),
            Timeout("HeadObject", "read_timeout", 60, 1),
            "S3 HeadObject timed out: no answer from https://s3.example.com within "
            "read_timeout=60 s of asking (1 attempt)",
        ),
        (
            ConnectTimeoutError(endpoint_url="http://10.0.0.1:9000/bucket/k"),
            Timeout("PutObject", "connect_timeout", 10, 5),
            "S3 PutObject timed out: no connection to http://10.0.0.1:9000 within "
            "connect_timeout=10 s (5 attempts)",
        ),
        (
            ReadTimeoutError(endpoint_url="http://127.0.0.1:9/b/k"),
            None,
            "S3 request timed out waiting for http://127.0.0.1:9",
        ),
    ],
    ids=["write", "read", "connect", "unnamed"],
)
def test_a_timeout_says_what_timed_out(
    error: Exception, timeout: Timeout | None, expected: str
) -> None:
    if timeout is not None:
        error.timeout = timeout  # type: ignore[attr-defined]
    with pytest.raises(TransientError) as caught:
        with map_s3_errors(store="s3", handle="a/b", bucket="bucket"):
            raise error
    assert str(caught.value).startswith(expected), str(caught.value)
    assert "uploadId" not in str(caught.value)
