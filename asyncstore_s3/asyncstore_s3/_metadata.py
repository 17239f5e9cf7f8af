"""How content types and metadata values are stored so that they read back unchanged anywhere.

S3 engines differ in what they keep of an object's description:

* **No content type.** AWS S3 labels an object stored without one ``binary/octet-stream``;
  SeaweedFS guesses one from the first bytes (``text/plain; charset=utf-8``). A store therefore
  always sends one: ``application/octet-stream``, HTTP's name for bytes of no particular type,
  when the caller gives none. Reading, ``application/octet-stream`` and AWS's
  ``binary/octet-stream`` are reported as no content type (None). Other S3 tools see
  ``application/octet-stream``.
* **Empty metadata values.** SeaweedFS drops an ``x-amz-meta-*`` header whose value is empty.
  A store sends an empty value as the RFC 2047 encoded word of the empty string,
  ``=?UTF-8?B??=``, which every engine keeps, and reads it back as ``""``. A value that itself
  looks like an encoded word (``=?…?=``) is encoded the same way, so that every value reads
  back as written. Other S3 tools see the encoded words (RFC 2047 is also how AWS S3 returns
  metadata values that are not ASCII).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping

__all__ = [
    "DEFAULT_CONTENT_TYPE",
    "decode_metadata",
    "encode_metadata",
    "read_content_type",
    "stored_content_type",
]

DEFAULT_CONTENT_TYPE = "application/octet-stream"
"""What is stored for an object written without a content type."""

_UNTYPED = frozenset({"application/octet-stream", "binary/octet-stream"})
_ENCODED = re.compile(r"=\?utf-8\?b\?([A-Za-z0-9+/]*={0,2})\?=", re.IGNORECASE)


def stored_content_type(content_type: str | None) -> str:
    """Return the content type to send for a (validated) content type or None."""
    return DEFAULT_CONTENT_TYPE if content_type is None else content_type


def read_content_type(value: object) -> str | None:
    """Return the content type to report for the ``Content-Type`` S3 answered with."""
    if not isinstance(value, str) or not value:
        return None
    return None if value.strip().lower() in _UNTYPED else value


def _needs_encoding(value: str) -> bool:
    return not value or (value.startswith("=?") and value.endswith("?="))


def encode_metadata(metadata: Mapping[str, str]) -> dict[str, str]:
    """Return ``metadata`` as sent: empty and encoded-word-like values RFC 2047 encoded."""
    return {
        name: (
            f"=?UTF-8?B?{base64.b64encode(value.encode()).decode()}?="
            if _needs_encoding(value)
            else value
        )
        for name, value in metadata.items()
    }


def decode_metadata(metadata: Mapping[str, str] | None) -> dict[str, str]:
    """Return the metadata S3 answered with, UTF-8 encoded words decoded."""
    decoded: dict[str, str] = {}
    for name, value in (metadata or {}).items():
        match = _ENCODED.fullmatch(value)
        if match is not None:
            try:
                value = base64.b64decode(match.group(1), validate=True).decode()
            except (binascii.Error, UnicodeDecodeError):
                pass  # not ours after all: reported as stored
        decoded[name] = value
    return decoded
