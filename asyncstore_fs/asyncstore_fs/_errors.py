"""Translation of `OSError` into asyncstore errors, at the module's boundary."""

from __future__ import annotations

import errno
from collections.abc import Iterator
from contextlib import contextmanager

from asyncstore.errors import (
    InvalidKeyError,
    NotFoundError,
    PermissionDeniedError,
    StorageError,
    StorageFullError,
    TransientError,
)

__all__ = ["map_os_errors", "translate_os_error"]

# We want to map to the most specific asyncstore error we can find; anything not listed
# becomes a plain StorageError, still chained to the OSError.
_BY_ERRNO: dict[int, tuple[type[StorageError], str]] = {
    errno.ENOENT: (NotFoundError, "no such object"),
    errno.ENOTDIR: (NotFoundError, "no such object"),
    errno.EACCES: (PermissionDeniedError, "permission denied by the filesystem"),
    errno.EPERM: (PermissionDeniedError, "operation not permitted by the filesystem"),
    errno.EROFS: (PermissionDeniedError, "the filesystem is read-only"),
    errno.ENOSPC: (StorageFullError, "no space left on the filesystem"),
    errno.EDQUOT: (StorageFullError, "disk quota exceeded"),
    errno.EFBIG: (StorageFullError, "the file size limit was reached"),
    errno.ENAMETOOLONG: (InvalidKeyError, "a key segment is longer than the filesystem allows"),
    errno.ETIMEDOUT: (TransientError, "the filesystem timed out"),
    errno.ESTALE: (TransientError, "stale file handle on a network filesystem"),
}


def translate_os_error(exc: OSError, *, store: str, handle: str | None) -> StorageError:
    """Return the asyncstore error for an `OSError` (the caller raises it ``from exc``).

    An asyncstore error (several also derive from `OSError`) is returned unchanged.
    """
    if isinstance(exc, StorageError):
        return exc
    cls, message = _BY_ERRNO.get(exc.errno or 0, (StorageError, "filesystem error"))
    detail = exc.strerror or type(exc).__name__
    return cls(f"{message} ({detail})", store=store, handle=handle)


@contextmanager
def map_os_errors(*, store: str, handle: str | None) -> Iterator[None]:
    """Translate an `OSError` raised in the block into an asyncstore error, chained to it.

    Args:
        store: The store name for the message.
        handle: The handle or key being worked on, if any.

    Raises:
        StorageError: A subclass chosen by ``errno``: `NotFoundError` (ENOENT, ENOTDIR),
            `PermissionDeniedError` (EACCES, EPERM, EROFS), `StorageFullError` (ENOSPC,
            EDQUOT, EFBIG), `InvalidKeyError` (ENAMETOOLONG), `TransientError` (ETIMEDOUT,
            ESTALE), else `StorageError`.
    """
    try:
        yield
    except StorageError as exc:
        # Raised by our own checks deep in a worker thread, where the store name is unknown.
        if exc.store is None:
            exc.store = store
        if exc.handle is None:
            exc.handle = handle
        raise
    except OSError as exc:
        raise translate_os_error(exc, store=store, handle=handle) from exc
