"""Model-based tests: random operation sequences on each module, the memory module as the model.

A Hypothesis state machine runs put (bytes and streamed, failing midway too), new_data +
assign, assign to a key, copy (with and without a key), delete, ranged reads, seeks and reads
on open streams, stat, get_size, available and list on the module under test and on a fresh
`MemoryModule`, and compares every result; errors must match in class. A small key alphabet
makes sequences collide on keys, and its keys sort in the awkward order of ``p-q``, ``p.q``,
``p/q``, ``pq``.

The fs backend cannot store a key that is also a prefix of another (``s`` and ``s/t``); it
raises `AlreadyExistsError`, which its model (`TreeModel`) does too.
"""

from __future__ import annotations

import io
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, ClassVar

import anyio.lowlevel
import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal
from hypothesis import Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, rule, run_state_machine_as_test

from asyncstore.errors import AlreadyExistsError
from asyncstore.info import ObjectInfo
from asyncstore.memory import MemoryModule
from asyncstore.module import StorageModule
from asyncstore.streams import ByteSource, ReadStream, iter_source
from asyncstore.sync import SyncReadStream, SyncStore
from asyncstore.testing import LIST_ORDERS
from tests.reliability.harness import Figures, scaled
from tests.reliability.strategies import RELIABILITY, SourceFailed, clashes, key_problem, pattern
from tests.s3server import Endpoint

SECTION = "Model-based tests"
KEYS = ("p", "p/q", "p/r", "p-q", "p.q", "pq", "s", "s/t", "s/t/u", "s/t-u", "\u00fc/\u00e9")
PREFIXES = ("", "p", "p/", "p-", "p.", "pq", "s", "s/", "s/t", "s/t/", "\u00fc", "q", "0")
KINDS = ("bytes", "bytearray", "memoryview", "chunks", "reader", "failing")
DEFAULT_CONTENT_TYPES = (None, "application/octet-stream", "binary/octet-stream")
# Runs per target (regular, full); every run is up to STEPS rules long.
RUNS = {
    "memory": (40, 1000),
    "fs": (30, 500),
    "s3": (6, 100),
    "sync(fs)": (20, 300),
    "sync(memory)": (20, 300),
}
STEPS = scaled(30, 60)

Outcome = tuple[str, Any]
"""``("ok", value)`` or ``("error", exception class)``."""

data_sizes = st.one_of(
    st.binary(max_size=200),
    # Large enough for the fs backend's streamed writes (256 KiB) and eager reads (64 KiB).
    st.integers(0, 300_000).map(lambda n: pattern(n, seed=n)),
)
metadata = st.dictionaries(
    st.sampled_from(["a", "b-c", "d.e"]), st.sampled_from(["1", "x y", "Z"]), max_size=2
)
content_types = st.sampled_from([None, "text/plain", "image/png; q=1"])
positions = st.one_of(st.integers(0, 300_010), st.sampled_from([0, 1, 199, 200]), st.just(-1))
stream_ops = st.lists(
    st.one_of(
        st.tuples(st.just("seek"), st.integers(-300_010, 300_010), st.sampled_from([0, 1, 2])),
        st.tuples(st.just("seek"), st.integers(-5, 5), st.sampled_from([0, 1, 2])),
        st.tuples(st.just("seek"), st.sampled_from([1.5, 2.0]), st.sampled_from([0, 3])),
        st.tuples(st.just("read"), st.sampled_from([-1, 0, 1, 7, 4096, 70_000])),
        st.just(("tell",)),
    ),
    max_size=8,
)


# ---- the model ----------------------------------------------------------------------------


class TreeModel(MemoryModule):
    """The memory module, optionally with the fs backend's limit that no key is a prefix,
    listing in the order the target declares (``list_order``: SeaweedFS lists as a tree)."""

    def __init__(self, *, tree: bool, list_order: str = "lexicographic") -> None:
        super().__init__()
        self._tree = tree
        self._list_order = list_order

    def list(self, prefix: str = "") -> AsyncIterator[ObjectInfo]:
        return self._in_order(super().list(prefix))

    async def _in_order(self, listing: AsyncIterator[ObjectInfo]) -> AsyncIterator[ObjectInfo]:
        infos = [info async for info in listing]
        for info in sorted(infos, key=lambda info: LIST_ORDERS[self._list_order](info.handle)):
            yield info

    def _check_tree(self, key: str) -> None:
        if self._tree and any(clashes(key, other) for other in self._objects):
            raise AlreadyExistsError("a key cannot also be a prefix here", handle=key)

    async def assign(
        self,
        handle: str,
        source: ByteSource,
        *,
        metadata: Mapping[str, str] | None = None,
        content_type: str | None = None,
    ) -> None:
        # The source is read first: a source that fails is what the caller hears about.
        data = b"".join([bytes(chunk) async for chunk in iter_source(source)])
        self._check_tree(handle)
        await super().assign(handle, data, metadata=metadata, content_type=content_type)

    async def copy(self, handle: str, *, key: str | None = None) -> str:
        await self.stat(handle)
        if key is not None:
            self._check_tree(key)
        return await super().copy(handle, key=key)


