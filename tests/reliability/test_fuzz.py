"""Fuzzed input against every module: keys, prefixes, metadata, byte sources, ranges, seeks.

Each test draws hostile input with Hypothesis and checks it against the contract's oracles
(`tests.reliability.strategies`): bad input raises the documented error class and stores
nothing (listing and, for fs, the whole directory tree around the root are unchanged); good
input round-trips exactly; no path outside the fs root is ever touched.
"""

from __future__ import annotations

import base64
import contextlib
import os
import stat as stat_module
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import boto3
import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal
from hypothesis import example, given, settings
from hypothesis import strategies as st

from asyncstore.errors import (
    InvalidKeyError,
    InvalidMetadataError,
    InvalidRangeError,
    NotFoundError,
    StorageError,
)
from asyncstore.memory import MemoryModule
from asyncstore.module import StorageModule
from asyncstore.streams import ReadStream
from asyncstore.testing import LIST_ORDERS
from tests.reliability.harness import Figures, scaled
from tests.reliability.strategies import (
    RELIABILITY,
    SourceSpec,
    StreamModel,
    any_keys,
    byte_sources,
    clashes,
    content_type_problem,
    content_types,
    key_problem,
    longest_segment,
    metadata,
    metadata_problem,
    pattern,
    prefix_problem,
    range_positions,
    range_problem,
    stream_ops,
    valid_keys,
)
from tests.s3server import SERVERS, Endpoint, scratch_bucket

SECTION = "Fuzzed input"
TARGETS = ["memory", "fs", "fs-sidecar", *(f"s3-{name}" for name in SERVERS), "compress+encrypt"]
# Examples per test in a regular run and in a full run: S3 requests cost 5-20 ms on moto.
EXAMPLES = {
    "memory": (200, 5000),
    "compress+encrypt": (80, 2000),
    "fs": (60, 2000),
    "fs-sidecar": (40, 1000),
    "s3": (20, 500),
}
DEFAULT_CONTENT_TYPES = (None, "application/octet-stream", "binary/octet-stream")
# The stored keys the prefix test lists (no key is a directory of another: fs takes them all).
LISTED = ("a-b", "a.b", "a/b", "a/c/d", "ab", "b", "\u00e9/x", "\U0001d11e", "z y/\u00fc")


# ---- targets ------------------------------------------------------------------------------


@dataclass
class Target:
    """A module under test, driven from this thread through a blocking portal."""

    name: str
    portal: BlockingPortal
    module: StorageModule
    area: Path | None = None
    """For fs: the directory holding the root, whose whole tree is watched."""
    secrets: tuple[str, ...] = ()
    """Strings that must never appear in an error message or repr."""
    name_max: int | None = None
    """For fs: the longest key segment the filesystem takes."""

    def run(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return self.portal.call(partial(func, *args, **kwargs))

    @property
    def root(self) -> Path:
        assert self.area is not None
        return self.area / "root"


async def _open(
    name: str, area: Path, s3_options: dict[str, Any] | None
) -> tuple[StorageModule, tuple[str, ...]]:
    """Open the module named ``name``; return it with the secrets it was given."""
    if name == "memory":
        return MemoryModule(), ()
    if name in ("fs", "fs-sidecar"):
        from asyncstore_fs import FileSystemModule

        if name == "fs":
            return FileSystemModule(root=str(area / "root")), ()
        return FileSystemModule(root=str(area / "root"), xattrs=False, fsync=False), ()
    if name.startswith("s3"):
        from asyncstore_s3 import S3Module

        assert s3_options is not None
        return await S3Module(**s3_options).__aenter__(), ()
    from asyncstore.middleware.compress import CompressionModule
    from asyncstore.middleware.encrypt import EncryptionModule

    key = base64.b64encode(os.urandom(32)).decode()
    inner = EncryptionModule(inner=MemoryModule(), key=key)
    return CompressionModule(inner=inner, chunk_size=4096), (key,)


@pytest.fixture(params=TARGETS)
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Target]:
    with contextlib.ExitStack() as buckets:
        yield from _target(request, tmp_path, buckets)


