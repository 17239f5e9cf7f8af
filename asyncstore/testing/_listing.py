"""Conformance checks for listing: order, prefixes, pagination, consistency."""

from __future__ import annotations

import anyio
import pytest

from asyncstore.errors import InvalidKeyError
from asyncstore.module import StorageModule
from asyncstore.testing._base import SuiteBase, expect_error

LIST_ORDERS = {
    "lexicographic": lambda key: key,
    # Each directory's entries sorted by name, a directory's own entries right after its name.
    "tree": lambda key: key.split("/"),
}
"""How listed keys are sorted, by the ``list_order`` capability a module declares."""

KEYS = ["a", "a-b", "a.b", "a/b", "a/b/c", "a/bc", "a0", "B", "b", "b/é", "b/z", "é", "~"]


class ListTests(SuiteBase):
    """Checks of `list`."""

    async def _populate(self, module: StorageModule, keys: list[str] = KEYS) -> None:
        self.require(module, "list")
        self.require(module, "named_keys")
        for index, key in enumerate(keys):
            # A key cannot be both an object and a "directory" on every backend, so the
            # suite never stores "a" next to "a/b" in one store: it uses distinct roots.
            await self.put(module, self.pattern(index + 1, seed=index), f"{index:02d}/{key}")

    async def _keys(self, module: StorageModule, prefix: str = "") -> list[str]:
        return [info.handle async for info in module.list(self.k(prefix))]

    async def test_list_is_in_lexicographic_order(self, module: StorageModule) -> None:
        self.require(module, "list")
        self.require(module, "named_keys")
        keys = ["a-b", "a.b", "a/b", "a/bc", "a0/x", "B", "b/z", "b/é", "é", "~", "a/b0", "Z"]
        for key in reversed(keys):
            await self.put(module, b"x", f"order/{key}")

        order = LIST_ORDERS[module.capabilities().get("list_order", "lexicographic")]

        async def check() -> None:
            listed = await self._keys(module, "order/")
            expected = sorted((self.k(f"order/{key}") for key in keys), key=order)
            assert listed == expected, (
                f"list('order/'): expected the keys in the declared list_order, {expected}, "
                f"got {listed}"
            )

        await self.eventually(check)

    async def test_list_sizes_and_handles(self, module: StorageModule) -> None:
        self.require(module, "list")
        self.require(module, "named_keys")
        await self.put(module, b"123", "sizes/three")
        await self.put(module, b"", "sizes/zero")

        async def check() -> None:
            infos = [info async for info in module.list(self.k("sizes/"))]
            got = [(i.handle, i.size) for i in infos]
            expected = [(self.k("sizes/three"), 3), (self.k("sizes/zero"), 0)]
            assert got == expected, (
                f"list('sizes/') as (handle, size): expected {expected}, got {got}"
            )

        await self.eventually(check)

    async def test_list_prefix_filters(self, module: StorageModule) -> None:
        self.require(module, "list")
        self.require(module, "named_keys")
        for key in ["p/a/1", "p/a/2", "p/ab", "p/b/1", "q/a"]:
            await self.put(module, b"x", key)

        async def check() -> None:
            for prefix, keys in [
                ("p/a/", ["p/a/1", "p/a/2"]),
                ("p/a", ["p/a/1", "p/a/2", "p/ab"]),
                ("p/", ["p/a/1", "p/a/2", "p/ab", "p/b/1"]),
            ]:
                listed = await self._keys(module, prefix)
                expected = [self.k(key) for key in keys]
                assert listed == expected, (
                    f"list({prefix!r}): expected every key starting with it, {expected}, "
                    f"got {listed}"
                )

        await self.eventually(check)

    async def test_list_with_unmatched_prefix_is_empty(self, module: StorageModule) -> None:
        self.require(module, "list")
        await self.put(module, b"x", "present")
        for prefix in ("absent/", "presentx"):
            listed = await self._keys(module, prefix)
            assert listed == [], f"list({prefix!r}): expected nothing, got {listed}"

    async def test_list_everything(self, module: StorageModule) -> None:
        self.require(module, "list")
        self.require(module, "named_keys")
        await self.put(module, b"1", "all/one")
        await self.put(module, b"2", "all/two")

        async def check() -> None:
            listed = await self._keys(module)
            expected = [self.k("all/one"), self.k("all/two")]
            assert listed == expected, f"list(): expected {expected}, got {listed}"

        await self.eventually(check)

    async def test_list_skips_deleted_objects(self, module: StorageModule) -> None:
        self.require(module, "list")
        self.require(module, "named_keys")
        self.require(module, "delete")
        await self.put(module, b"1", "del/keep")
        gone = await self.put(module, b"2", "del/gone")
        await module.delete(gone)

        async def check() -> None:
            listed = await self._keys(module, "del/")
            assert listed == [self.k("del/keep")], (
                f"list('del/') after deleting {gone!r}: expected only {self.k('del/keep')!r}, "
                f"got {listed}"
            )

        await self.eventually(check)

    async def test_list_skips_unassigned_handles(self, module: StorageModule) -> None:
        self.require(module, "list")
        self.require(module, "new_data")
        handle = await module.new_data()
        listed = await self._keys(module)
        assert listed == [], (
            f"list() after new_data() ({handle!r}, never assigned): expected nothing, got {listed}"
        )

    async def test_list_skips_failed_puts(self, module: StorageModule) -> None:
        self.require(module, "writable")
        self.require(module, "list")
        self.require(module, "named_keys")
        self.require(module, "atomic_writes")

        async def broken() -> object:
            yield b"partial"
            raise RuntimeError("broken source")

        with expect_error(RuntimeError, "put() from a source that fails"):
            await self.put(module, broken(), "failed/obj")
        listed = await self._keys(module)
        assert listed == [], f"list() after a failed put(): expected nothing, got {listed}"

    async def test_list_paginates_beyond_one_thousand(self, module: StorageModule) -> None:
        self.require(module, "list")
        self.require(module, "named_keys")
        count = self.list_page_objects
        limiter = anyio.CapacityLimiter(self.concurrency)

        async def one(index: int) -> None:
            async with limiter:
                await self.put(module, b"", f"page/{index:05d}")

        async with anyio.create_task_group() as group:
            for index in range(count):
                group.start_soon(one, index)

        async def check() -> None:
            listed = await self._keys(module, "page/")
            expected = [self.k(f"page/{index:05d}") for index in range(count)]
            if listed != expected:
                missing = sorted(set(expected) - set(listed))
                raise AssertionError(
                    f"list('page/') of {count} objects: expected all of them in order, got "
                    f"{len(listed)}, {len(missing)} missing (first {missing[:3]}), "
                    f"{'in order' if listed == sorted(listed) else 'out of order'}"
                )

        await self.eventually(check)

    @pytest.mark.parametrize("prefix", ["/abs", "a//b", "../x", "a/../", "nul\x00"])
    async def test_list_rejects_invalid_prefixes(self, module: StorageModule, prefix: str) -> None:
        self.require(module, "list")
        with expect_error(InvalidKeyError, f"list({prefix!r})"):
            [info async for info in module.list(self.k(prefix) if prefix[0] != "/" else prefix)]
