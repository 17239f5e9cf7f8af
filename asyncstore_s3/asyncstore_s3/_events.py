"""botocore's per-request event handlers, adjusted to what a store sends.

Every request of a botocore client runs a chain of event handlers. A store's client keeps all
of them (signing, checksums, SSE-C, retries, redirects, error handling) but two:

* ``Expect: 100-continue``: botocore asks for it before every file-like body, however small,
  so each PUT waits a round trip for the server's ``100 Continue`` before sending its body.
  The store asks for it only before bodies larger than `EXPECT_CONTINUE_THRESHOLD` (2 MiB,
  the AWS SDK for Go's threshold), where sparing the upload of a refused body is worth the
  round trip.
* botocore's check that a PutObject's metadata is ASCII: the store only sends metadata its
  own validator has checked (printable ASCII) before any I/O. (A copy may carry metadata read
  back from S3, so CreateMultipartUpload and CopyObject keep the check.)

and adds three:

* a GET of a whole object asks for the object's checksum (``x-amz-checksum-mode``) as a header
  of its own rather than as botocore's ``ChecksumMode`` parameter, so that the store, not
  botocore, checks the bytes against it: botocore's check ends with the response body, while
  the store's carries on across the ranged GETs that resume a body that broke off;
* a write waits ``write_timeout`` (not ``read_timeout``) for the server's first byte once its
  request is sent: a cluster that cannot place the bytes (a volume server down) may accept a
  write and never answer, and a write must fail over as soon as a read would;
* a request that timed out carries which timeout it was, and its value, for the error message
  (see `Timeout`);
* the first answer of a store left at ``engine="aws"`` is looked at once: if the server says
  it is SeaweedFS, a warning on the ``asyncstore_s3`` logger says to set
  ``engine="seaweedfs"``, without which the store declares an order its listings do not have.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ConnectTimeoutError, ReadTimeoutError
from botocore.handlers import add_expect_header, validate_ascii_metadata
from botocore.utils import determine_content_length

__all__ = [
    "ENGINE_LOGGER",
    "EXPECT_CONTINUE_THRESHOLD",
    "WRITES",
    "Timeout",
    "adjust_handlers",
    "ask_for_the_checksum",
    "expect_continue_for_large_bodies",
]

WRITES = frozenset(
    {
        "PutObject",
        "UploadPart",
        "CreateMultipartUpload",
        "CompleteMultipartUpload",
        "AbortMultipartUpload",
        "DeleteObject",
        "DeleteObjects",
    }
)
"""The operations bounded by ``write_timeout``. Server-side copies are not: a server may
copy all the bytes before its first answer."""
ENGINE_LOGGER = logging.getLogger("asyncstore_s3")
"""Where the store warns about an endpoint whose engine it was not told."""

EXPECT_CONTINUE_THRESHOLD = 2 << 20
"""Bodies larger than this many bytes are sent after the server's ``100 Continue``."""


def expect_continue_for_large_bodies(model: Any, params: dict[str, Any], **kwargs: Any) -> None:
    """Add ``Expect: 100-continue`` to a PUT or POST whose body is large or of unknown size.

    Args:
        model: The operation model.
        params: The request dictionary being built.
        **kwargs: The event's other arguments.
    """
    if model.http.get("method", "") not in ("PUT", "POST"):
        return
    body = params.get("body")
    if body is None or not hasattr(body, "read"):
        return
    length = determine_content_length(body)
    if length is None or length > EXPECT_CONTINUE_THRESHOLD:
        params["headers"]["Expect"] = "100-continue"


def ask_for_the_checksum(params: dict[str, Any], **kwargs: Any) -> None:
    """Ask for the object's checksum in a GetObject of the whole object (no ``Range``).

    Args:
        params: The request dictionary being built.
        **kwargs: The event's other arguments.
    """
    headers = params["headers"]
    if "Range" not in headers:
        headers["x-amz-checksum-mode"] = "ENABLED"


@dataclass(frozen=True)
class Timeout:
    """Which timeout a request ran into: set on the botocore exception as ``timeout``."""

    operation: str
    """The S3 operation, such as ``PutObject``."""
    name: str
    """The store option: ``connect_timeout``, ``read_timeout`` or ``write_timeout``."""
    seconds: float
    """Its value."""
    attempts: int
    """How many times the request was tried in all (the store's ``max_attempts``)."""


class _Timeouts:
    """The handlers that bound writes and name the timeout a request ran into."""

    def __init__(self, connect: float, read: float, write: float, attempts: int) -> None:
        self._connect = connect
        self._read = read
        self._write = write
        self._attempts = attempts

    def bound_write(self, params: dict[str, Any], **kwargs: Any) -> None:
        # aiohttp starts this timeout once the request body is sent: it bounds the time to
        # the first byte of the answer, whatever the body's size.
        params["context"]["read_timeout"] = self._write

    def name_timeout(self, exception: BaseException, event_name: str, **kwargs: Any) -> None:
        operation = event_name.rsplit(".", 1)[-1]
        if isinstance(exception, ConnectTimeoutError):
            name, seconds = "connect_timeout", self._connect
        elif isinstance(exception, ReadTimeoutError):
            write = operation in WRITES
            name = "write_timeout" if write else "read_timeout"
            seconds = self._write if write else self._read
        else:
            return
        setattr(exception, "timeout", Timeout(operation, name, seconds, self._attempts))  # noqa: B010


class _EngineCheck:
    """Looks at the first answer's ``Server`` header for an engine the store was not told."""

    def __init__(self, engine: str) -> None:
        self._done = engine != "aws"

    def after_call(self, http_response: Any, **kwargs: Any) -> None:
        if self._done:
            return
        self._done = True
        server = str(http_response.headers.get("server") or "")
        if server.lower().startswith("seaweedfs"):
            ENGINE_LOGGER.warning(
                "the S3 endpoint is %s, which lists in directory-tree order ('a/b' before "
                "'a-b'): set engine='seaweedfs' so that the store declares it "
                "(capabilities()['list_order'] == 'tree')",
                server[:60],
            )


def adjust_handlers(
    events: Any,
    *,
    connect_timeout: float = 10.0,
    read_timeout: float = 60.0,
    write_timeout: float = 30.0,
    max_attempts: int = 1,
    engine: str = "aws",
) -> None:
    """Adjust the event handlers of one S3 client (``client.meta.events``) for a store."""
    events.unregister("before-call.s3", add_expect_header)
    events.register("before-call.s3", expect_continue_for_large_bodies)
    events.unregister("before-parameter-build.s3.PutObject", validate_ascii_metadata)
    events.register("before-call.s3.GetObject", ask_for_the_checksum)
    timeouts = _Timeouts(connect_timeout, read_timeout, write_timeout, max_attempts)
    for operation in WRITES:
        events.register(f"before-call.s3.{operation}", timeouts.bound_write)
    events.register("after-call-error.s3", timeouts.name_timeout)
    events.register("after-call.s3", _EngineCheck(engine).after_call)
