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

and adds one: a GET of a whole object asks for the object's checksum (``x-amz-checksum-mode``)
as a header of its own rather than as botocore's ``ChecksumMode`` parameter, so that the store,
not botocore, checks the bytes against it: botocore's check ends with the response body, while
the store's carries on across the ranged GETs that resume a body that broke off.
"""

from __future__ import annotations

from typing import Any

from botocore.handlers import add_expect_header, validate_ascii_metadata
from botocore.utils import determine_content_length

__all__ = [
    "EXPECT_CONTINUE_THRESHOLD",
    "adjust_handlers",
    "ask_for_the_checksum",
    "expect_continue_for_large_bodies",
]

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


def adjust_handlers(events: Any) -> None:
    """Adjust the event handlers of one S3 client (``client.meta.events``) for a store."""
    events.unregister("before-call.s3", add_expect_header)
    events.register("before-call.s3", expect_continue_for_large_bodies)
    events.unregister("before-parameter-build.s3.PutObject", validate_ascii_metadata)
    events.register("before-call.s3.GetObject", ask_for_the_checksum)