def _target(
    request: pytest.FixtureRequest, tmp_path: Path, buckets: contextlib.ExitStack
) -> Iterator[Target]:
    name = request.param
    s3_options = None
    if name.startswith("s3-"):
        # Each S3 server the tests run against is a target of its own.
        endpoint: Endpoint = request.getfixturevalue(f"{name[3:]}_endpoint")
        client = boto3.client(
            "s3",
            endpoint_url=endpoint.url,
            aws_access_key_id=endpoint.access_key_id,
            aws_secret_access_key=endpoint.secret_access_key,
            region_name=endpoint.region,
        )
        bucket = buckets.enter_context(scratch_bucket(client, endpoint))
        s3_options = {"bucket": bucket, **endpoint.module_options()}
    area = tmp_path / "area"
    # Neighbours of the root that a path escaping it would land on.
    (area / "sibling").mkdir(parents=True)
    (area / "sibling" / "file").write_bytes(b"keep")
    (area / "root-evil").write_bytes(b"keep")
    with start_blocking_portal() as portal:
        module, secrets = portal.call(_open, name, area, s3_options)
        name_max = module.capabilities().get("max_segment_bytes")
        assert not any(secret in repr(module) for secret in secrets), "a secret in the repr"
        try:
            yield Target(
                name,
                portal,
                module,
                area=area if name.startswith("fs") else None,
                secrets=secrets,
                name_max=name_max,
            )
        finally:
            portal.call(module.aclose)


@dataclass
class Tally:
    """What one fuzz test saw, for the report."""

    examples: int = 0
    accepted: int = 0
    rejected: int = 0
    unexpected: int = 0
    started: float = field(default_factory=time.perf_counter)

    def record(self, figures: Figures, target: str, what: str) -> None:
        figures.add(
            SECTION,
            target=target,
            input=what,
            examples=self.examples,
            accepted=self.accepted,
            rejected=self.rejected,
            unexpected=self.unexpected,
            seconds=round(time.perf_counter() - self.started, 2),
        )


def run_examples(
    target: Target, figures: Figures, what: str, test: Callable[[Tally], Callable[[], None]]
) -> None:
    """Run a Hypothesis test made by ``test(tally)`` and record what it saw."""
    tally = Tally()
    try:
        test(tally)()
    except BaseException:
        tally.unexpected += 1
        raise
    finally:
        tally.record(figures, target.name, what)


def examples(target: Target, factor: float = 1.0) -> settings:
    quick, full = EXAMPLES["s3" if target.name.startswith("s3") else target.name]
    return settings(RELIABILITY, max_examples=max(1, int(scaled(quick, full) * factor)))


# ---- helpers ------------------------------------------------------------------------------


async def _listing(module: StorageModule, prefix: str = "") -> list[tuple[str, int]]:
    return [(info.handle, info.size) async for info in module.list(prefix)]


async def _read(module: StorageModule, handle: str, **kwargs: Any) -> bytes:
    async with await module.get_read_stream(handle, **kwargs) as stream:
        return await stream.read()


async def _describe(module: StorageModule, handle: str) -> tuple[Any, ...]:
    info = await module.stat(handle)
    content_type = None if info.content_type in DEFAULT_CONTENT_TYPES else info.content_type
    data = await _read(module, handle)
    return info.handle, info.size, content_type, dict(info.metadata), data


def tree(area: Path, *, skip: Path | None = None) -> list[tuple[str, str, int]]:
    """Every entry under ``area`` (type and size), optionally without the ``skip`` subtree."""
    entries = []
    for directory, dirs, files in os.walk(area):
        if skip is not None and Path(directory) == skip:
            dirs[:] = []
            continue
        for name in dirs + files:
            path = os.path.join(directory, name)
            info = os.lstat(path)
            kind = "d" if stat_module.S_ISDIR(info.st_mode) else "f"
            size = 0 if kind == "d" else info.st_size
            entries.append((os.path.relpath(path, area), kind, size))
    return sorted(entries)


def snapshot(target: Target) -> tuple[object, ...]:
    """The store's listing, and for fs every file and directory around and under the root."""
    files = tree(target.area) if target.area is not None else None
    return target.run(_listing, target.module), files


async def _clear(module: StorageModule) -> None:
    async for info in module.list():
        await module.delete(info.handle)


def reset(target: Target) -> None:
    """Empty the store, so that an example never sees what a failed one left."""
    target.run(_clear, target.module)


