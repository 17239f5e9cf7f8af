"""What asyncstore knows about particular fsspec filesystems, and what it assumes of the rest.

fsspec promises little about how writes land: whether readers can see a half-written file, or
whether a failed write leaves one behind, depends on the implementation. `FsspecModule`
writes in the safest way each filesystem offers and declares ``atomic_writes`` only where that
way is known to be all-or-nothing; every other filesystem is assumed not to be (a user who
knows better says so with the ``atomic_writes`` option).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

__all__ = ["Traits", "traits_of"]


@dataclass(frozen=True)
class Traits:
    """How the module writes and copies on one filesystem, and what that guarantees."""

    atomic_writes: bool = False
    """Whether a write is published whole or not at all (readers never see a partial file)."""
    in_memory: bool = False
    """The filesystem holds every byte in memory: writes gather the bytes and store them with
    one ``pipe_file`` (instead of streaming into a transactional file), and reads copy a
    snapshot of the file (instead of holding an open file, which such filesystems share)."""
    server_side_copy: bool = False
    """Whether ``cp_file`` copies inside the filesystem, all-or-nothing."""
    options: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    """Filesystem options the module passes unless the user gives them."""


_OBJECT_STORE = Traits(atomic_writes=True, server_side_copy=True)
"""Object stores publish an upload (single or multipart) only when it completes."""

_KNOWN: Mapping[str, Traits] = {
    # A MemoryFile is published by one dict assignment; its _open ignores autocommit, so the
    # bytes are gathered and stored with pipe_file; readers of one file share its position.
    "memory": Traits(atomic_writes=True, in_memory=True, server_side_copy=True),
    "s3": _OBJECT_STORE,
    "s3a": _OBJECT_STORE,
    "gs": _OBJECT_STORE,
    "gcs": _OBJECT_STORE,
    "az": _OBJECT_STORE,
    "abfs": _OBJECT_STORE,
    "abfss": _OBJECT_STORE,
}

_LOCAL = ("file", "local")


def _device(path: str) -> int | None:
    """Return the device of ``path``, or of its nearest existing ancestor."""
    candidate = Path(path)
    existing = next((p for p in (candidate, *candidate.parents) if p.exists()), None)
    return None if existing is None else os.stat(existing).st_dev


def traits_of(protocol: str, root: str) -> Traits:
    """Return what the module knows about writing to ``protocol`` under ``root``."""
    if protocol in _LOCAL:
        # A transactional local file is written in the temporary directory and renamed into
        # place on commit: atomic only when both are on one filesystem (else it is copied).
        same_device = _device(root) is not None and _device(root) == _device(tempfile.gettempdir())
        return Traits(atomic_writes=same_device, options=MappingProxyType({"auto_mkdir": True}))
    return _KNOWN.get(protocol, Traits())
