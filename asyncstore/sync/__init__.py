"""Blocking access for thread-based code, and legacy synchronous modules as async ones.

`SyncStore` wraps any storage module for WSGI apps, scripts and task queues: the contract's
methods, blocking, on one background event loop per process. `from_sync_module` (and
`legacy_module_class`, for the plugin registry) goes the other way: a module written against
the original synchronous SDK becomes an async `asyncstore.StorageModule`. See ``docs/sync.md``.
"""

from __future__ import annotations

# Thread-based callers of async modules.
from asyncstore.sync._store import SyncListing, SyncStore
from asyncstore.sync._stream import SyncReadStream

# Legacy synchronous modules as async ones.
from asyncstore.sync._context import LegacyContext, LegacyFunctions, ModuleView  # isort: skip
from asyncstore.sync._legacy import LegacyModule, from_sync_module
from asyncstore.sync._legacy_plugin import legacy_module_class

__all__ = [
    "LegacyContext",
    "LegacyFunctions",
    "LegacyModule",
    "ModuleView",
    "SyncListing",
    "SyncReadStream",
    "SyncStore",
    "from_sync_module",
    "legacy_module_class",
]