def outside_root(target: Target) -> list[tuple[str, str, int]] | None:
    return tree(target.area, skip=target.root) if target.area is not None else None


def expect(
    target: Target,
    errors: type[BaseException] | tuple[type[BaseException], ...],
    label: str,
    func: Callable[..., Any],
    *args: Any,
    **kwargs: Any,
) -> BaseException:
    """Call ``func`` on the target and return the exception of class ``errors`` it raised."""
    names = errors.__name__ if isinstance(errors, type) else "/".join(e.__name__ for e in errors)
    try:
        result = target.run(func, *args, **kwargs)
    except errors as exc:
        check_secrets(target, exc)
        return exc
    except BaseException as exc:
        raise AssertionError(
            f"{target.name}: {label} raised {type(exc).__name__}({exc}); expected {names}"
        ) from exc
    raise AssertionError(f"{target.name}: {label} returned {result!r}; expected {names}")


def check_secrets(target: Target, exc: BaseException) -> None:
    for secret in target.secrets:
        assert secret not in str(exc) and secret not in repr(exc), "a secret leaked"


def segment_too_long(target: Target, key: str) -> bool:
    return target.name_max is not None and longest_segment(key) > target.name_max


async def _copy_then_read(module: StorageModule, handle: str, key: str) -> bytes:
    assert await module.copy(handle, key=key) == key
    return await _read(module, key)


# ---- keys and prefixes --------------------------------------------------------------------


BAD_KEY_CALLS: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = [
    ("put", (b"x",), {"key": "KEY"}),
    ("assign", ("KEY", b"x"), {}),
    ("get_read_stream", ("KEY",), {}),
    ("stat", ("KEY",), {}),
    ("available", ("KEY",), {}),
    ("get_size", ("KEY",), {}),
    ("delete", ("KEY",), {}),
    ("copy", ("KEY",), {}),
    ("copy", ("SEED",), {"key": "KEY"}),
]
"""Every call taking a key, with ``KEY`` standing for the key and ``SEED`` for an object."""


def check_rejected_key(target: Target, key: object) -> None:
    """Every call with ``key`` raises InvalidKeyError and changes nothing."""
    module = target.module
    # An object to copy from, so that copy(key=...) fails on the key and not on the source.
    seed = "seed" if not (isinstance(key, str) and clashes(key, "seed")) else "seed2"
    target.run(module.put, b"seed", key=seed)
    before = snapshot(target)
    names = {"KEY": key, "SEED": seed}
    for method, args, kwargs in BAD_KEY_CALLS:
        args = tuple(names.get(a, a) if isinstance(a, str) else a for a in args)
        kwargs = {k: names.get(v, v) for k, v in kwargs.items()}
        label = f"{method}{args!r} {kwargs or ''}"
        expect(target, InvalidKeyError, label, getattr(module, method), *args, **kwargs)
    assert snapshot(target) == before, f"{target.name}: a rejected key {key!r} changed the store"
    target.run(module.delete, seed)


def check_accepted_key(target: Target, key: str, data: bytes) -> None:
    """``key`` stores, reads, lists, copies and deletes exactly; fs files land under the root."""
    module = target.module
    before = snapshot(target)
    outside = outside_root(target)
    assert target.run(module.put, data, key=key) == key
    info = target.run(module.stat, key)
    assert (info.handle, info.size) == (key, len(data))
    assert target.run(_read, module, key) == data
    assert target.run(_listing, module, key) == [(key, len(data))]
    assert (key, len(data)) in target.run(_listing, module)
    if target.area is not None:
        path = target.root / key
        assert path.is_file() and path.read_bytes() == data, f"fs stored {key!r} elsewhere"
        assert outside_root(target) == outside, f"fs wrote outside its root for {key!r}"
    copy_key = key + "~"
    if key_problem(copy_key) is not None or segment_too_long(target, copy_key):
        expect(target, InvalidKeyError, f"copy to {copy_key!r}", module.copy, key, key=copy_key)
    else:
        assert target.run(_copy_then_read, module, key, copy_key) == data
        target.run(module.delete, copy_key)
    target.run(module.delete, key)
    assert not target.run(module.available, key)
    assert snapshot(target) == before, f"{target.name}: {key!r} left something behind"


