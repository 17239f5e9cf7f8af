"""Translation of botocore and aiohttp errors into asyncstore errors, at the module's boundary."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import aiohttp
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    FlexibleChecksumError,
    HTTPClientError,
    IncompleteReadError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ReadTimeoutError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError

from asyncstore.errors import (
    AlreadyExistsError,
    ConfigError,
    IntegrityError,
    NotFoundError,
    PermissionDeniedError,
    PreconditionFailedError,
    StorageError,
    TransientError,
    UnsupportedError,
)

__all__ = ["error_code", "map_condition_errors", "map_s3_errors", "translate"]

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
    "PreconditionFailed": PreconditionFailedError,
    # AWS: another conditional write of the key was in flight; the request may be retried.
    "ConditionalRequestConflict": TransientError,
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
    if cls is PreconditionFailedError:
        return PreconditionFailedError(
            "the object is not the version if_match names (S3 PreconditionFailed)",
            store=store,
            handle=handle,
        )
    # The server's message describes the request; it never holds our secrets.
    detail = str(exc.response.get("Error", {}).get("Message") or "").strip()
    message = f"S3 {exc.operation_name} failed: {code or status}"
    if detail:
        message += f" ({detail[:200]})"
    return cls(message, store=store, handle=handle)


def _timeout_message(exc: BaseException) -> str:
    """Say what timed out: which request, which timeout option and its value, how often."""
    timeout = getattr(exc, "timeout", None)
    endpoint = _origin(getattr(exc, "kwargs", {}).get("endpoint_url"))
    if timeout is None:
        what = "connecting to" if isinstance(exc, ConnectTimeoutError) else "waiting for"
        return f"S3 request timed out {what} {endpoint}"
    tries = f"{timeout.attempts} attempt{'s' if timeout.attempts != 1 else ''}"
    if timeout.name == "connect_timeout":
        return (
            f"S3 {timeout.operation} timed out: no connection to {endpoint} within "
            f"connect_timeout={timeout.seconds:g} s ({tries})"
        )
    after = "of sending its request" if timeout.name == "write_timeout" else "of asking"
    return (
        f"S3 {timeout.operation} timed out: no answer from {endpoint} within "
        f"{timeout.name}={timeout.seconds:g} s {after} ({tries})"
    )


def _origin(url: object) -> str:
    """Return ``scheme://host:port`` of a request URL (the key and query are left out)."""
    if not isinstance(url, str) or "://" not in url:
        return "the endpoint"
    scheme, rest = url.split("://", 1)
    return f"{scheme}://{rest.split('/', 1)[0].split('?', 1)[0]}"


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
    if isinstance(exc, (ConnectTimeoutError, ReadTimeoutError)):
        return TransientError(_timeout_message(exc), store=store, handle=handle)
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
def map_condition_errors(conditions: Mapping[str, str]) -> Iterator[None]:
    """Say what a failed condition of a write or delete means, in the contract's terms.

    Wraps a block that maps S3 errors already: with ``IfNoneMatch`` a 412 means that an object
    exists (`AlreadyExistsError`); with ``IfMatch`` a 404 means that there is no object for the
    etag to match (`PreconditionFailedError`).
    """
    try:
        yield
    except PreconditionFailedError as exc:
        if "IfNoneMatch" in conditions:
            raise AlreadyExistsError(
                "an object exists under this key", store=exc.store, handle=exc.handle
            ) from exc
        raise
    except NotFoundError as exc:
        if "IfMatch" in conditions:
            raise PreconditionFailedError(
                "no object exists for if_match to match", store=exc.store, handle=exc.handle
            ) from exc
        raise


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
            botocore's retries); a timeout's message names the option that bounded it.
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
