"""The asyncstore exception hierarchy.

Every error a module raises derives from `StorageError`; the well-known ones also derive from
the matching builtin so that code written against the standard library keeps working::

    StorageError
    ├── NotFoundError            (also FileNotFoundError)
    ├── AlreadyExistsError       (also FileExistsError)
    ├── InvalidKeyError          (also ValueError)
    ├── InvalidMetadataError     (also ValueError)
    ├── InvalidRangeError        (also ValueError)
    ├── InvalidConditionError    (also ValueError)
    ├── PermissionDeniedError    (also PermissionError)
    ├── PreconditionFailedError  a conditional write or read found another version
    ├── IntegrityError
    ├── UnsupportedError
    ├── StorageFullError
    ├── TransientError           retryable: timeouts, throttling, 5xx after retries
    ├── ConfigError
    ├── PluginError
    │   ├── PluginNotFoundError
    │   └── PluginLoadError
    └── TransformError           a stream transform failed (names it, chains the cause)

Misuse (bad keys, bad metadata, bad configuration) is raised before any I/O; I/O failures are
translated at each backend's boundary and chained to the native error (``raise … from``).
Messages name the store and the handle, never credentials.
"""

from __future__ import annotations

__all__ = [
    "AlreadyExistsError",
    "ConfigError",
    "IntegrityError",
    "InvalidConditionError",
    "InvalidKeyError",
    "InvalidMetadataError",
    "InvalidRangeError",
    "NotFoundError",
    "PermissionDeniedError",
    "PluginError",
    "PluginLoadError",
    "PluginNotFoundError",
    "PreconditionFailedError",
    "StorageError",
    "StorageFullError",
    "TransformError",
    "TransientError",
    "UnsupportedError",
]


class StorageError(Exception):
    """The root of every asyncstore error.

    Attributes:
        message: What went wrong, without the store and handle.
        store: The name of the store involved, when known.
        handle: The handle or key involved, when known.
    """

    def __init__(
        self, message: str, *, store: str | None = None, handle: str | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.store = store
        self.handle = handle

    def __str__(self) -> str:
        where = []
        if self.store is not None:
            where.append(f"store {self.store!r}")
        if self.handle is not None:
            where.append(f"handle {self.handle!r}")
        return f"{self.message} ({', '.join(where)})" if where else self.message

    def __reduce__(self) -> tuple[object, ...]:
        # Keyword-only attributes would be lost by the default pickling of exceptions.
        return (_rebuild, (type(self), self.message, self.store, self.handle))


def _rebuild(
    cls: type[StorageError], message: str, store: str | None, handle: str | None
) -> StorageError:
    return cls(message, store=store, handle=handle)


class NotFoundError(StorageError, FileNotFoundError):
    """No complete object exists for the handle."""


class AlreadyExistsError(StorageError, FileExistsError):
    """The object exists and the operation required that it did not."""


class InvalidKeyError(StorageError, ValueError):
    """A key, handle or prefix breaks the key rules; raised before any I/O."""


class InvalidMetadataError(StorageError, ValueError):
    """Metadata or a content type breaks the metadata rules; raised before any I/O."""


class InvalidRangeError(StorageError, ValueError):
    """A byte range is negative or reversed; raised before any I/O."""


class InvalidConditionError(StorageError, ValueError):
    """A write condition is malformed or contradictory; raised before any I/O.

    For example ``overwrite=False`` together with ``if_match``, or an ``if_match`` that is not
    a non-empty str.
    """


class PreconditionFailedError(StorageError):
    """The object is not the version a conditional operation required.

    Raised by ``if_match=`` writes, deletes and reads when the current object's etag differs or
    no object exists, and by a read stream opened on one version that finds it replaced.
    Nothing was changed.
    """


class PermissionDeniedError(StorageError, PermissionError):
    """The backend refused the operation for lack of permission."""


class IntegrityError(StorageError):
    """Stored data failed a checksum or authentication check."""


class UnsupportedError(StorageError):
    """The module does not offer this operation (see its `capabilities()`)."""


class StorageFullError(StorageError):
    """The backend has no room left (disk full, quota exceeded)."""


class TransientError(StorageError):
    """A failure that may succeed if retried: timeouts, throttling, server errors."""


class ConfigError(StorageError):
    """The configuration of a store or module is wrong."""


class PluginError(StorageError):
    """A plugin could not be found or used."""


class PluginNotFoundError(PluginError):
    """No installed plugin has the requested name."""


class PluginLoadError(PluginError):
    """A plugin was found but failed to import or is ambiguous."""


class TransformError(StorageError):
    """A stream transform failed, was misused, or its worker process crashed or hung.

    Raised by `asyncstore.run_transform` and by transformed reads and writes; the original
    error is chained (``raise ... from``) and nothing partial is stored at any output.
    Errors of the inputs and outputs themselves (a missing object, a full store) are not
    wrapped: they are raised as they are.

    Attributes:
        transform: The name of the transform involved.
    """

    def __init__(
        self,
        message: str,
        *,
        transform: str,
        store: str | None = None,
        handle: str | None = None,
    ) -> None:
        super().__init__(message, store=store, handle=handle)
        self.transform = transform

    def __reduce__(self) -> tuple[object, ...]:
        return (
            _rebuild_transform_error,
            (type(self), self.message, self.transform, self.store, self.handle),
        )


def _rebuild_transform_error(
    cls: type[TransformError],
    message: str,
    transform: str,
    store: str | None,
    handle: str | None,
) -> TransformError:
    return cls(message, transform=transform, store=store, handle=handle)