def test_keys(target: Target, figures: Figures) -> None:
    """Hostile keys are refused with InvalidKeyError and store nothing; valid ones round-trip."""

    def make(tally: Tally) -> Callable[[], None]:
        @examples(target)
        @given(key=any_keys, data=st.binary(max_size=64))
        def check(key: object, data: bytes) -> None:
            tally.examples += 1
            reset(target)
            rejected = key_problem(key) is not None
            if not rejected and segment_too_long(target, str(key)):
                rejected = True  # fs: longer than a file name may be
            if rejected:
                tally.rejected += 1
                check_rejected_key(target, key)
            else:
                tally.accepted += 1
                check_accepted_key(target, str(key), data)

        return check

    run_examples(target, figures, "keys", make)


prefixes = st.one_of(
    any_keys,
    any_keys.map(lambda key: key + "/" if isinstance(key, str) else key),
    st.sampled_from(LISTED).flatmap(lambda key: st.integers(0, len(key)).map(lambda n: key[:n])),
    st.sampled_from(["", "a", "a/", "a/c", "a/c/", "a/./", "a//", "./", "../", "/", "\x7f"]),
)


def test_list_prefixes(target: Target, figures: Figures) -> None:
    """Hostile prefixes are refused with InvalidKeyError; valid ones list exactly their keys."""
    for key in LISTED:
        target.run(target.module.put, key.encode(), key=key)
    stored = sorted(LISTED, key=LIST_ORDERS[target.module.capabilities()["list_order"]])

    def make(tally: Tally) -> Callable[[], None]:
        @examples(target, 2)
        @given(prefix=prefixes)
        def check(prefix: object) -> None:
            tally.examples += 1
            rejected = prefix_problem(prefix) is not None
            if not rejected and target.name_max is not None:
                # fs: a directory name longer than a file name may be is refused as for keys.
                complete = str(prefix).rpartition("/")[0]
                rejected = bool(complete) and segment_too_long(target, complete)
            if rejected:
                tally.rejected += 1
                expect(
                    target, InvalidKeyError, f"list({prefix!r})", _listing, target.module, prefix
                )
                return
            tally.accepted += 1
            assert isinstance(prefix, str)
            expected = [(key, len(key.encode())) for key in stored if key.startswith(prefix)]
            assert target.run(_listing, target.module, prefix) == expected, prefix

        return check

    run_examples(target, figures, "list prefixes", make)


# ---- metadata -----------------------------------------------------------------------------

OLD = {"data": b"old content", "metadata": {"v": "1"}, "content_type": "text/x-old"}


def test_metadata(target: Target, figures: Figures) -> None:
    """Broken metadata and content types raise InvalidMetadataError; valid ones round-trip."""
    module = target.module

    def make(tally: Tally) -> Callable[[], None]:
        @examples(target)
        @given(
            key=st.one_of(st.just("meta/object"), valid_keys),
            meta=metadata,
            content_type=content_types,
            old=st.booleans(),
            assign=st.booleans(),
        )
        def check(key: str, meta: Any, content_type: Any, old: bool, assign: bool) -> None:
            tally.examples += 1
            reset(target)
            if segment_too_long(target, key):
                key = "meta/object"  # the keys test covers those
            copy_key = "meta-copy" if not clashes(key, "meta-copy") else "meta-copy2"
            if old:
                target.run(module.put, OLD["data"], key=key, **_old_options())
            before = snapshot(target)
            described = target.run(_describe, module, key) if old else None
            write = partial(module.assign, key) if assign else partial(module.put, key=key)
            call = partial(write, b"new", metadata=meta, content_type=content_type)
            if metadata_problem(meta) or content_type_problem(content_type):
                tally.rejected += 1
                label = f"metadata={meta!r}, content_type={content_type!r}"
                expect(target, InvalidMetadataError, label, call)
                assert snapshot(target) == before
                if old:
                    assert target.run(_describe, module, key) == described
            else:
                tally.accepted += 1
                target.run(call)
                expected = (key, 3, _content(content_type), dict(meta or {}), b"new")
                assert target.run(_describe, module, key) == expected
                assert target.run(module.copy, key, key=copy_key) == copy_key
                copied = target.run(_describe, module, copy_key)
                assert copied == (copy_key, *expected[1:])
                target.run(module.delete, copy_key)
            target.run(module.delete, key)

        return check

    run_examples(target, figures, "metadata", make)


