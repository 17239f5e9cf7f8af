"""Conformance check of the ``writable`` capability: writes are refused exactly when it is False.

A module that declares ``capabilities()["writable"]`` False (a read-only view) runs the reading
checks over objects its suite stores through the `SuiteBase.seed` hook, skips the writing
checks, and must refuse every write: with `PermissionDeniedError`, before reading the source or
touching anything stored, and say so in its other capabilities too. Every other module must
accept writes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import anyio.lowlevel
import pytest

from asyncstore.errors import PermissionDeniedError
from asyncstore.module import CONDITION_CAPABILITIES, StorageModule
from asyncstore.testing._base import SuiteBase


class ReadOnlyTests(SuiteBase):
    """The check that a module writes, or refuses every write, as its ``writable`` says."""

    async def test_writes_follow_the_writable_capability(self, module: StorageModule) -> None:
        if self.supports(module, "writable"):
            handle = await self.put(module, b"accepted", "writable/accepted")
            assert await self.read_all(module, handle) == b"accepted"
            if self.supports(module, "delete"):
                await module.delete(handle)
            return
        self._check_capabilities_offer_no_writes(module)
        await self._check_every_write_is_refused(module)
        await self._check_no_source_is_read(module)

    @staticmethod
    def _check_capabilities_offer_no_writes(module: StorageModule) -> None:
        capabilities = module.capabilities()
        writes = [name for name in CONDITION_CAPABILITIES if name != "conditional_read"]
        for name in ["new_data", "assign", "delete", *writes]:
            assert capabilities.get(name) is False, f"a read-only module declares {name!r}"

    async def _check_every_write_is_refused(self, module: StorageModule) -> None:
        kept = await self.put(
            module, b"kept", "ro/kept", metadata={"v": "1"}, content_type="text/plain"
        )
        before = await module.stat(kept)
        new_key = self.k("ro/new")
        writes: dict[str, Callable[[], Awaitable[object]]] = {
            "put over an object": lambda: module.put(b"x", key=kept),
            "put to a new key": lambda: module.put(b"x", key=new_key),
            "put without a key": lambda: module.put(b"x"),
            "assign over an object": lambda: module.assign(kept, b"x"),
            "assign to a new key": lambda: module.assign(new_key, b"x"),
            "new_data": lambda: module.new_data(),
            "copy to a new key": lambda: module.copy(kept, key=new_key),
            "copy without a key": lambda: module.copy(kept),
            "copy onto itself": lambda: module.copy(kept, key=kept),
            "delete": lambda: module.delete(kept),
            "delete of a missing object": lambda: module.delete(new_key),
            "cleanup": lambda: module.cleanup(older_than=0),
        }
        if not module.capabilities().get("named_keys"):
            writes = {name: call for name, call in writes.items() if "key" not in name}
        for name, write in writes.items():
            with pytest.raises(PermissionDeniedError) as caught:
                await write()
            assert isinstance(caught.value, PermissionError), name
        after = await module.stat(kept)
        assert (after.size, after.etag, dict(after.metadata), after.content_type) == (
            before.size,
            before.etag,
            dict(before.metadata),
            before.content_type,
        ), "a refused write changed the object"
        assert await self.read_all(module, kept) == b"kept"
        assert not await module.available(new_key), "a refused write stored an object"
        if module.capabilities().get("list"):
            assert [info.handle for info in await self.listing(module, "ro/")] == [kept]
        if module.capabilities().get("presign"):
            with pytest.raises(PermissionDeniedError):
                await module.presign(kept, method="PUT")

    async def _check_no_source_is_read(self, module: StorageModule) -> None:
        pulled: list[bytes] = []

        async def source() -> AsyncIterator[bytes]:
            for chunk in (b"one", b"two"):
                await anyio.lowlevel.checkpoint()
                pulled.append(chunk)
                yield chunk

        key = self.k("ro/source") if module.capabilities().get("named_keys") else None
        with pytest.raises(PermissionDeniedError):
            await module.put(source(), key=key)
        assert pulled == [], "a read-only module read the source of a write it refuses"
