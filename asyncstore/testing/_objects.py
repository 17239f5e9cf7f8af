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
from asyncstore.testing._base import PRESUMED, SuiteBase, expect_bytes, expect_error, show

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
        assert info.handle == handle, f"stat().handle: expected {handle!r}, got {info.handle!r}"
        assert info.size == 5, f"stat().size of a 5-byte object: expected 5, got {info.size!r}"
        if info.modified is not None:
            assert info.modified.utcoffset() == timedelta(0), (
                f"stat().modified: expected an aware UTC datetime, got {info.modified!r}"
            )
            assert before <= info.modified <= datetime.now(timezone.utc) + timedelta(minutes=5), (
                f"stat().modified of an object just stored: expected about now, "
                f"got {info.modified.isoformat()}"
            )
        assert info.etag is None or isinstance(info.etag, str), (
            f"stat().etag: expected a str or None, got {info.etag!r}"
        )

    async def test_etag_changes_with_content(self, module: StorageModule) -> None:
        self.require(module, "named_keys")
        first = await module.stat(await self.put(module, b"one", "stat/etag"))
        second = await module.stat(await self.put(module, b"two", "stat/etag"))
        if first.etag is not None:
            assert first.etag != second.etag, (
                f"stat().etag after the content changed: expected a new etag, got {second.etag!r} "
                "again"
            )

    async def test_get_size(self, module: StorageModule) -> None:
        handle = await self.put(module, b"x" * 12345, "stat/size")
        size = await module.get_size(handle)
        assert size == 12345, f"get_size() of a 12345-byte object: expected 12345, got {size!r}"

    async def test_available(self, module: StorageModule) -> None:
        handle = await self.put(module, b"x", "stat/available")
        available = await module.available(handle)
        assert available is True, (
            f"available() of a stored object: expected True, got {available!r}"
        )
        unknown = await self.unknown_handle(module)
        available = await module.available(unknown)
        assert available is False, (
            f"available() of the unknown handle {unknown!r}: expected False, got {available!r}"
        )

    async def test_keyed_handles_are_keys(self, module: StorageModule) -> None:
        self.require(module, "named_keys")
        key = "unicode/dïr/ünï cødé ☃ +&=?.txt"
        handle = await self.put(module, b"u", key)
        assert handle == self.k(key), (
            f"put(key=...) of a key with non-ASCII, spaces and +&=?: expected the key "
            f"{self.k(key)!r} as the handle, got {show(handle)}"
        )
        expect_bytes(await self.read_all(module, handle), b"u", f"reading {handle!r}")

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
        assert len(handle.encode()) == limit, (
            f"put() with a {limit}-byte key (the declared max_key_bytes): expected that key as "
            f"the handle, got a handle of {len(handle.encode())} bytes"
        )
        expect_bytes(await self.read_all(module, handle), b"long", "reading the longest key")
        if self.supports(module, "writable"):
            with expect_error(InvalidKeyError, f"put() with a key of {limit + 1} bytes"):
                await self.put(module, b"longer", key + "k")

    async def test_metadata_round_trip(self, module: StorageModule) -> None:
        self.require(module, "metadata")
        metadata = {"owner": "alice", "x-trace.id": "abc-123", "empty": "", "spaced": "a  b"}
        handle = await self.put(
            module, b"m", "meta/obj", metadata=metadata, content_type="text/plain; charset=utf-8"
        )
        info = await module.stat(handle)
        assert dict(info.metadata) == metadata, (
            f"stat().metadata: expected what put() stored, {metadata!r}, "
            f"got {dict(info.metadata)!r}"
        )
        assert info.content_type == "text/plain; charset=utf-8", (
            f"stat().content_type: expected 'text/plain; charset=utf-8', got {info.content_type!r}"
        )

    async def test_metadata_defaults_to_empty(self, module: StorageModule) -> None:
        handle = await self.put(module, b"m", "meta/none")
        info = await module.stat(handle)
        assert dict(info.metadata) == {}, (
            f"stat().metadata of an object put without any: expected {{}}, "
            f"got {dict(info.metadata)!r}"
        )

    async def test_overwrite_replaces_metadata(self, module: StorageModule) -> None:
        self.require(module, "writable")
        self.require(module, "metadata")
        self.require(module, "named_keys")
        await self.put(module, b"1", "meta/over", metadata={"a": "1"}, content_type="text/plain")
        handle = await self.put(module, b"2", "meta/over", metadata={"b": "2"})
        info = await module.stat(handle)
        assert dict(info.metadata) == {"b": "2"}, (
            f"stat().metadata after an overwrite: expected only the new metadata, {{'b': '2'}}, "
            f"got {dict(info.metadata)!r}"
        )
        assert info.content_type in (None, "application/octet-stream", "binary/octet-stream"), (
            f"stat().content_type after an overwrite without one: expected none (or a generic "
            f"binary type), got {info.content_type!r}"
        )

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
        with expect_error(InvalidMetadataError, f"put(metadata={metadata!r})"):
            await self.put(module, b"x", "meta/bad", metadata=metadata)
        if module.capabilities().get("named_keys"):
            assert not await module.available(self.k("meta/bad")), (
                f"put(metadata={metadata!r}) failed: expected nothing stored, got an object"
            )

    @pytest.mark.parametrize("content_type", ["text", "text/plain\nX: y", "", 5])
    async def test_invalid_content_type_stores_nothing(
        self, module: StorageModule, content_type: Any
    ) -> None:
        self.require(module, "writable")
        with expect_error(InvalidMetadataError, f"put(content_type={content_type!r})"):
            await self.put(module, b"x", "meta/bad-type", content_type=content_type)
        if module.capabilities().get("named_keys"):
            assert not await module.available(self.k("meta/bad-type")), (
                f"put(content_type={content_type!r}) failed: expected nothing stored, got an object"
            )

    async def test_delete(self, module: StorageModule) -> None:
        self.require(module, "delete")
        handle = await self.put(module, b"bye", "delete/obj")
        await module.delete(handle)
        available = await module.available(handle)
        assert not available, f"available() after delete(): expected False, got {available!r}"
        with expect_error(NotFoundError, "stat() after delete()"):
            await module.stat(handle)

    async def test_delete_missing_is_not_an_error(self, module: StorageModule) -> None:
        self.require(module, "delete")
        await module.delete(await self.unknown_handle(module))

    async def test_delete_twice(self, module: StorageModule) -> None:
        self.require(module, "delete")
        handle = await self.put(module, b"bye", "delete/twice")
        await module.delete(handle)
        await module.delete(handle)
        available = await module.available(handle)
        assert not available, f"available() after deleting twice: expected False, got {available!r}"

    async def test_delete_leaves_siblings(self, module: StorageModule) -> None:
        self.require(module, "delete")
        keep = await self.put(module, b"keep", "delete/dir/keep")
        gone = await self.put(module, b"gone", "delete/dir/gone")
        await module.delete(gone)
        expect_bytes(await self.read_all(module, keep), b"keep", "the sibling of a deleted object")

    async def test_copy_to_a_key(self, module: StorageModule) -> None:
        self.require(module, "writable")
        self.require(module, "named_keys")
        source = await self.put(
            module, b"copy me", "copy/src", metadata={"m": "1"}, content_type="text/plain"
        )
        target = await module.copy(source, key=self.k("copy/dst"))
        assert target == self.k("copy/dst"), (
            f"copy(key=...): expected the key {self.k('copy/dst')!r} as the handle, "
            f"got {show(target)}"
        )
        expect_bytes(await self.read_all(module, target), b"copy me", "the copy")
        expect_bytes(await self.read_all(module, source), b"copy me", "the source after copy()")
        if module.capabilities().get("metadata"):
            info = await module.stat(target)
            assert dict(info.metadata) == {"m": "1"}, (
                f"stat().metadata of a copy: expected the source's, {{'m': '1'}}, "
                f"got {dict(info.metadata)!r}"
            )
            assert info.content_type == "text/plain", (
                f"stat().content_type of a copy: expected the source's, 'text/plain', "
                f"got {info.content_type!r}"
            )

    async def test_copy_without_key(self, module: StorageModule) -> None:
        self.require(module, "writable")
        source = await self.put(module, b"copy me too", "copy/src2")
        target = await module.copy(source)
        assert target != source, f"copy() without a key: expected a new handle, got {target!r}"
        expect_bytes(await self.read_all(module, target), b"copy me too", "the copy")

    async def test_copy_overwrites_the_target(self, module: StorageModule) -> None:
        self.require(module, "writable")
        self.require(module, "named_keys")
        source = await self.put(module, b"new", "copy/src3")
        await self.put(module, b"old and longer", "copy/dst3")
        await module.copy(source, key=self.k("copy/dst3"))
        expect_bytes(
            await self.read_all(module, self.k("copy/dst3")), b"new", "a copy over an object"
        )

    async def test_copy_large_object(self, module: StorageModule) -> None:
        self.require(module, "writable")
        data = self.pattern(self.large_object_size, seed=10)
        source = await self.put(module, data, "copy/large")
        target = await module.copy(source)
        expect_bytes(await self.read_all(module, target), data, "the copy of a large object")

    @pytest.mark.parametrize("operation", ["get_read_stream", "stat", "get_size", "copy"])
    async def test_unknown_handle_raises_not_found(
        self, module: StorageModule, operation: str
    ) -> None:
        if operation == "copy":
            self.require(module, "writable")
        handle = await self.unknown_handle(module)
        with expect_error(NotFoundError, f"{operation}() of an unknown handle") as caught:
            await getattr(module, operation)(handle)
        error = caught.value
        assert isinstance(error, FileNotFoundError) and isinstance(error, StorageError), (
            f"{operation}() of an unknown handle: expected asyncstore's NotFoundError, got "
            f"{type(error).__mro__}"
        )
        assert handle in str(error), (
            f"{operation}() of an unknown handle: expected a message naming the handle "
            f"{handle!r}, got {str(error)!r}"
        )

    async def test_unknown_handle_is_not_available(self, module: StorageModule) -> None:
        handle = await self.unknown_handle(module)
        available = await module.available(handle)
        assert available is False, (
            f"available() of the unknown handle {handle!r}: expected False, got {available!r}"
        )

    @pytest.mark.parametrize("key", INVALID_KEYS, ids=lambda key: repr(key)[:24])
    async def test_invalid_keys_are_rejected_before_io(
        self, module: StorageModule, key: Any
    ) -> None:
        self.require(module, "named_keys")
        operations: list[tuple[str, Callable[[], Awaitable[object]]]] = [
            ("put(key=...)", lambda: module.put(b"x", key=key)),
            ("stat()", lambda: module.stat(key)),
            ("get_read_stream()", lambda: module.get_read_stream(key)),
            ("get_size()", lambda: module.get_size(key)),
            ("available()", lambda: module.available(key)),
        ]
        if self.supports(module, "assign"):
            operations.append(("assign()", lambda: module.assign(key, b"x")))
        if self.supports(module, "delete"):
            operations.append(("delete()", lambda: module.delete(key)))
        for name, operation in operations:
            with expect_error(InvalidKeyError, f"{name} with the invalid key {key!r}"):
                await operation()
        if module.capabilities().get("list"):
            listed = [info.handle async for info in module.list(self.key_prefix)]
            assert listed == [], (
                f"list() after calls with the invalid key {key!r}: expected nothing stored, "
                f"got {listed!r}"
            )

    async def test_invalid_key_error_is_a_value_error(self, module: StorageModule) -> None:
        self.require(module, "named_keys")
        with expect_error(ValueError, "put(key='a/../b')", match=r"\.\."):
            await module.put(b"x", key="a/../b")

    async def test_statistics_shape(self, module: StorageModule) -> None:
        await self.put(module, b"12345", "stats/obj")
        stats = await module.statistics()
        json.dumps(stats)
        capacity = stats.get("capacity")
        assert isinstance(capacity, dict) and set(capacity) >= {"total", "used", "free"}, (
            f"statistics()['capacity']: expected a dict with 'total', 'used' and 'free', "
            f"got {capacity!r}"
        )
        for name, value in capacity.items():
            assert value is None or (isinstance(value, int) and value >= 0), (
                f"statistics()['capacity'][{name!r}]: expected bytes as an int >= 0 or None, "
                f"got {value!r}"
            )

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
            assert isinstance(capabilities.get(name), bool), (
                f"capabilities()[{name!r}]: expected True or False, got {capabilities.get(name)!r}"
            )
        for name in PRESUMED:
            value = capabilities.get(name, True)
            assert isinstance(value, bool), (
                f"capabilities()[{name!r}]: expected True or False (or absent), got {value!r}"
            )
        limit = capabilities.get("max_object_size")
        assert limit is None or isinstance(limit, int), (
            f"capabilities()['max_object_size']: expected an int or None, got {limit!r}"
        )
        key_limit = capabilities.get("max_key_bytes", 1024)
        assert isinstance(key_limit, int) and 0 < key_limit <= 1024, (
            f"capabilities()['max_key_bytes']: expected an int from 1 to 1024, got {key_limit!r}"
        )
        order = capabilities.get("list_order", "lexicographic")
        assert order in ("lexicographic", "tree"), (
            f"capabilities()['list_order']: expected 'lexicographic' or 'tree', got {order!r}"
        )
        again = module.capabilities()
        assert again == capabilities, (
            f"capabilities() called twice: expected the same dict, got {capabilities!r} "
            f"then {again!r}"
        )

    async def test_async_context_manager_and_aclose(self, module: StorageModule) -> None:
        async with module as entered:
            assert entered is module, (
                f"async with module: expected the module itself, got {show(entered)}"
            )
        await module.aclose()  # closing again is harmless
