"""Translation of botocore and aiohttp errors into asyncstore errors, at the module's boundary."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager

import aiohttp
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    FlexibleChecksumError,
    HTTPClientError,
    IncompleteReadError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError

from asyncstore.errors import (
    ConfigError,
    IntegrityError,
    NotFoundError,
    PermissionDeniedError,
    StorageError,
    TransientError,
    UnsupportedError,
)

__all__ = ["error_code", "map_s3_errors", "translate"]

# We want to map to the most specific asyncstore error we can find; codes not listed fall back
# to the HTTP status, and anything else becomes a plain StorageError, still chained.
_BY_CODE: dict[str, type[StorageError]] = {
    "NoSuchKey": NotFoundError,
    "NotFound": NotFoundError,
    # The upload was aborted under us (by a stale-upload sweep): the put fails, not the object.
    "NoSuchUpload": StorageError,
    "AccessDenied": PermissionDeniedError,
    "AllAccessDisabled": PermissionDeniedError,
    "InvalidAccessKeyId": PermissionDeniedError,
    "SignatureDoesNotMatch": PermissionDeniedError,
    "ExpiredToken": PermissionDeniedError,
    "InvalidToken": PermissionDeniedError,
    "AccountProblem": PermissionDeniedError,
    "BadDigest": IntegrityError,
    "InvalidDigest": IntegrityError,
    "XAmzContentSHA256Mismatch": IntegrityError,
    "InvalidChecksum": IntegrityError,
    "SlowDown": TransientError,
    "Throttling": TransientError,
    "ThrottlingException": TransientError,
    "RequestTimeout": TransientError,
    "RequestTimeTooSkewed": TransientError,
    "ServiceUnavailable": TransientError,
    "InternalError": TransientError,
    "OperationAborted": TransientError,
    "NotImplemented": UnsupportedError,
}


def error_code(exc: ClientError) -> tuple[str, int]:
    """Return the S3 error code and HTTP status of a `ClientError`."""
    response = exc.response
    code = str(response.get("Error", {}).get("Code", ""))
    status = int(response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    return code, status


def _from_client_error(
    exc: ClientError, *, store: str, handle: str | None, bucket: str
) -> StorageError:
    code, status = error_code(exc)
    if code == "NoSuchBucket":
        return ConfigError(f"the bucket {bucket!r} does not exist", store=store, handle=handle)
    cls = _BY_CODE.get(code)
    if cls is None:
        if status == 404:
            cls = NotFoundError
        elif status == 403:
            cls = PermissionDeniedError
        elif status == 429 or status >= 500:
            cls = TransientError
        else:
            cls = StorageError
    if cls is NotFoundError:
        return NotFoundError("no such object", store=store, handle=handle)
    # The server's message describes the request; it never holds our secrets.
    detail = str(exc.response.get("Error", {}).get("Message") or "").strip()
    message = f"S3 {exc.operation_name} failed: {code or status}"
    if detail:
        message += f" ({detail[:200]})"
    return cls(message, store=store, handle=handle)


def translate(
    exc: BaseException, *, store: str, handle: str | None, bucket: str
) -> StorageError | None:
    """Return the asyncstore error for a botocore or HTTP error, or None for other errors."""
    if isinstance(exc, StorageError):
        return exc
    if isinstance(exc, ClientError):
        return _from_client_error(exc, store=store, handle=handle, bucket=bucket)
    if isinstance(exc, FlexibleChecksumError):
        return IntegrityError(
            "the downloaded bytes do not match the object's checksum", store=store, handle=handle
        )
    if isinstance(exc, (NoCredentialsError, PartialCredentialsError, NoRegionError)):
        return ConfigError(f"S3 client configuration: {exc}", store=store, handle=handle)
    if isinstance(
        exc,
        (
            BotoConnectionError,
            HTTPClientError,
            IncompleteReadError,
            aiohttp.ClientError,
            asyncio.TimeoutError,
        ),
    ):
        return TransientError(
            f"S3 request failed: {type(exc).__name__}", store=store, handle=handle
        )
    if isinstance(exc, BotoCoreError):
        return StorageError(f"S3 client error: {type(exc).__name__}", store=store, handle=handle)
    return None


@contextmanager
def map_s3_errors(*, store: str, handle: str | None, bucket: str) -> Iterator[None]:
    """Translate a botocore or aiohttp error raised in the block into an asyncstore error.

    Args:
        store: The store name for the message.
        handle: The handle being worked on, if any.
        bucket: The bucket, named when it does not exist.

    Raises:
        NotFoundError: For ``NoSuchKey`` or HTTP 404.
        PermissionDeniedError: For ``AccessDenied``, bad credentials or HTTP 403.
        TransientError: For throttling, HTTP 5xx, timeouts and broken connections (after
            botocore's retries).
        ConfigError: For ``NoSuchBucket`` (naming the bucket) or missing credentials/region.
        IntegrityError: For checksum mismatches in either direction.
        StorageError: For anything else botocore raises.
    """
    try:
        yield
    except StorageError as exc:
        # Raised by our own checks, where the store and handle may be unknown.
        if exc.store is None:
            exc.store = store
        if exc.handle is None:
            exc.handle = handle
        raise
    except (BotoCoreError, ClientError, aiohttp.ClientError, asyncio.TimeoutError) as exc:
        error = translate(exc, store=store, handle=handle, bucket=bucket)
        if error is None:  # pragma: no cover - every caught type is translated
            raise
        raise error from exc