def _old_options() -> dict[str, Any]:
    return {"metadata": OLD["metadata"], "content_type": OLD["content_type"]}


def _content(content_type: str | None) -> str | None:
    return None if content_type in DEFAULT_CONTENT_TYPES else content_type


# ---- byte sources -------------------------------------------------------------------------


async def _store(
    module: StorageModule, spec: SourceSpec, key: str | None
) -> tuple[str, BaseException | None]:
    """Store a fresh source built on the loop; return the handle and what was raised."""
    handle = key if key is not None else await module.new_data()
    source: Any = spec.build()
    try:
        if key is None:
            await module.assign(handle, source)
        else:
            await module.put(source, key=key)
    except Exception as exc:
        return handle, exc
    return handle, None


# Sources that are not sources at all: the TypeError must say what is accepted.
_NAMED_TYPES = (
    "bad-str",
    "bad-int",
    "bad-none",
    "bad-float",
    "bad-bool",
    "bad-dict",
    "bad-strided",
)


def test_sources(target: Target, figures: Figures) -> None:
    """Every kind of byte source stores exactly; bad ones raise TypeError, failing ones their
    own error, and neither stores anything nor harms the old object."""
    module = target.module
    tiny = scaled(3000, 100_000)

    def make(tally: Tally) -> Callable[[], None]:
        @examples(target)
        @given(spec=byte_sources(tiny), old=st.booleans(), assign=st.booleans())
        # Every run, however short, sees a source of the wrong type and one that fails late.
        @example(spec=SourceSpec("bad-str", bad="text"), old=True, assign=False)
        @example(
            spec=SourceSpec("generator", (b"a", b"", b"b"), fail_after=3), old=True, assign=False
        )
        def check(spec: SourceSpec, old: bool, assign: bool) -> None:
            tally.examples += 1
            reset(target)
            key = "source/object"
            if old:
                target.run(module.put, OLD["data"], key=key, **_old_options())
            before = snapshot(target)
            described = target.run(_describe, module, key) if old else None
            handle, raised = target.run(_store, module, spec, None if assign else key)
            if spec.error is None:
                tally.accepted += 1
                assert raised is None, f"{spec!r} raised {type(raised).__name__}: {raised}"
                assert target.run(_read, module, handle) == spec.data, spec
                assert target.run(module.get_size, handle) == len(spec.data)
            else:
                tally.rejected += 1
                assert type(raised) is spec.error or isinstance(raised, spec.error), (
                    f"{spec!r} raised {type(raised).__name__}({raised}); expected {spec.error}"
                )
                check_secrets(target, raised)
                if spec.kind in _NAMED_TYPES:
                    assert "accepted" in str(raised), f"{raised} does not say what is accepted"
                assert not isinstance(raised, StorageError)
                assert snapshot(target) == before, f"{spec!r} changed the store"
                # The old object is intact (checked below); a fresh handle stays unavailable.
                assert target.run(module.available, handle) == (old and handle == key)
                if old:
                    assert target.run(_describe, module, key) == described
            target.run(module.delete, handle)
            target.run(module.delete, key)

        return check

    run_examples(target, figures, "byte sources", make)


# ---- ranges and seeks ---------------------------------------------------------------------


@st.composite
def range_cases(draw: st.DrawFn) -> tuple[int, Any, Any, list[tuple[Any, ...]]]:
    size = draw(st.one_of(st.integers(0, 40), st.integers(0, 150_000)))
    start = draw(range_positions(size))
    end = draw(range_positions(size))
    return size, start, end, draw(stream_ops(size))


