"""Conformance checks for conditional writes, deletes and reads.

Each check runs only where ``capabilities()`` declares the condition (``conditional_create``,
``conditional_replace``, ``conditional_delete``, ``conditional_read``); a module that declares
one absent must refuse it with `UnsupportedError` before storing anything, which is checked too.
"""

from __future__ import annotations

from typing import Any, ClassVar

import anyio
import anyio.lowlevel
import pytest

from asyncstore.errors import (
    AlreadyExistsError,
    InvalidConditionError,
    NotFoundError,
    PreconditionFailedError,
    UnsupportedError,
)
from asyncstore.module import StorageModule
from asyncstore.testing._base import SuiteBase


class ConditionTests(SuiteBase):
    """Checks of ``overwrite=False`` and ``if_match`` on writes, deletes and reads.

    Knobs:
        create_racers: How many tasks race to create one key.
        cas_workers: How many tasks increment one counter by compare-and-swap.
        cas_increments: How many increments each of them makes.
    """

    create_racers: ClassVar[int] = 20
    cas_workers: ClassVar[int] = 8
    cas_increments: ClassVar[int] = 25

    async def _state(self, module: StorageModule, key: str) -> tuple[bytes, dict[str, str]]:
        info = await module.stat(key)
        return await self.read_all(module, key), dict(info.metadata)

    # ---- what every module does --------------------------------------------------------

    async def test_put_reports_the_stored_etag(self, module: StorageModule) -> None:
        self.require(module, "writable")
        handle = await self.put(module, b"tagged", "cond/tagged")
        etag = getattr(handle, "etag", None)
        if etag is not None:
            stat_etag = (await module.stat(handle)).etag
            assert etag == stat_etag, (
                f"put() returned a handle with etag {etag!r}, but stat() reports {stat_etag!r}"
            )

    async def test_contradictory_conditions_are_refused_before_io(
        self, module: StorageModule
    ) -> None:
        self.require(module, "named_keys")
        bad: list[dict[str, Any]] = [
            {"overwrite": False, "if_match": "x"},
            {"if_match": ""},
            {"if_match": 5},
            {"overwrite": "no"},
        ]
        for conditions in bad:
            with pytest.raises(InvalidConditionError):
                await module.put(b"x", key=self.k("cond/bad"), **conditions)
        assert not await module.available(self.k("cond/bad")), "a refused put stored an object"

    async def test_undeclared_conditions_are_refused(self, module: StorageModule) -> None:
        self.require(module, "writable")
        self.require(module, "named_keys")
        caps = module.capabilities()
        key = self.k("cond/undeclared")
        if not caps.get("conditional_create"):
            with pytest.raises(UnsupportedError):
                await module.put(b"x", key=key, overwrite=False)
        if not caps.get("conditional_replace"):
            with pytest.raises(UnsupportedError):
                await module.put(b"x", key=key, if_match="some-etag")
        assert not await module.available(key), "a refused conditional put stored an object"
        await self.put(module, b"kept", "cond/undeclared")
        if not caps.get("conditional_delete"):
            with pytest.raises(UnsupportedError):
                await module.delete(key, if_match="some-etag")
        if not caps.get("conditional_read"):
            with pytest.raises(UnsupportedError):
                await module.get_read_stream(key, if_match="some-etag")
        assert await self.read_all(module, key) == b"kept"

    # ---- create-only -------------------------------------------------------------------

    async def test_create_only_stores_when_absent(self, module: StorageModule) -> None:
        self.require(module, "named_keys")
        self.require(module, "conditional_create")
        handle = await self.put(module, b"first", "cond/new", overwrite=False)
        assert await self.read_all(module, handle) == b"first"

    async def test_create_only_keeps_an_existing_object(self, module: StorageModule) -> None:
        self.require(module, "named_keys")
        self.require(module, "conditional_create")
        key = self.k("cond/exists")
        await module.put(b"original", key=key, metadata={"v": "1"}, content_type="text/plain")
        with pytest.raises(AlreadyExistsError):
            await module.put(b"intruder", key=key, metadata={"v": "2"}, overwrite=False)
        with pytest.raises(AlreadyExistsError):
            await module.assign(key, self.chunks(b"intruder", 3), overwrite=False)
        assert await self._state(module, key) == (b"original", {"v": "1"}), (
            "a create-only write that failed changed the object"
        )

    async def test_create_only_of_a_large_object(self, module: StorageModule) -> None:
        self.require(module, "named_keys")
        self.require(module, "conditional_create")
        key = self.k("cond/large")
        data = self.pattern(self.large_object_size, seed=21)
        await module.put(self.chunks(data, 1 << 20), key=key, overwrite=False)
        with pytest.raises(AlreadyExistsError):
            await module.put(self.chunks(data[::-1], 1 << 20), key=key, overwrite=False)
        assert await self.read_all(module, key) == data

    async def test_concurrent_creates_have_one_winner(self, module: StorageModule) -> None:
        self.require(module, "named_keys")
        self.require(module, "conditional_create")
        key = self.k("cond/race")
        winners: list[bytes] = []
        losers: list[BaseException] = []

        async def create(index: int) -> None:
            data = f"writer {index:02d} ".encode() * (100 + index)
            try:
                await module.put(self.chunks(data, 512), key=key, overwrite=False)
            except AlreadyExistsError as exc:
                losers.append(exc)
            else:
                winners.append(data)

        async with anyio.create_task_group() as group:
            for index in range(self.create_racers):
                group.start_soon(create, index)
        assert len(winners) == 1, (
            f"{len(winners)} of {self.create_racers} create-only writers of one key succeeded"
        )
        assert len(losers) == self.create_racers - 1
        assert await self.read_all(module, key) == winners[0], "the object is not the winner's"

    async def test_create_only_copy(self, module: StorageModule) -> None:
        self.require(module, "named_keys")
        self.require(module, "conditional_create")
        source = await self.put(module, b"source", "cond/copy-src")
        target = self.k("cond/copy-dst")
        await module.copy(source, key=target, overwrite=False)
        assert await self.read_all(module, target) == b"source"
        await module.put(b"changed", key=source)
        with pytest.raises(AlreadyExistsError):
            await module.copy(source, key=target, overwrite=False)
        assert await self.read_all(module, target) == b"source"

    # ---- compare-and-swap --------------------------------------------------------------

    async def test_if_match_replaces_only_that_version(self, module: StorageModule) -> None:
        self.require(module, "named_keys")
        self.require(module, "conditional_replace")
        key = self.k("cond/cas")
        await module.put(b"v1", key=key, metadata={"v": "1"})
        first = (await module.stat(key)).etag
        assert first, "a module that offers if_match must report an etag in stat()"
        await module.put(b"v2", key=key, metadata={"v": "2"}, if_match=first)
        second = (await module.stat(key)).etag
        assert second != first, "the etag did not change when the content did"
        with pytest.raises(PreconditionFailedError):
            await module.put(b"v3", key=key, metadata={"v": "3"}, if_match=first)
        with pytest.raises(PreconditionFailedError):
            await module.assign(key, self.chunks(b"v3", 1), if_match=first)
        assert await self._state(module, key) == (b"v2", {"v": "2"}), (
            "a compare-and-swap that failed changed the object"
        )

    async def test_if_match_on_a_missing_object(self, module: StorageModule) -> None:
        self.require(module, "named_keys")
        self.require(module, "conditional_replace")
        key = self.k("cond/cas-missing")
        with pytest.raises(PreconditionFailedError):
            await module.put(b"x", key=key, if_match="0123456789abcdef")
        assert not await module.available(key), "a failed compare-and-swap stored an object"

    async def test_if_match_copy(self, module: StorageModule) -> None:
        self.require(module, "named_keys")
        self.require(module, "conditional_replace")
        source = await self.put(module, b"new content", "cond/cas-copy-src")
        target = self.k("cond/cas-copy-dst")
        await module.put(b"old content", key=target)
        etag = (await module.stat(target)).etag
        assert etag
        with pytest.raises(PreconditionFailedError):
            await module.copy(source, key=target, if_match=etag + "-not")
        await module.copy(source, key=target, if_match=etag)
        assert await self.read_all(module, target) == b"new content"

    async def test_compare_and_swap_loses_no_update(self, module: StorageModule) -> None:
        self.require(module, "named_keys")
        self.require(module, "conditional_replace")
        key = self.k("cond/counter")
        await module.put(b"0", key=key)
        conflicts = 0

        async def increment() -> None:
            nonlocal conflicts
            for _ in range(self.cas_increments):
                while True:
                    async with await module.get_read_stream(key) as stream:
                        value = int(await stream.read())
                        etag = stream.info.etag
                    assert etag, "a stream of a module that offers if_match must carry the etag"
                    await anyio.lowlevel.checkpoint()  # let the others read the same version
                    try:
                        await module.put(str(value + 1).encode(), key=key, if_match=etag)
                    except PreconditionFailedError:
                        conflicts += 1
                        continue
                    break

        async with anyio.create_task_group() as group:
            for _ in range(self.cas_workers):
                group.start_soon(increment)
        expected = self.cas_workers * self.cas_increments
        final = int(await self.read_all(module, key))
        assert final == expected, (
            f"{self.cas_workers} workers each added {self.cas_increments} by compare-and-swap: "
            f"expected {expected}, found {final} ({conflicts} conflicts retried)"
        )

    # ---- conditional deletes and reads -------------------------------------------------

    async def test_conditional_delete(self, module: StorageModule) -> None:
        self.require(module, "named_keys")
        self.require(module, "conditional_delete")
        key = self.k("cond/delete")
        await module.put(b"v1", key=key)
        old = (await module.stat(key)).etag
        assert old
        await module.put(b"v2", key=key)
        with pytest.raises(PreconditionFailedError):
            await module.delete(key, if_match=old)
        assert await self.read_all(module, key) == b"v2"
        current = (await module.stat(key)).etag
        assert current
        await module.delete(key, if_match=current)
        assert not await module.available(key)
        with pytest.raises(PreconditionFailedError):
            await module.delete(key, if_match=current)

    async def test_conditional_read(self, module: StorageModule) -> None:
        self.require(module, "named_keys")
        self.require(module, "conditional_read")
        key = await self.put(module, b"version one", "cond/read")
        etag = (await module.stat(key)).etag
        assert etag
        assert await self.read_all(module, key, if_match=etag) == b"version one"
        assert await self.read_all(module, key, start=8, if_match=etag) == b"one"
        with pytest.raises(PreconditionFailedError):
            await module.get_read_stream(key, if_match=etag + "-not")
        await self.put(module, b"version two", "cond/read")
        with pytest.raises(PreconditionFailedError):
            await module.get_read_stream(key, if_match=etag)
        with pytest.raises(NotFoundError):
            await module.get_read_stream(self.k("cond/read-missing"), if_match=etag)

    async def test_a_conditional_stream_never_mixes_versions(self, module: StorageModule) -> None:
        self.require(module, "named_keys")
        self.require(module, "conditional_read")
        old = self.pattern(3 << 20, seed=22)
        key = await self.put(module, old, "cond/read-stream")
        etag = (await module.stat(key)).etag
        assert etag
        parts: list[bytes] = []
        async with await module.get_read_stream(key, if_match=etag) as stream:
            parts.append(await stream.read(1 << 20))
            await self.put(module, self.pattern(3 << 20, seed=23), "cond/read-stream")
            try:
                while chunk := await stream.read(1 << 20):
                    parts.append(chunk)
            except PreconditionFailedError:
                return  # the stream found the object replaced and said so
        # A stream may also go on with the version it opened; then it must be all of it.
        assert b"".join(parts) == old, "a conditional stream returned bytes of two versions"
