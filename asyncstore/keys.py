"""The one shared validator for keys, prefixes and object metadata.

Key rules: a non-empty string that encodes to at most 1024 bytes of UTF-8, with no NUL or
other control characters, made of ``/``-separated segments none of which is empty, ``.`` or
``..`` (so no leading, trailing or doubled ``/``). Every module applies them before any I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from asyncstore.errors import InvalidKeyError, InvalidMetadataError

__all__ = [
    "MAX_KEY_BYTES",
    "MAX_METADATA_BYTES",
    "validate_content_type",
    "validate_key",
    "validate_metadata",
    "validate_prefix",
]

MAX_KEY_BYTES = 1024
"""The longest key, in bytes of UTF-8."""

MAX_METADATA_BYTES = 2048
"""The largest total size of metadata names and values (S3's limit for user metadata)."""

# C0 controls, DEL and C1 controls.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_META_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,127}")
# Printable ASCII, neither starting nor ending with a space (HTTP trims those).
_META_VALUE = re.compile(r"([\x21-\x7e]([\x20-\x7e]*[\x21-\x7e])?)?")
_CONTENT_TYPE = re.compile(
    r"[!#$%&'*+.^_`|~0-9A-Za-z-]+/[!#$%&'*+.^_`|~0-9A-Za-z-]+(;[\x20-\x7e]*)?"
)


def _check_text(value: object, what: str, *, store: str | None) -> str:
    if not isinstance(value, str):
        raise InvalidKeyError(f"{what} must be a str, not {type(value).__name__}", store=store)
    try:
        encoded = value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidKeyError(
            f"{what} is not valid UTF-8 (it contains a lone surrogate)", store=store
        ) from None
    if len(encoded) > MAX_KEY_BYTES:
        raise InvalidKeyError(
            f"{what} is {len(encoded)} bytes long; the limit is {MAX_KEY_BYTES}", store=store
        )
    if match := _CONTROL.search(value):
        raise InvalidKeyError(
            f"{what} contains the control character {match.group()!r}",
            store=store,
            handle=value if "\x00" not in value else None,
        )
    if value.startswith("/"):
        raise InvalidKeyError(f"{what} must not start with '/'", store=store, handle=value)
    return value


def validate_key(key: object, *, store: str | None = None) -> str:
    """Check a key against the key rules and return it.

    Args:
        key: The candidate key.
        store: The store name to put in the error message.

    Returns:
        The key, unchanged.

    Raises:
        InvalidKeyError: If the key breaks a rule; the message says which.
    """
    text = _check_text(key, "key", store=store)
    if not text:
        raise InvalidKeyError("key must not be empty", store=store)
    for segment in text.split("/"):
        if segment in ("", ".", ".."):
            shown = "an empty segment" if not segment else f"a {segment!r} segment"
            raise InvalidKeyError(f"key has {shown}", store=store, handle=text)
    return text


def validate_prefix(prefix: object, *, store: str | None = None) -> str:
    """Check a listing prefix and return it.

    A prefix may be empty, may end with ``/`` and may end in a partial segment, but every
    complete segment must obey the key rules.

    Raises:
        InvalidKeyError: If the prefix could never match a valid key.
    """
    text = _check_text(prefix, "prefix", store=store)
    for segment in text.split("/")[:-1]:
        if segment in ("", ".", ".."):
            raise InvalidKeyError(
                "prefix has an empty, '.' or '..' segment", store=store, handle=text
            )
    return text


def validate_metadata(
    metadata: Mapping[str, str] | None, *, store: str | None = None
) -> dict[str, str]:
    """Check user metadata and return it as a plain dict.

    Names are lower-case ASCII (``[a-z0-9][a-z0-9._-]*``, at most 128 characters) and values are
    printable ASCII without leading or trailing spaces, at most 2048 bytes in all: the subset
    every backend, S3 included (HTTP headers lose surrounding spaces), stores and returns
    unchanged.

    Raises:
        InvalidMetadataError: If a name or value breaks the rules.
    """
    if metadata is None:
        return {}
    if not isinstance(metadata, Mapping):
        raise InvalidMetadataError(
            f"metadata must be a mapping of str to str, not {type(metadata).__name__}",
            store=store,
        )
    result: dict[str, str] = {}
    total = 0
    for name, value in metadata.items():
        if not isinstance(name, str) or not _META_NAME.fullmatch(name):
            raise InvalidMetadataError(
                f"metadata name {name!r} must be lower-case ASCII letters, digits, '.', '_' "
                "or '-' (at most 128 characters)",
                store=store,
            )
        if not isinstance(value, str) or not _META_VALUE.fullmatch(value):
            raise InvalidMetadataError(
                f"metadata value for {name!r} must be a str of printable ASCII, without leading "
                "or trailing spaces",
                store=store,
            )
        total += len(name) + len(value)
        result[name] = value
    if total > MAX_METADATA_BYTES:
        raise InvalidMetadataError(
            f"metadata is {total} bytes; the limit is {MAX_METADATA_BYTES}", store=store
        )
    return result


def validate_content_type(content_type: object, *, store: str | None = None) -> str | None:
    """Check a MIME content type such as ``text/plain; charset=utf-8`` and return it.

    Raises:
        InvalidMetadataError: If it is not a ``type/subtype`` string of printable ASCII.
    """
    if content_type is None:
        return None
    if not isinstance(content_type, str) or not _CONTENT_TYPE.fullmatch(content_type):
        raise InvalidMetadataError(
            f"content_type {content_type!r} is not a 'type/subtype' MIME type", store=store
        )
    return content_type
