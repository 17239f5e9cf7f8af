"""The contract's conditions: validation, refusal by capability, modules that predate them."""

from __future__ import annotations

import json
import pickle
from typing import Any

import pytest

from asyncstore import (
    Handle,
    InvalidConditionError,
    ObjectInfo,
    ReadStream,
    StorageError,
    StorageModule,
    UnsupportedError,
    check_conditions,
)
from asyncstore.memory import MemoryModule
from asyncstore.streams import BytesReadStream

pytestmark = pytest.mark.anyio


class OldStyleModule(StorageModule):
    """A module written before conditions existed: its methods take no condition keywords."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self.calls: list[str] = []

    async def assign(  # type: ignore[override]
        self, handle: str, source: Any, *, metadata: Any = None, content_type: Any = None
    ) -> None:
        self.calls.append("assign")
        self.objects[handle] = bytes(source)

    async def get_read_stream(  # type: ignore[override]
        self, handle: str, *, start: int = 0, end: int | None = None
    ) -> ReadStream:
        data = self.objects[handle]
        return BytesReadStream(data, ObjectInfo(handle, len(data)), start=start, end=end)

    async def stat(self, handle: str) -> ObjectInfo:
        return ObjectInfo(handle, len(self.objects[handle]))

    async def delete(self, handle: str) -> None:  # type: ignore[override]
        self.calls.append("delete")
        self.objects.pop(handle, None)


class SilentModule(OldStyleModule):
    """Accepts any keyword (and would ignore conditions) but declares none."""

    async def assign(self, handle: str, source: Any, **options: Any) -> None:  # type: ignore[override]
        self.calls.append("assign")
        self.objects[handle] = bytes(source)


async def test_a_module_without_condition_keywords_refuses_conditions() -> None:
    module = OldStyleModule()
    assert not any(module.capabilities()[name] for name in _CONDITIONS)
    handle = await module.put(b"plain", key="k")
    assert handle == "k" and module.objects == {"k": b"plain"}
    with pytest.raises(UnsupportedError, match="conditional_create"):
        await module.put(b"x", key="k", overwrite=False)
    with pytest.raises(UnsupportedError, match="conditions on assign"):
        await module.assign("k", b"x", if_match="e")
    with pytest.raises(UnsupportedError, match="conditions on delete"):
        await module.delete("k", if_match="e")
    with pytest.raises(UnsupportedError, match="conditions on get_read_stream"):
        await module.get_read_stream("k", if_match="e")
    await module.delete("k", if_match=None)  # no condition: passed straight through
    assert module.objects == {} and module.calls == ["assign", "delete"]


async def test_a_condition_is_refused_before_the_module_is_called() -> None:
    module = SilentModule()
    with pytest.raises(UnsupportedError):
        await module.put(b"x", key="k", if_match="e")
    with pytest.raises(UnsupportedError):
        await module.copy("k", key="k2", overwrite=False)
    assert module.calls == [] and module.objects == {}


@pytest.mark.parametrize(
    ("overwrite", "if_match", "message"),
    [
        (False, "etag", "cannot be combined"),
        (True, "", "non-empty"),
        (True, b"etag", "non-empty"),
        (0, None, "True or False"),
    ],
)
def test_malformed_conditions(overwrite: Any, if_match: Any, message: str) -> None:
    with pytest.raises(InvalidConditionError, match=message) as caught:
        check_conditions(overwrite, if_match, store="s")
    assert isinstance(caught.value, ValueError) and isinstance(caught.value, StorageError)


async def test_put_returns_a_handle_with_the_etag() -> None:
    async with MemoryModule() as store:
        handle = await store.put(b"data", key="a/b")
        assert isinstance(handle, Handle) and isinstance(handle, str)
        assert handle == "a/b" and {handle: 1} == {"a/b": 1}
        assert handle.etag == (await store.stat("a/b")).etag
        assert json.dumps(handle) == '"a/b"'
        copy = pickle.loads(pickle.dumps(handle))
        assert copy == "a/b" and copy.etag == handle.etag
        assert repr(handle) == "'a/b'"


_CONDITIONS = (
    "conditional_create",
    "conditional_replace",
    "conditional_delete",
    "conditional_read",
)
