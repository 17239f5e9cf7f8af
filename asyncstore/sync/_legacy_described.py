"""What a legacy module is made of: its methods, what they make possible, and its errors.

The original SDK's modules need only ``get_read_stream`` and a way to store; everything else
is optional (`OPTIONAL_METHODS`). These helpers read a legacy module (or class) and turn
its answers and its exceptions into the contract's shapes.
"""

from __future__ import annotations

import errno
import json
from collections.abc import Mapping
from typing import Any

from asyncstore.errors import (
    AlreadyExistsError,
    NotFoundError,
    PermissionDeniedError,
    StorageError,
    StorageFullError,
    UnsupportedError,
)

__all__ = [
    "OPTIONAL_METHODS",
    "capacity",
    "declared_capabilities",
    "has_method",
    "parse_json",
    "translate_error",
]

OPTIONAL_METHODS = (
    "put",
    "new_data",
    "assign",
    "available",
    "get_size",
    "delete",
    "statistics",
    "capabilities",
)
"""The original SDK's methods a legacy module may lack (it needs get_read_stream, and put or
both new_data and assign)."""


def has_method(legacy: object, method: str) -> bool:
    """Return whether the legacy module (or class) has ``method``."""
    return callable(getattr(legacy, method, None))


def declared_capabilities(legacy: object) -> dict[str, Any]:
    """The capabilities that follow from which methods a legacy module (or class) has.

    Without ``new_data`` there is no handle to `assign` to before storing; without
    ``assign`` or ``delete`` those operations are impossible. ``available``, ``get_size``
    and ``statistics`` are derived, so their absence costs only speed or detail:
    ``legacy_missing`` lists every optional method the legacy module lacks.
    """
    return {
        "new_data": has_method(legacy, "new_data"),
        "assign": has_method(legacy, "assign"),
        "delete": has_method(legacy, "delete"),
        "legacy_missing": [m for m in OPTIONAL_METHODS if not has_method(legacy, m)],
    }


def parse_json(value: Any, what: str) -> dict[str, Any]:
    """Return a legacy answer (a dict, or JSON text of one) as a dict."""
    if isinstance(value, (str, bytes)):
        value = json.loads(value)
    if not isinstance(value, dict):
        raise StorageError(f"the legacy module's {what}() returned {type(value).__name__}")
    return value


def capacity(value: Any) -> dict[str, int | None]:
    """Normalise a legacy ``capacity``: a number (the total), a dict, or nothing."""

    def size(number: Any) -> int | None:
        return int(number) if isinstance(number, (int, float)) and number >= 0 else None

    if isinstance(value, Mapping):
        return {part: size(value.get(part)) for part in ("total", "used", "free")}
    return {"total": size(value), "used": None, "free": None}


def translate_error(exc: Exception, method: str, *, store: str, handle: str | None) -> StorageError:
    """Return the asyncstore error for what a legacy ``method`` raised (to chain to it).

    `FileNotFoundError` (and `KeyError` for a handle) is `NotFoundError`, other `OSError`
    goes by type and errno, `NotImplementedError` is `UnsupportedError`, and anything else
    `StorageError`.
    """
    where: dict[str, Any] = {"store": store, "handle": handle}
    if isinstance(exc, FileNotFoundError) or (isinstance(exc, KeyError) and handle):
        return NotFoundError("no such object", **where)
    if isinstance(exc, PermissionError):
        return PermissionDeniedError(f"{method}() was denied: {exc}", **where)
    if isinstance(exc, FileExistsError):
        return AlreadyExistsError(f"{method}(): {exc}", **where)
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return StorageFullError(f"{method}(): {exc}", **where)
    if isinstance(exc, NotImplementedError):
        return UnsupportedError(f"the legacy module does not implement {method}()", **where)
    return StorageError(f"the legacy {method}() failed: {type(exc).__name__}: {exc}", **where)