# ---- drivers: one blocking interface over async modules and SyncStore ----------------------


def _chunks(data: bytes) -> list[bytes]:
    size = max(1, len(data) // 3)
    return [data[i : i + size] for i in range(0, len(data), size)]


def _sync_source(kind: str, data: bytes) -> object:
    if kind == "bytes":
        return data
    if kind == "bytearray":
        return bytearray(data)
    if kind == "memoryview":
        return memoryview(b"<" + data + b">")[1:-1]
    if kind == "reader":
        return io.BytesIO(data)

    def generate() -> Iterator[bytes]:
        yield from _chunks(data)
        if kind == "failing":
            raise SourceFailed("the source failed midway")

    return generate()


async def _async_chunks(kind: str, data: bytes) -> AsyncIterator[bytes]:
    for chunk in _chunks(data):
        await anyio.lowlevel.checkpoint()
        yield chunk
    if kind == "failing":
        raise SourceFailed("the source failed midway")


def _async_source(kind: str, data: bytes) -> object:
    if kind in ("chunks", "failing"):
        return _async_chunks(kind, data)
    return _sync_source(kind, data)


async def _write(
    module: StorageModule, method: str, kind: str, data: bytes, *args: Any, **kwargs: Any
) -> Any:
    # The source is made here, on the loop that reads it.
    return await getattr(module, method)(*args, _async_source(kind, data), **kwargs)


async def _read(module: StorageModule, handle: str, start: int, end: int | None) -> bytes:
    async with await module.get_read_stream(handle, start=start, end=end) as stream:
        return await stream.read()


async def _run_stream_ops(
    module: StorageModule, handle: str, start: int, end: int | None, ops: list[tuple[Any, ...]]
) -> list[Outcome]:
    async with await module.get_read_stream(handle, start=start, end=end) as stream:
        return [("ok", stream.size)] + [await _stream_op(stream, op) for op in ops]


async def _stream_op(stream: ReadStream, op: tuple[Any, ...]) -> Outcome:
    try:
        if op[0] == "seek":
            return "ok", await stream.seek(op[1], op[2])
        if op[0] == "read":
            return "ok", await _read_exactly(stream.read, op[1])
        return "ok", stream.tell()
    except Exception as exc:
        return "error", type(exc)


async def _read_exactly(read: Callable[[int], Any], n: int) -> bytes:
    # read(n) may return fewer bytes than asked for; only the end may come early.
    if n < 0:
        return bytes(await read(n))
    parts = []
    while n > 0 and (part := await read(n)):
        parts.append(part)
        n -= len(part)
    return b"".join(parts)


async def _listing(module: StorageModule, prefix: str) -> list[tuple[str, int]]:
    return [(info.handle, info.size) async for info in module.list(prefix)]


def _info(info: Any) -> tuple[Any, ...]:
    content_type = None if info.content_type in DEFAULT_CONTENT_TYPES else info.content_type
    return info.handle, info.size, content_type, dict(info.metadata)


class AsyncDriver:
    """Drives an async module from the machine's thread through a blocking portal."""

    def __init__(self, portal: BlockingPortal, module: StorageModule) -> None:
        self.portal = portal
        self.module = module

    def call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return self.portal.call(partial(getattr(self.module, method), *args, **kwargs))

    def write(self, method: str, kind: str, data: bytes, *args: Any, **kwargs: Any) -> Any:
        return self.portal.call(partial(_write, self.module, method, kind, data, *args, **kwargs))

    def read(self, handle: str, start: int, end: int | None) -> bytes:
        return self.portal.call(_read, self.module, handle, start, end)

    def stream_ops(
        self, handle: str, start: int, end: int | None, ops: list[tuple[Any, ...]]
    ) -> list[Outcome]:
        return self.portal.call(_run_stream_ops, self.module, handle, start, end, ops)

    def stat(self, handle: str) -> tuple[Any, ...]:
        return _info(self.call("stat", handle))

    def listing(self, prefix: str) -> list[tuple[str, int]]:
        return self.portal.call(_listing, self.module, prefix)

    def capabilities(self) -> dict[str, Any]:
        return self.module.capabilities()

    def close(self) -> None:
        self.portal.call(self.module.aclose)


class SyncDriver:
    """Drives a `SyncStore` directly: its blocking methods are the interface under test."""

    def __init__(self, store: SyncStore) -> None:
        self.store = store

    def capabilities(self) -> dict[str, Any]:
        return self.store.capabilities()

    def call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return getattr(self.store, method)(*args, **kwargs)

    def write(self, method: str, kind: str, data: bytes, *args: Any, **kwargs: Any) -> Any:
        return getattr(self.store, method)(*args, _sync_source(kind, data), **kwargs)

    def read(self, handle: str, start: int, end: int | None) -> bytes:
        with self.store.get_read_stream(handle, start=start, end=end) as stream:
            return stream.read()

    def stream_ops(
        self, handle: str, start: int, end: int | None, ops: list[tuple[Any, ...]]
    ) -> list[Outcome]:
        with self.store.get_read_stream(handle, start=start, end=end) as stream:
            return [("ok", stream.size)] + [_sync_stream_op(stream, op) for op in ops]

    def stat(self, handle: str) -> tuple[Any, ...]:
        return _info(self.store.stat(handle))

    def listing(self, prefix: str) -> list[tuple[str, int]]:
        with self.store.list(prefix) as listing:
            return [(info.handle, info.size) for info in listing]

    def close(self) -> None:
        self.store.close()


def _sync_stream_op(stream: SyncReadStream, op: tuple[Any, ...]) -> Outcome:
    try:
        if op[0] == "seek":
            return "ok", stream.seek(op[1], op[2])
        if op[0] == "read":
            return "ok", _read_exactly_sync(stream.read, op[1])
        return "ok", stream.tell()
    except Exception as exc:
        return "error", type(exc)


def _read_exactly_sync(read: Callable[[int], bytes], n: int) -> bytes:
    if n < 0:
        return read(n)
    parts = []
    while n > 0 and (part := read(n)):
        parts.append(part)
        n -= len(part)
    return b"".join(parts)


Driver = AsyncDriver | SyncDriver


# ---- the machine --------------------------------------------------------------------------


@dataclass
class Counters:
    """What the runs of one target did, for the report."""

    runs: int = 0
    steps: int = 0
    matched_errors: int = 0
    """Steps where both raised an error of the same class."""
    divergences: int = 0


def _stored(etag: object) -> None:
    """What an assign returned, as compared: its etag is each store's own, never the model's."""
    assert etag is None or isinstance(etag, str)


def outcome(call: Callable[[], Any]) -> Outcome:
    try:
        return "ok", call()
    except Exception as exc:
        return "error", type(exc)


class StoreMachine(RuleBasedStateMachine):
    """Runs the same random operations on a target module and on its memory model."""

    open_target: ClassVar[Callable[[BlockingPortal, int], Driver]]
    tree: ClassVar[bool] = False
    counters: ClassVar[Counters]

    def __init__(self) -> None:
        super().__init__()
        self.counters.runs += 1
        self._portal_context = start_blocking_portal()
        portal = self._portal_context.__enter__()
        self.target = type(self).open_target(portal, self.counters.runs)
        order = self.target.capabilities().get("list_order", "lexicographic")
        self.model = AsyncDriver(portal, TreeModel(tree=self.tree, list_order=order))
        self.made: list[str] = []  # handles the target chose (new_data, put or copy without key)
        self.diverged = False

    # ---- comparison --------------------------------------------------------------------

    def compare(self, label: str, model: Outcome, target: Outcome) -> Outcome:
        if model != target:
            self.counters.divergences += 1
            self.diverged = True
            raise AssertionError(f"{label}: the model gave {model!r}, the target {target!r}")
        self.counters.matched_errors += model[0] == "error"
        return model

    def both(self, label: str, call: Callable[[Driver], Any]) -> Outcome:
        self.counters.steps += 1
        return self.compare(
            label, outcome(lambda: call(self.model)), outcome(lambda: call(self.target))
        )

    def pool(self) -> list[str]:
        return [*KEYS, *self.made]

    def handle(self, data: st.DataObject) -> str:
        return data.draw(st.sampled_from(self.pool()), label="handle")

    def fresh(self, label: str, handle: object, *, stored: bool) -> None:
        """Check a handle the target chose: valid, new, and available only once stored."""
        assert key_problem(handle) is None, f"{label} gave the invalid handle {handle!r}"
        assert handle not in self.pool(), f"{label} gave a handle in use: {handle!r}"
        available = self.target.call("available", handle)
        assert available is stored, f"{label}: available({handle!r}) is {available}"

    # ---- rules -------------------------------------------------------------------------

    @rule(
        key=st.sampled_from(KEYS),
        data=data_sizes,
        kind=st.sampled_from(KINDS),
        meta=metadata,
        content_type=content_types,
    )
    def put(
        self, key: str, data: bytes, kind: str, meta: dict[str, str], content_type: Any
    ) -> None:
        if kind == "failing":
            # Small, so that every module reads all of it before touching storage (which
            # error a conflicting key and a failing source raise first is unspecified).
            data = data[:200]
        options = {"key": key, "metadata": meta, "content_type": content_type}
        self.both(f"put({key!r}, {kind})", lambda d: d.write("put", kind, data, **options))

    @rule(data=data_sizes, kind=st.sampled_from(KINDS[:5]))
    def put_without_key(self, data: bytes, kind: str) -> None:
        self.counters.steps += 1
        target = outcome(lambda: self.target.write("put", kind, data))
        if target[0] == "ok":
            self.fresh("put", target[1], stored=True)
            self.made.append(target[1])
            model = outcome(lambda: self.model.write("put", kind, data, key=target[1]))
        else:
            model = outcome(lambda: self.model.write("put", kind, data))
        self.compare("put without a key", model, target)

    @rule(data=data_sizes, kind=st.sampled_from(KINDS), meta=metadata)
    def new_data_and_assign(self, data: bytes, kind: str, meta: dict[str, str]) -> None:
        self.counters.steps += 1
        handle = self.target.call("new_data")
        self.fresh("new_data", handle, stored=False)
        self.made.append(handle)
        data = data[:200] if kind == "failing" else data
        self.both(
            f"assign({handle!r}, {kind})",
            lambda d: _stored(d.write("assign", kind, data, handle, metadata=meta)),
        )

    @rule(key=st.sampled_from(KEYS), data=data_sizes, content_type=content_types)
    def assign_to_a_key(self, key: str, data: bytes, content_type: Any) -> None:
        self.both(
            f"assign({key!r})",
            lambda d: _stored(d.write("assign", "bytes", data, key, content_type=content_type)),
        )

    @rule(data=st.data(), to_key=st.one_of(st.none(), st.sampled_from(KEYS)))
    def copy(self, data: st.DataObject, to_key: str | None) -> None:
        source = self.handle(data)
        if to_key is not None:
            self.both(
                f"copy({source!r}, key={to_key!r})", lambda d: d.call("copy", source, key=to_key)
            )
            return
        self.counters.steps += 1
        target = outcome(lambda: self.target.call("copy", source))
        if target[0] == "ok":
            self.fresh("copy", target[1], stored=True)
            self.made.append(target[1])
            model = outcome(lambda: self.model.call("copy", source, key=target[1]))
        else:
            model = outcome(lambda: self.model.call("copy", source))
        self.compare(f"copy({source!r})", model, target)

    @rule(data=st.data())
    def delete(self, data: st.DataObject) -> None:
        handle = self.handle(data)
        self.both(f"delete({handle!r})", lambda d: d.call("delete", handle))

    @rule(data=st.data(), start=positions, end=st.one_of(st.none(), positions))
    def read_range(self, data: st.DataObject, start: int, end: int | None) -> None:
        handle = self.handle(data)
        self.both(f"read({handle!r}, {start}, {end})", lambda d: d.read(handle, start, end))

    @rule(data=st.data(), start=positions, end=st.one_of(st.none(), positions), ops=stream_ops)
    def seek_and_read(
        self, data: st.DataObject, start: int, end: int | None, ops: list[tuple[Any, ...]]
    ) -> None:
        handle = self.handle(data)
        label = f"stream({handle!r}, {start}, {end}) {ops}"
        self.both(label, lambda d: d.stream_ops(handle, start, end, ops))

    @rule(data=st.data(), method=st.sampled_from(["stat", "get_size", "available"]))
    def describe(self, data: st.DataObject, method: str) -> None:
        handle = self.handle(data)
        if method == "stat":
            self.both(f"stat({handle!r})", lambda d: d.stat(handle))
        else:
            self.both(f"{method}({handle!r})", lambda d: d.call(method, handle))

    @rule(prefix=st.sampled_from(PREFIXES))
    def list_prefix(self, prefix: str) -> None:
        self.both(f"list({prefix!r})", lambda d: d.listing(prefix))

    def teardown(self) -> None:
        try:
            if self.diverged:
                return  # reported already; the states differ from there on
            self.compare("final listing", outcome(lambda: self.model.listing("")),
                         outcome(lambda: self.target.listing("")))  # fmt: skip
            for handle, _ in self.model.listing(""):
                self.compare(
                    f"final state of {handle!r}",
                    outcome(partial(_state, self.model, handle)),
                    outcome(partial(_state, self.target, handle)),
                )
        finally:
            try:
                self.target.close()
                self.model.close()
            finally:
                self._portal_context.__exit__(None, None, None)


def _state(driver: Driver, handle: str) -> tuple[object, ...]:
    return driver.stat(handle), driver.read(handle, 0, None)


# ---- targets ------------------------------------------------------------------------------


def run_machine(
    figures: Figures, name: str, open_target: Callable[[BlockingPortal, int], Driver], tree: bool
) -> None:
    counters = Counters()
    machine = type(
        f"StoreMachine_{name}",
        (StoreMachine,),
        {"open_target": staticmethod(open_target), "tree": tree, "counters": counters},
    )
    quick, full = RUNS[name.split(" ", 1)[0]]
    started = time.perf_counter()
    try:
        run_state_machine_as_test(
            machine,
            settings=settings(
                RELIABILITY, max_examples=scaled(quick, full), stateful_step_count=STEPS
            ),
        )
    finally:
        figures.add(
            SECTION,
            target=name,
            runs=counters.runs,
            steps=counters.steps,
            **{"matched errors": counters.matched_errors},
            divergences=counters.divergences,
            seconds=round(time.perf_counter() - started, 2),
        )
    assert counters.divergences == 0


def test_memory_against_a_fresh_memory_module(figures: Figures) -> None:
    """Sanity: the model agrees with another instance of itself."""
    run_machine(figures, "memory", lambda portal, run: AsyncDriver(portal, MemoryModule()), False)


def test_fs_against_the_model(figures: Figures, tmp_path: Path) -> None:
    from asyncstore_fs import FileSystemModule

    def open_fs(portal: BlockingPortal, run: int) -> Driver:
        return AsyncDriver(portal, FileSystemModule(root=str(tmp_path / f"run-{run}"), fsync=False))

    run_machine(figures, "fs", open_fs, True)


def test_s3_against_the_model(
    figures: Figures, module_options: dict[str, Any], s3_endpoint: Endpoint
) -> None:
    from asyncstore_s3 import S3Module

    async def enter(run: int) -> StorageModule:
        # A fresh prefix per run: every run starts from an empty store.
        return await S3Module(**module_options, prefix=f"run-{run}/").__aenter__()

    run_machine(
        figures,
        f"s3 ({s3_endpoint.name})",
        lambda portal, run: AsyncDriver(portal, portal.call(enter, run)),
        False,
    )


def test_sync_store_over_fs_against_the_model(figures: Figures, tmp_path: Path) -> None:
    from asyncstore_fs import FileSystemModule

    def open_sync(portal: BlockingPortal, run: int) -> Driver:
        return SyncDriver(
            SyncStore(FileSystemModule(root=str(tmp_path / f"run-{run}"), fsync=False))
        )

    run_machine(figures, "sync(fs)", open_sync, True)


def test_sync_store_over_memory_against_the_model(figures: Figures) -> None:
    run_machine(
        figures, "sync(memory)", lambda portal, run: SyncDriver(SyncStore(MemoryModule())), False
    )


@pytest.mark.parametrize("broken", ["listing order", "lost metadata"])
def test_the_machine_catches_a_broken_module(broken: str) -> None:
    """The comparison is not vacuous: a module with a planted bug diverges."""

    class Broken(MemoryModule):
        def list(self, prefix: str = "") -> AsyncIterator[Any]:
            if broken == "listing order":
                return _reversed(super().list(prefix))
            return super().list(prefix)

        async def stat(self, handle: str) -> Any:
            info = await super().stat(handle)
            if broken == "lost metadata" and info.metadata:
                return type(info)(handle=info.handle, size=info.size)
            return info

    counters = Counters()
    machine = type(
        "BrokenMachine",
        (StoreMachine,),
        {
            "open_target": staticmethod(lambda portal, run: AsyncDriver(portal, Broken())),
            "tree": False,
            "counters": counters,
        },
    )
    # No shrinking: only whether a divergence is found matters here.
    quick = settings(
        RELIABILITY,
        max_examples=200,
        stateful_step_count=STEPS,
        phases=[Phase.generate],
        report_multiple_bugs=False,
    )
    with pytest.raises(AssertionError):
        run_state_machine_as_test(machine, settings=quick)
    assert counters.divergences > 0


async def _reversed(listing: AsyncIterator[Any]) -> AsyncIterator[Any]:
    for info in reversed([info async for info in listing]):
        yield info
