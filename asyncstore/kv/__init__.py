"""Bases for simple stores: a backend from four key-value operations.

A store that can get a byte range of a value, set a whole value with its record atomically,
delete, and scan keys by prefix (SQLite, LMDB, Redis, a dict, a cloud key-value service)
subclasses `KeyValueModule` (async hooks) or `BlockingKeyValueModule` (blocking hooks, run in
worker threads) and implements ``_get``, ``_set``, ``_delete`` and ``_scan``; the base supplies
everything else of the `asyncstore.StorageModule` contract.

The *record* is a short ``str`` the base writes next to each value (size, etag, time, content
type, metadata): the store keeps it as it is and hands it back with the value.
"""

from __future__ import annotations

from asyncstore.kv._base import KeyValueBase
from asyncstore.kv._modules import BlockingKeyValueModule, KeyValueModule
from asyncstore.kv._record import Expected, KeyValueReadStream

__all__ = [
    "BlockingKeyValueModule",
    "Expected",
    "KeyValueBase",
    "KeyValueModule",
    "KeyValueReadStream",
]
