"""Legacy modules lacking optional methods: capabilities say so, the suite skips exactly that."""

from __future__ import annotations

import io
import itertools

import pytest

from asyncstore import ConfigError, NotFoundError, UnsupportedError
from asyncstore.registry import Registry
from asyncstore.sync import LegacyModule, from_sync_module, legacy_module_class
from asyncstore.sync._legacy_described import OPTIONAL_METHODS
from asyncstore.testing import StorageModuleTests
from tests.sync.legacy_methods import CAPACITY, GUIDE, SIX, legacy_class

pytestmark = pytest.mark.anyio

COMBINATIONS = [frozenset(c) for n in range(len(SIX) + 1) for c in itertools.combinations(SIX, n)]


def _name(missing: frozenset[str]) -> str:
    return "+".join(sorted(missing)) or "none"


async def _read(module: LegacyModule, handle: str) -> bytes:
    async with await module.get_read_stream(handle) as stream:
        return await stream.read()


@pytest.mark.parametrize("missing", COMBINATIONS, ids=_name)
async def test_every_combination_declares_what_it_lacks(missing: frozenset[str]) -> None:
    cls = legacy_class(missing)
    module = from_sync_module(cls())
    capabilities = module.capabilities()
    for method in ("new_data", "assign", "delete"):
        assert capabilities[method] is (method not in missing), method
    assert capabilities["legacy_missing"] == [m for m in OPTIONAL_METHODS if m in missing]
    assert capabilities["cdmi_encryption"] == []
    # The registry's view, from the class alone, agrees.
    described = legacy_module_class(cls).class_capabilities()
    for name in ("new_data", "assign", "delete", "legacy_missing"):
        assert described[name] == capabilities[name], name

    # Whatever is declared works; whatever is not raises UnsupportedError and changes nothing.
    handle = await module.put(b"first")
    assert await _read(module, handle) == b"first"
    assert await module.get_size(handle) == 5
    assert (await module.stat(handle)).size == 5
    assert await module.available(handle)
    stats = await module.statistics()
    if "statistics" in missing:
        assert stats == {"capacity": {"total": None, "used": None, "free": None}}
    else:
        assert stats["capacity"] == {"total": CAPACITY, "used": 5, "free": CAPACITY - 5}

    if capabilities["new_data"]:
        fresh = await module.new_data()
        assert not await module.available(fresh)
    else:
        with pytest.raises(UnsupportedError, match="new_data"):
            await module.new_data()
        fresh = handle
    if capabilities["assign"]:
        await module.assign(fresh, b"second")
        assert await _read(module, fresh) == b"second"
    else:
        with pytest.raises(UnsupportedError, match="assign"):
            await module.assign(fresh, b"second")
        assert await _read(module, handle) == b"first"
    if capabilities["delete"]:
        await module.delete(handle)
        assert not await module.available(handle)
        with pytest.raises(NotFoundError):
            await module.stat(handle)
        await module.delete(handle)  # idempotent
    else:
        with pytest.raises(UnsupportedError, match="delete"):
            await module.delete(handle)
        assert await module.available(handle)
    await module.aclose()


async def test_without_put_new_data_and_assign_store() -> None:
    module = from_sync_module(legacy_class({"put"})())
    assert module.capabilities()["legacy_missing"] == ["put"]
    handle = await module.put(b"via new_data and assign")
    assert await _read(module, handle) == b"via new_data and assign"


@pytest.mark.parametrize("missing", [{"put", "new_data"}, {"put", "assign"}], ids=_name)
def test_without_put_both_new_data_and_assign_are_needed(missing: set[str]) -> None:
    with pytest.raises(TypeError, match=r"put\(context, stream\) or both new_data"):
        from_sync_module(legacy_class(missing)())


async def test_without_get_size_a_seekable_stream_is_opened_once() -> None:
    opened = []

    class Counting(legacy_class({"get_size"})):  # type: ignore[misc]
        def get_read_stream(self, context, module_data):
            opened.append(module_data)
            return super().get_read_stream(context, module_data)

    module = from_sync_module(Counting())
    handle = await module.put(bytes(range(100)))
    async with await module.get_read_stream(handle, start=90) as stream:
        assert stream.size == 10
        assert await stream.read() == bytes(range(90, 100))
    assert len(opened) == 1


class _SeekReturnsNothing:
    """A legacy stream with only read, seek and close, whose seek returns None."""

    def __init__(self, data: bytes) -> None:
        self._file = io.BytesIO(data)

    def read(self, n: int = -1) -> bytes:
        return self._file.read(n)

    def seek(self, offset: int, whence: int = 0) -> None:
        self._file.seek(offset, whence)

    def close(self) -> None:
        self._file.close()


@pytest.mark.parametrize("data", [b"", b"0123456789"], ids=["empty", "ten"])
async def test_a_stream_whose_seek_returns_nothing_is_measured(data: bytes) -> None:
    class Legacy(legacy_class(GUIDE)):  # type: ignore[misc]
        def get_read_stream(self, context, module_data):
            return _SeekReturnsNothing(super().get_read_stream(context, module_data).read())

    module = from_sync_module(Legacy())
    handle = await module.put(data)
    assert await module.get_size(handle) == len(data)
    async with await module.get_read_stream(handle, start=3) as stream:
        assert await stream.read() == data[3:]


class _Entry:
    def __init__(self, name: str, target: object) -> None:
        self.name, self.value, self._target = name, f"tests:{name}", target

    def load(self) -> object:
        return self._target


def test_a_kwargs_constructor_takes_any_option_and_reports_missing_ones() -> None:
    class Configured(legacy_class(GUIDE)):  # type: ignore[misc]
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.root = kwargs["root"]
            if kwargs.get("chunk", "1") == "0":
                raise ValueError("chunk must be positive")

    registry = Registry([_Entry("old", legacy_module_class(Configured))])
    module = registry.create("old", {"root": "/srv", "level": "3"})
    assert isinstance(module, LegacyModule)
    assert module.legacy.options == {"root": "/srv", "level": "3"}  # type: ignore[attr-defined]
    with pytest.raises(ConfigError, match="missing required option 'root'") as missing:
        registry.create("old", {})
    assert isinstance(missing.value.__cause__, KeyError)
    with pytest.raises(ConfigError, match="ValueError: chunk must be positive"):
        registry.create("old", {"root": "/srv", "chunk": "0"})
    described = registry.describe("old")
    assert described.capabilities["new_data"] is False
    assert described.capabilities["legacy_missing"] == ["new_data", "assign", "get_size"]


REMOVED = {
    **{f"without-{name}": frozenset({name}) for name in (*SIX, "put", "capabilities")},
    "the-guide's-seven-methods": GUIDE,
    "put-and-get_read_stream-only": frozenset(OPTIONAL_METHODS) - {"put"},
}


class TestLegacyWithoutOptionalMethods(StorageModuleTests):
    """The whole suite through the adapter, over modules lacking optional methods."""

    @pytest.fixture(params=sorted(REMOVED))
    async def module(self, request: pytest.FixtureRequest):
        missing = REMOVED[request.param]
        async with from_sync_module(legacy_class(missing)()) as module:
            assert set(module.capabilities()["legacy_missing"]) == missing
            yield module
