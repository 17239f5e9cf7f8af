"""Conformance checks for stat, metadata, deletion, copying, errors and invalid keys."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from asyncstore.errors import (
    InvalidKeyError,
    InvalidMetadataError,
    NotFoundError,
    StorageError,
)
from asyncstore.keys import MAX_KEY_BYTES
from asyncstore.module import StorageModule
from asyncstore.testing._base import PRESUMED, SuiteBase

INVALID_KEYS: list[Any] = [
    "",
    "/leading",
    "trailing/",
    "double//slash",
    ".",
    "..",
    "./dot",
    "a/./b",
    "../escape",
    "a/../../escape",
    "a/..",
    "nul\x00byte",
    "new\nline",
    "tab\tchar",
    "del\x7fchar",
    "c1\x85control",
    "x" * 1025,
    "é" * 513,
    "lone\ud800surrogate",
    123,
    b"bytes-key",
]


class ObjectTests(SuiteBase):
    """Checks of stat, metadata, available, delete, copy, not-found and invalid keys."""

    async def test_stat_fields(self, module: StorageModule) -> None:
        before = datetime.now(timezone.utc) - timedelta(minutes=5)
        handle = await self.put(module, b"hello", "stat/obj")
        info = await module.stat(handle)
        assert info.handle == handle
        assert info.size == 5
        if info.modified is not None:
            assert info.modified.utcoffset() == timedelta(0)
            assert before <= info.modified <= datetime.now(timezone.utc) + timedelta(minutes=5)
        assert info.etag is None or isinstance(info.etag, str)

    async def test_etag_changes_with_content(self, module: StorageModule) -> None:
        self.require(module, "named_keys")
        first = await module.stat(await self.put(module, b"one", "stat/etag"))
        second = await module.stat(await self.put(module, b"two", "stat/etag"))
        if first.etag is not None:
            assert first.etag != second.etag

    async def test_get_size(self, module: StorageModule) -> None:
        handle = await self.put(module, b"x" * 12345, "stat/size")
        assert await module.get_size(handle) == 12345

    async def test_available(self, module: StorageModule) -> None:
        handle = await self.put(module, b"x", "stat/available")
        assert await module.available(handle) is True
        assert await module.available(await self.unknown_handle(module)) is False

    async def test_keyed_handles_are_keys(self, module: StorageModule) -> None:
        self.require(module, "named_keys")
        key = "unicode/dïr/ünï cødé ☃ +&=?.txt"
        handle = await self.put(module, b"u", key)
        assert handle == self.k(key)
        assert await self.read_all(module, handle) == b"u"

    async def test_longest_valid_key(self, module: StorageModule) -> None:
        self.require(module, "named_keys")
        # Exactly 1024 bytes (or the module's max_key_bytes) with the prefix, in segments of
        # at most 200 bytes (filesystems limit a name to 255), with multi-byte characters.
        limit = module.capabilities().get("max_key_bytes", MAX_KEY_BYTES)
        room = limit - len(self.key_prefix.encode())
        unit = "é" * 40 + "k" * 119  # 199 bytes, 200 with its separator
        segments = []
        while room > 200:
            segments.append(unit)
            room -= 200
        segments.append("k" * room)
        key = "/".join(segments)
        handle = await self.put(module, b"long", key)
        assert len(handle.encode()) == limit
        assert await self.read_all(module, handle) == b"long"
        if self.supports(module, "writable"):
            with pytest.raises(InvalidKeyError):
                await self.put(module, b"longer", key + "k")

    async def test_metadata_round_trip(self, module: StorageModule) -> None:
        self.require(module, "metadata")
        metadata = {"owner": "alice", "x-trace.id": "abc-123", "empty": "", "spaced": "a  b"}
        handle = await self.put(
            module, b"m", "meta/obj", metadata=metadata, content_type="text/plain; charset=utf-8"
        )
        info = await module.stat(handle)
        assert dict(info.metadata) == metadata
        assert info.content_type == "text/plain; charset=utf-8"

    async def test_metadata_defaults_to_empty(self, module: StorageModule) -> None:
        handle = await self.put(module, b"m", "meta/none")
        info = await module.stat(handle)
        assert dict(info.metadata) == {}

    async def test_overwrite_replaces_metadata(self, module: StorageModule) -> None:
        self.require(module, "writable")
        self.require(module, "metadata")
        self.require(module, "named_keys")
        await self.put(module, b"1", "meta/over", metadata={"a": "1"}, content_type="text/plain")
        handle = await self.put(module, b"2", "meta/over", metadata={"b": "2"})
        info = await module.stat(handle)
        assert dict(info.metadata) == {"b": "2"}
        assert info.content_type in (None, "application/octet-stream", "binary/octet-stream")

    @pytest.mark.parametrize(
        "metadata",
        [
            {"Upper": "x"},
            {"sp ace": "x"},
            {"k": "ünicode"},
            {"k": "line\nbreak"},
            {"k": 1},
            {"": "x"},
            {"k": " padded"},
            {"k": "padded "},
        ],
        ids=[
            "upper-name",
            "space-name",
            "non-ascii-value",
            "newline-value",
            "int-value",
            "empty",
            "leading-space",
            "trailing-space",
        ],
    )
    async def test_invalid_metadata_stores_nothing(
        self, module: StorageModule, metadata: dict[str, Any]
    ) -> None:
        self.require(module, "writable")
        with pytest.raises(InvalidMetadataError):
            await self.put(module, b"x", "meta/bad", metadata=metadata)
        if module.capabilities().get("named_keys"):
            assert not await module.available(self.k("meta/bad"))

    @pytest.mark.parametrize("content_type", ["text", "text/plain\nX: y", "", 5])
    async def test_invalid_content_type_stores_nothing(
        self, module: StorageModule, content_type: Any
    ) -> None:
        self.require(module, "writable")
        with pytest.raises(InvalidMetadataError):
            await self.put(module, b"x", "meta/bad-type", content_type=content_type)
        if module.capabilities().get("named_keys"):
            assert not await module.available(self.k("meta/bad-type"))

    async def test_delete(self, module: StorageModule) -> None:
        self.require(module, "delete")
        handle = await self.put(module, b"bye", "delete/obj")
        await module.delete(handle)
        assert not await module.available(handle)
        with pytest.raises(NotFoundError):
            await module.stat(handle)

    async def test_delete_missing_is_not_an_error(self, module: StorageModule) -> None:
        self.require(module, "delete")
        await module.delete(await self.unknown_handle(module))

    async def test_delete_twice(self, module: StorageModule) -> None:
        self.require(module, "delete")
        handle = await self.put(module, b"bye", "delete/twice")
        await module.delete(handle)
        await module.delete(handle)
        assert not await module.available(handle)

    async def test_delete_leaves_siblings(self, module: StorageModule) -> None:
        self.require(module, "delete")
        keep = await self.put(module, b"keep", "delete/dir/keep")
        gone = await self.put(module, b"gone", "delete/dir/gone")
        await module.delete(gone)
        assert await self.read_all(module, keep) == b"keep"

    async def test_copy_to_a_key(self, module: StorageModule) -> None:
        self.require(module, "writable")
        self.require(module, "named_keys")
        source = await self.put(
            module, b"copy me", "copy/src", metadata={"m": "1"}, content_type="text/plain"
        )
        target = await module.copy(source, key=self.k("copy/dst"))
        assert target == self.k("copy/dst")
        assert await self.read_all(module, target) == b"copy me"
        assert await self.read_all(module, source) == b"copy me"
        if module.capabilities().get("metadata"):
            info = await module.stat(target)
            assert dict(info.metadata) == {"m": "1"}
            assert info.content_type == "text/plain"

    async def test_copy_without_key(self, module: StorageModule) -> None:
        self.require(module, "writable")
        source = await self.put(module, b"copy me too", "copy/src2")
        target = await module.copy(source)
        assert target != source
        assert await self.read_all(module, target) == b"copy me too"

    async def test_copy_overwrites_the_target(self, module: StorageModule) -> None:
        self.require(module, "writable")
        self.require(module, "named_keys")
        source = await self.put(module, b"new", "copy/src3")
        await self.put(module, b"old and longer", "copy/dst3")
        await module.copy(source, key=self.k("copy/dst3"))
        assert await self.read_all(module, self.k("copy/dst3")) == b"new"

    async def test_copy_large_object(self, module: StorageModule) -> None:
        self.require(module, "writable")
        data = self.pattern(self.large_object_size, seed=10)
        source = await self.put(module, data, "copy/large")
        target = await module.copy(source)
        assert await self.read_all(module, target) == data

    @pytest.mark.parametrize("operation", ["get_read_stream", "stat", "get_size", "copy"])
    async def test_unknown_handle_raises_not_found(
        self, module: StorageModule, operation: str
    ) -> None:
        if operation == "copy":
            self.require(module, "writable")
        handle = await self.unknown_handle(module)
        with pytest.raises(NotFoundError) as caught:
            await getattr(module, operation)(handle)
        assert isinstance(caught.value, FileNotFoundError)
        assert isinstance(caught.value, StorageError)
        assert handle in str(caught.value)

    async def test_unknown_handle_is_not_available(self, module: StorageModule) -> None:
        assert await module.available(await self.unknown_handle(module)) is False

    @pytest.mark.parametrize("key", INVALID_KEYS, ids=lambda key: repr(key)[:24])
    async def test_invalid_keys_are_rejected_before_io(
        self, module: StorageModule, key: Any
    ) -> None:
        self.require(module, "named_keys")
        operations: list[Callable[[], Awaitable[object]]] = [
            lambda: module.put(b"x", key=key),
            lambda: module.stat(key),
            lambda: module.get_read_stream(key),
            lambda: module.get_size(key),
            lambda: module.available(key),
        ]
        if self.supports(module, "assign"):
            operations.append(lambda: module.assign(key, b"x"))
        if self.supports(module, "delete"):
            operations.append(lambda: module.delete(key))
        for operation in operations:
            with pytest.raises(InvalidKeyError):
                await operation()
        if module.capabilities().get("list"):
            assert [info async for info in module.list(self.key_prefix)] == []

    async def test_invalid_key_error_is_a_value_error(self, module: StorageModule) -> None:
        self.require(module, "named_keys")
        with pytest.raises(ValueError, match=r"\.\."):
            await module.put(b"x", key="a/../b")

    async def test_statistics_shape(self, module: StorageModule) -> None:
        await self.put(module, b"12345", "stats/obj")
        stats = await module.statistics()
        json.dumps(stats)
        capacity = stats["capacity"]
        assert set(capacity) >= {"total", "used", "free"}
        for value in capacity.values():
            assert value is None or (isinstance(value, int) and value >= 0)

    async def test_capabilities_shape(self, module: StorageModule) -> None:
        capabilities = module.capabilities()
        json.dumps(capabilities)
        for name in (
            "range_read",
            "seek",
            "list",
            "metadata",
            "named_keys",
            "server_side_copy",
            "presign",
            "atomic_writes",
        ):
            assert isinstance(capabilities.get(name), bool), name
        for name in PRESUMED:
            assert isinstance(capabilities.get(name, True), bool), name
        limit = capabilities.get("max_object_size")
        assert limit is None or isinstance(limit, int)
        key_limit = capabilities.get("max_key_bytes", 1024)
        assert isinstance(key_limit, int) and 0 < key_limit <= 1024
        assert capabilities.get("list_order", "lexicographic") in ("lexicographic", "tree")
        assert module.capabilities() == capabilities

    async def test_async_context_manager_and_aclose(self, module: StorageModule) -> None:
        async with module as entered:
            assert entered is module
        await module.aclose()  # closing again is harmless