async def _exercise(stream: ReadStream, expected: bytes, ops: list[tuple[Any, ...]]) -> list[str]:
    """Run ``ops`` on ``stream`` and return every way it broke the contract."""
    problems: list[str] = []
    model = StreamModel(expected)
    if stream.size != len(expected):
        problems.append(f"size {stream.size}, expected {len(expected)}")
    for op in ops:
        if op[0] == "read":
            problem = model.check_read(op[1], await stream.read(op[1]))
        elif op[0] == "readinto":
            buffer = bytearray(op[1])
            count = await stream.readinto(buffer)
            problem = model.check_readinto(op[1], count, bytes(buffer))
        elif op[0] == "seek":
            allowed = model.seek_errors(op[1], op[2])
            try:
                position = await stream.seek(op[1], op[2])
            except (TypeError, ValueError) as exc:
                problem = None if isinstance(exc, allowed) else f"{op} raised {exc!r}"
            else:
                if allowed:
                    problem = f"{op} moved to {position!r}; expected {allowed}"
                else:
                    problem = None if position == model.seek(op[1], op[2]) else f"{op}: {position}"
        else:
            problem = None
        if problem is None and stream.tell() != model.pos:
            problem = f"after {op}: tell() is {stream.tell()!r}, expected {model.pos}"
        if problem is not None:
            problems.append(problem)
            break
    else:
        rest = await stream.read()
        if rest != expected[model.pos :]:
            problems.append(f"the final read() gave {len(rest)} bytes")
    return problems


async def _ranged(
    module: StorageModule, key: str, start: Any, end: Any, ops: list[tuple[Any, ...]], data: bytes
) -> list[str]:
    async with await module.get_read_stream(key, start=start, end=end) as stream:
        if stream.info.size != len(data):
            return [f"info.size {stream.info.size}, expected {len(data)}"]
        return await _exercise(stream, data[start:end], ops)


def test_ranges_and_seeks(target: Target, figures: Figures) -> None:
    """Ranges (negative, reversed, past the end, None) and seek/read/readinto sequences."""
    module = target.module

    def make(tally: Tally) -> Callable[[], None]:
        @examples(target)
        @given(case=range_cases(), seed=st.integers(0, 3))
        def check(case: tuple[int, Any, Any, list[tuple[Any, ...]]], seed: int) -> None:
            tally.examples += 1
            reset(target)
            size, start, end, ops = case
            data = pattern(size, seed)
            key = "range/object"
            target.run(module.put, data, key=key)
            missing = (InvalidRangeError,) if range_problem(start, end) else (NotFoundError,)
            expect(target, missing, "reading a missing object", _read, module, "range/missing",
                   start=start, end=end)  # fmt: skip
            if range_problem(start, end):
                tally.rejected += 1
                label = f"get_read_stream(start={start!r}, end={end!r})"
                expect(target, InvalidRangeError, label, module.get_read_stream, key,
                       start=start, end=end)  # fmt: skip
            else:
                tally.accepted += 1
                problems = target.run(_ranged, module, key, start, end, ops, data)
                assert not problems, f"{target.name} [{start}:{end}] of {size}: {problems}"
            target.run(module.delete, key)

        return check

    run_examples(target, figures, "ranges and seeks", make)


# ---- the oracles are not vacuous ----------------------------------------------------------


class _OffByOne(MemoryModule):
    """Reads one byte short whenever a range has an end."""

    async def get_read_stream(
        self, handle: str, *, start: int = 0, end: int | None = None
    ) -> ReadStream:
        if isinstance(end, int) and end > start:
            end -= 1
        return await super().get_read_stream(handle, start=start, end=end)


class _Lenient(MemoryModule):
    """Says "not found" for a key with a NUL, where InvalidKeyError is due."""

    async def stat(self, handle: str) -> Any:
        if isinstance(handle, str) and "\x00" in handle:
            raise NotFoundError("no such object", store=self.name)
        return await super().stat(handle)


def _only_failures(exc: BaseException) -> bool:
    inner = getattr(exc, "exceptions", None)
    if inner is not None:
        return all(_only_failures(e) for e in inner)
    return isinstance(exc, AssertionError)


@pytest.mark.parametrize(
    ("broken", "test"), [(_OffByOne, test_ranges_and_seeks), (_Lenient, test_keys)]
)
def test_the_fuzz_catches_a_broken_module(broken: type[MemoryModule], test: Any) -> None:
    with start_blocking_portal() as portal:
        target = Target("memory", portal, broken())
        with pytest.raises(Exception) as caught:  # which exceptions: checked below
            test(target, Figures())
    assert _only_failures(caught.value), caught.value
