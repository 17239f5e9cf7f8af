"""Hypothesis strategies of hostile input, and the oracles that say how a module must react.

The oracles restate the contract (docs and `asyncstore.keys` docstrings) independently of the
validator they check: `key_problem`, `prefix_problem`, `metadata_problem`,
`content_type_problem`, `SourceSpec.error` and `StreamModel`.
"""

from __future__ import annotations

import array
import hashlib
import io
import os
import string
import unicodedata
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import anyio.lowlevel
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from asyncstore.info import ObjectInfo
from asyncstore.streams import BytesReadStream
from tests.reliability.harness import FULL

# ---- settings -----------------------------------------------------------------------------

RELIABILITY = settings(
    # Every call does real I/O (threads, files, HTTP to moto): timing says nothing here.
    deadline=None,
    # The regular run tests the same examples every time (reproducible CI); a full run
    # explores new ones, and prints a reproduction blob for any failure.
    derandomize=not FULL,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
"""The settings every fuzzed and model-based test of the harness starts from."""

# ---- keys ---------------------------------------------------------------------------------

MAX_KEY_BYTES = 1024


def key_problem(key: object) -> str | None:
    """Return why ``key`` breaks the contract's key rules, or None if it is a valid key."""
    if not isinstance(key, str):
        return "not a str"
    try:
        encoded = key.encode("utf-8")
    except UnicodeEncodeError:
        return "not UTF-8"
    if not key:
        return "empty"
    if len(encoded) > MAX_KEY_BYTES:
        return "too long"
    if any(unicodedata.category(char) == "Cc" for char in key):
        return "control character"
    if key.startswith("/"):
        return "leading slash"
    if any(segment in ("", ".", "..") for segment in key.split("/")):
        return "empty, '.' or '..' segment"
    return None


def prefix_problem(prefix: object) -> str | None:
    """Return why a listing prefix breaks the prefix rules, or None if it is a valid prefix.

    A prefix may be empty, may end with ``/`` or in a partial segment, but is otherwise held
    to the key rules: every complete segment obeys them.
    """
    if prefix == "":
        return None
    problem = key_problem(prefix)
    if problem != "empty, '.' or '..' segment":
        return problem
    assert isinstance(prefix, str)
    complete = prefix.split("/")[:-1]
    return problem if any(segment in ("", ".", "..") for segment in complete) else None


def longest_segment(key: str) -> int:
    """Return the length in bytes of the longest segment of ``key``."""
    return max(len(segment.encode()) for segment in key.split("/"))


def clashes(key: str, other: str) -> bool:
    """Return whether two keys cannot both be files of one tree (``a`` and ``a/b``)."""
    return key.startswith(other + "/") or other.startswith(key + "/")


_SAFE = string.ascii_letters + string.digits + "-_."
_TRICKY = (
    "\\:*?\"<>|~$%#&'` ;=+@!,{}[]^ "
    "\u00e9e\u0301\u00c5\u212b\u0130\u0131\u00df\u200b\u200d\u202e\u2028\u2029\ufeff\ufffd"
    "\ufffe\uffff\uff0f\u2215\u2044\u00a0\u3000\u4e2d\U0001f600\U0001d11e\U00010000"
    "\U0002a6d6\U000e0001\U000f0000\U0010fffd\U0010ffff"
)
_CONTROL = "\x00\x01\t\n\r\x1b\x1f\x7f\x80\x85\x9f"
_SURROGATES = "\ud800\udbff\udc00\udfff"
_MARKER = "\x7f"  # what the fs backend puts in the names of its own files

_valid_chars = st.one_of(
    st.sampled_from(_SAFE),
    st.sampled_from(_TRICKY),
    st.characters(codec="utf-8", exclude_categories=["Cc", "Cs"]),
)
_any_chars = st.one_of(
    _valid_chars, st.sampled_from(_CONTROL), st.sampled_from(_SURROGATES), st.characters()
)

_VALID_SEGMENTS = (
    "...",
    ".hidden",
    "a.",
    "CON",
    "con",
    "NUL",
    "PRN",
    "AUX.txt",
    "COM1",
    "LPT9",
    "con.txt",
    " ",
    " a",
    "a ",
    "~",
    "..a",
    "a..",
    "\\",
    "..\\..",
    "a\\..\\b",
    "%2e%2e",
    "%2F",
    ".asyncstore-tmp",
    "x" * 255,
    "x" * 256,
    "\u00e9" * 127,
    "\u00e9" * 128,
    "\U0001d11e" * 63 + "abc",
    "\U0001d11e" * 64,
    "x" * 251,
)
_INVALID_SEGMENTS = (
    "",
    ".",
    "..",
    f".asyncstore-tmp{_MARKER}0123456789abcdef",
    f"x{_MARKER}meta",
    _MARKER,
    "a\x00b",
    "\n",
    "\ud800",
)

valid_segments = st.one_of(
    st.text(_valid_chars, min_size=1, max_size=12).filter(lambda s: s not in (".", "..")),
    st.sampled_from(_VALID_SEGMENTS),
)
any_segments = st.one_of(
    valid_segments, st.sampled_from(_INVALID_SEGMENTS), st.text(_any_chars, max_size=8)
)


@st.composite
def _joined(draw: st.DrawFn, segments: st.SearchStrategy[str], hostile: bool) -> str:
    key = "/".join(draw(st.lists(segments, min_size=1, max_size=6)))
    if hostile:
        key = draw(st.sampled_from(["", "/", "//"])) + key + draw(st.sampled_from(["", "/"]))
    return key


@st.composite
def long_keys(draw: st.DrawFn) -> str:
    """Keys of about 1,024 bytes (the limit), of 1-4 byte characters, in long segments."""
    total = draw(st.integers(MAX_KEY_BYTES - 24, MAX_KEY_BYTES + 16))
    char = draw(st.sampled_from("x\u00e9\u4e2d\U0001d11e"))
    segment = char * (draw(st.sampled_from([40, 120, 250, 255, 256, 400])) // len(char.encode()))
    text = "/".join([segment] * (total // max(1, len(segment.encode())) + 1))
    key = text.encode()[:total].decode("utf-8", errors="ignore").rstrip("/")
    return key or "x"


_EXACT_LONG_KEYS = (
    "/".join(["b" * 255] * 3 + ["b" * 254, "c"]),  # 1,024 bytes, every segment <= 255
    "/".join(["b" * 255] * 3 + ["b" * 254, "cd"]),  # 1,025 bytes
    "a" * MAX_KEY_BYTES,
    "a" * (MAX_KEY_BYTES + 1),
    "\u00e9" * (MAX_KEY_BYTES // 2),
    "\u00e9" * (MAX_KEY_BYTES // 2) + "x",
)

valid_keys = st.one_of(_joined(valid_segments, hostile=False), long_keys()).filter(
    lambda key: key_problem(key) is None
)
"""Keys that obey the key rules (odd characters, reserved names, long keys and segments)."""

_non_str_keys = st.one_of(
    st.binary(min_size=1, max_size=4),
    st.integers(),
    st.just(["a"]),
    st.just(("a",)),
    st.just(3.5),
)

any_keys = st.one_of(
    valid_keys,
    _joined(any_segments, hostile=True),
    long_keys(),
    st.sampled_from(_EXACT_LONG_KEYS),
    _non_str_keys,
)
"""Anything a caller might pass as a key: valid keys, broken ones, and non-strings."""

# ---- metadata and content types -----------------------------------------------------------

_NAME_FIRST = string.ascii_lowercase + string.digits
_NAME_REST = _NAME_FIRST + "._-"
_PRINTABLE = "".join(chr(code) for code in range(0x20, 0x7F))
_TOKEN = string.ascii_letters + string.digits + "!#$%&'*+.^_`|~-"
MAX_METADATA_BYTES = 2048


def metadata_problem(metadata: object) -> str | None:
    """Return why ``metadata`` breaks the metadata rules, or None if every backend keeps it."""
    if metadata is None:
        return None
    if not isinstance(metadata, Mapping):
        return "not a mapping"
    total = 0
    for name, value in metadata.items():
        if not isinstance(name, str) or not 1 <= len(name) <= 128:
            return "bad name"
        if name[0] not in _NAME_FIRST or any(char not in _NAME_REST for char in name):
            return "bad name"
        if not isinstance(value, str) or any(char not in _PRINTABLE for char in value):
            return "bad value"
        if value != value.strip(" "):
            return "value with surrounding spaces"
        total += len(name) + len(value)
    return "too large" if total > MAX_METADATA_BYTES else None


def content_type_problem(content_type: object) -> str | None:
    """Return why ``content_type`` is not a ``type/subtype`` MIME type, or None."""
    if content_type is None:
        return None
    if not isinstance(content_type, str):
        return "not a str"
    main, _, parameters = content_type.partition(";")
    kind, slash, subtype = main.partition("/")
    if not slash or not kind or not subtype:
        return "not type/subtype"
    if any(char not in _TOKEN for char in kind + subtype):
        return "bad token"
    if any(char not in _PRINTABLE for char in parameters):
        return "bad parameters"
    return None


metadata_names = st.one_of(
    st.builds(
        str.__add__, st.sampled_from(_NAME_FIRST), st.text(_NAME_REST, max_size=127)
    ),  # valid
    st.sampled_from(["", "-x", ".x", "_x", "A", "Name", "a b", "a:b", "\u00fc", "a\nb"]),
    st.just("n" * 129),
    st.text(_any_chars, min_size=1, max_size=6),
)
metadata_values = st.one_of(
    st.text(_PRINTABLE, max_size=40),
    st.text(_PRINTABLE, min_size=600, max_size=2100),
    st.sampled_from([" x", "x ", "a\r\nx-amz-meta-evil: 1", "\u00e9", "\x00", "tab\there"]),
    st.text(_any_chars, max_size=6),
)
metadata = st.one_of(
    st.none(),
    st.dictionaries(metadata_names, metadata_values, max_size=4),
    st.dictionaries(
        st.builds(str.__add__, st.sampled_from(_NAME_FIRST), st.text(_NAME_REST, max_size=20)),
        st.text(_PRINTABLE, max_size=30).map(str.strip),
        max_size=4,
    ),  # mostly valid
    st.sampled_from([[("a", "b")], "a=b", {"a": 1}, {1: "a"}, {"a": None}, {b"a": "b"}]),
)
"""Metadata arguments: valid and broken mappings, and things that are not mappings."""

content_types = st.one_of(
    st.none(),
    st.sampled_from(
        [
            "text/plain",
            "text/plain; charset=utf-8",
            "application/octet-stream",
            "application/vnd.api+json",
            "image/svg+xml",
            "a/b;",
            'a/b; x="y z"',
            "text",
            "/plain",
            "text/",
            "text/plain\nX-Evil: 1",
            "text/pl ain",
            "t\u00e9xt/plain",
            "",
            "a/b; \u00e9",
        ]
    ),
    st.builds(
        lambda a, b, p: f"{a}/{b}{p}",
        st.text(_TOKEN, min_size=1, max_size=8),
        st.text(_TOKEN, min_size=1, max_size=8),
        st.one_of(st.just(""), st.text(_PRINTABLE, max_size=20).map(lambda t: ";" + t)),
    ),
    st.text(_any_chars, max_size=10),
    st.sampled_from([5, b"text/plain", ["text/plain"]]),
)
"""Content type arguments: valid MIME types, broken ones, and things that are not str."""

# ---- byte sources -------------------------------------------------------------------------


class SourceFailed(Exception):
    """Raised by the fuzzed byte sources that fail midway."""


def pattern(size: int, seed: int = 0) -> bytes:
    """Return ``size`` bytes that differ at nearly every offset (misplaced bytes show)."""
    block = hashlib.sha256(seed.to_bytes(8, "big")).digest() * 256
    return (block * (size // len(block) + 1))[:size]


class _AsyncReader:
    def __init__(self, data: bytes, sizes: Sequence[int]) -> None:
        self._buffer = io.BytesIO(data)
        self._sizes = list(sizes) or [1]
        self._calls = 0

    async def read(self, n: int = -1) -> bytes:
        await anyio.lowlevel.checkpoint()
        # Return fewer bytes than asked for, as sockets and pipes do.
        size = self._sizes[self._calls % len(self._sizes)]
        self._calls += 1
        return self._buffer.read(max(1, min(size, n)) if n >= 0 else -1)


class _StrReader:
    def read(self, n: int = -1) -> str:
        return "text"


@dataclass(frozen=True)
class SourceSpec:
    """A recipe for one byte source, and what storing it must do.

    ``build()`` makes a fresh source each time (iterators are used up). ``data`` is what the
    stored object must hold when ``error`` is None; otherwise storing must raise ``error``
    and store nothing.
    """

    kind: str
    chunks: tuple[bytes, ...] = ()
    fail_after: int | None = None
    skip: int = 0
    bad: Any = field(default=None, compare=False)

    @property
    def data(self) -> bytes:
        """The bytes the source yields (after ``skip`` for a read stream)."""
        return b"".join(self.chunks)[self.skip :]

    @property
    def error(self) -> type[BaseException] | None:
        """The exception storing must raise: `TypeError`, `SourceFailed`, or None."""
        if self.kind.startswith("bad"):
            return TypeError
        return SourceFailed if self.fail_after is not None else None

    def __repr__(self) -> str:
        sizes = [len(chunk) for chunk in self.chunks]
        shown = sizes if len(sizes) <= 12 else f"{len(sizes)} chunks of {sum(sizes)} bytes"
        extra = f", fail_after={self.fail_after}" if self.fail_after is not None else ""
        extra += f", skip={self.skip}" if self.skip else ""
        extra += f", bad={self.bad!r}" if self.kind.startswith("bad") else ""
        return f"SourceSpec({self.kind}, {shown}{extra})"

    def build(self) -> object:
        """Return a fresh source (call it inside the event loop that stores it)."""
        whole = b"".join(self.chunks)
        if self.kind.startswith("bad"):
            return self.bad() if callable(self.bad) else self.bad
        if self.kind == "bytes":
            return whole
        if self.kind == "bytearray":
            return bytearray(whole)
        if self.kind == "memoryview":
            return memoryview(b"<" + whole + b">")[1:-1]
        if self.kind == "array":
            return array.array("H", whole)
        if self.kind in ("list", "tiny-chunks"):
            return [bytearray(c) if i % 3 == 1 else c for i, c in enumerate(self.chunks)]
        if self.kind == "tuple":
            return tuple(memoryview(c) for c in self.chunks)
        if self.kind == "generator":
            return self._generator()
        if self.kind == "async-generator":
            return self._async_generator()
        if self.kind == "sync-reader":
            return io.BytesIO(whole)
        if self.kind == "async-reader":
            return _AsyncReader(whole, [len(c) for c in self.chunks])
        if self.kind == "read-stream":
            info = ObjectInfo(handle="source", size=len(whole), modified=datetime.now(timezone.utc))
            stream = BytesReadStream(whole, info)
            stream._pos = self.skip  # as if the caller had read (or seeked) that far
            return stream
        raise AssertionError(f"unknown source kind {self.kind}")

    def _generator(self) -> Iterator[bytes]:
        for index, chunk in enumerate(self.chunks):
            if index == self.fail_after:
                raise SourceFailed("the source failed midway")
            yield chunk
        if self.fail_after is not None:
            raise SourceFailed("the source failed at its end")

    async def _async_generator(self) -> AsyncIterator[bytes]:
        for index, chunk in enumerate(self.chunks):
            await anyio.lowlevel.checkpoint()
            if index == self.fail_after:
                raise SourceFailed("the source failed midway")
            yield chunk
        if self.fail_after is not None:
            raise SourceFailed("the source failed at its end")


_chunk = st.one_of(st.just(b""), st.binary(min_size=1, max_size=64), st.integers(1, 70_000))
_chunks = st.lists(_chunk, max_size=8).map(
    lambda items: tuple(
        pattern(item, seed=index) if isinstance(item, int) else item
        for index, item in enumerate(items)
    )
)


def _whole(kind: str) -> st.SearchStrategy[SourceSpec]:
    return st.builds(SourceSpec, st.just(kind), _chunks)


def _even(chunks: tuple[bytes, ...]) -> tuple[bytes, ...]:
    data = b"".join(chunks)
    return (data[: len(data) // 2 * 2],) if data else ()


@st.composite
def _failing(draw: st.DrawFn, kind: str) -> SourceSpec:
    chunks = draw(_chunks)
    fail_after = draw(st.one_of(st.none(), st.integers(0, len(chunks))))
    return SourceSpec(kind, chunks, fail_after)


@st.composite
def _stream(draw: st.DrawFn) -> SourceSpec:
    chunks = draw(_chunks)
    skip = draw(st.integers(0, len(b"".join(chunks))))
    return SourceSpec("read-stream", chunks, skip=skip)


def _tiny_chunks(count: int) -> SourceSpec:
    return SourceSpec("tiny-chunks", tuple(bytes([i % 251]) for i in range(count)))


def _bad_generator() -> Iterator[object]:
    yield b"fine"
    yield None


def byte_sources(max_tiny_chunks: int) -> st.SearchStrategy[SourceSpec]:
    """Byte sources of every accepted kind, failing ones, and things that are not sources."""
    bad = st.sampled_from(
        [
            SourceSpec("bad-str", bad="text"),
            SourceSpec("bad-int", bad=12345),
            SourceSpec("bad-none", bad=None),
            SourceSpec("bad-float", bad=1.5),
            SourceSpec("bad-bool", bad=True),
            SourceSpec("bad-ints", bad=lambda: [1, 2, 3]),
            SourceSpec("bad-range", bad=lambda: range(3)),
            SourceSpec("bad-dict", bad=lambda: {b"a": b"b"}),
            SourceSpec("bad-object", bad=object),
            SourceSpec("bad-str-chunk", bad=lambda: [b"ok", "not ok", b"late"]),
            SourceSpec("bad-none-chunk", bad=_bad_generator),
            SourceSpec("bad-str-reader", bad=_StrReader),
            SourceSpec("bad-strided", bad=lambda: memoryview(b"abcdef")[::2]),
        ]
    )
    return st.one_of(
        _whole("bytes"),
        _whole("bytearray"),
        _whole("memoryview"),
        _chunks.map(lambda c: SourceSpec("array", _even(c))),
        _whole("list"),
        _whole("tuple"),
        _failing("generator"),
        _failing("async-generator"),
        _whole("sync-reader"),
        _whole("async-reader"),
        _stream(),
        st.integers(0, max_tiny_chunks).map(_tiny_chunks),
        bad,
        bad,
    )


# ---- ranges and seeks ---------------------------------------------------------------------


def range_problem(start: object, end: object) -> bool:
    """Return whether ``get_read_stream(start=start, end=end)`` must raise InvalidRangeError."""

    # A bool is an int to Python, but not a position.
    if isinstance(start, bool) or not isinstance(start, int) or start < 0:
        return True
    if end is None:
        return False
    return isinstance(end, bool) or not isinstance(end, int) or end < start


def range_positions(size: int) -> st.SearchStrategy[Any]:
    """Values for ``start`` and ``end`` around an object of ``size`` bytes."""
    valid = st.one_of(st.integers(0, size + 2), st.sampled_from([0, size, size + 1, 2**63]))
    return st.one_of(
        valid,
        valid,
        valid,
        st.none(),
        st.sampled_from([-1, -3, -(2**63), 1.0, 0.5, "1", True, False]),
    )


def stream_ops(size: int) -> st.SearchStrategy[list[tuple[Any, ...]]]:
    """Sequences of read, readinto, seek and tell calls on a stream of about ``size`` bytes."""
    read = st.tuples(
        st.just("read"),
        st.one_of(st.integers(-2, 3), st.none(), st.integers(0, size + 10), st.just(1 << 30)),
    )
    readinto = st.tuples(st.just("readinto"), st.integers(0, size + 10))
    seek = st.tuples(
        st.just("seek"),
        st.one_of(
            st.integers(-size - 3, size + 3),
            st.sampled_from([0, size, -size, 2**63]),
            st.sampled_from([1.5, 2.0, "1", None]),
        ),
        st.one_of(st.sampled_from([os.SEEK_SET, os.SEEK_CUR, os.SEEK_END]), st.integers(-1, 4)),
    )
    return st.lists(st.one_of(read, readinto, seek, st.just(("tell",))), max_size=12)


class StreamModel:
    """What a `ReadStream` over ``data`` must do for each call of `stream_ops`.

    Reads may return fewer bytes than asked for (never none before the end), so `check`
    takes the actual result and advances by what was really read.
    """

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def seek_errors(self, offset: object, whence: object) -> tuple[type[Exception], ...]:
        """Return the exceptions ``seek(offset, whence)`` may raise; empty if it must work.

        A non-integer offset is a `TypeError` (as for a file); an unknown ``whence`` and a
        position outside ``[0, size]`` are `ValueError`.
        """
        errors: set[type[Exception]] = set()
        if not isinstance(offset, int):
            errors.add(TypeError)
        if whence not in (os.SEEK_SET, os.SEEK_CUR, os.SEEK_END):
            errors.add(ValueError)
            if not isinstance(whence, int):
                errors.add(TypeError)
        if errors:
            return tuple(errors)
        assert isinstance(offset, int) and isinstance(whence, int)
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self.pos, os.SEEK_END: len(self.data)}[whence]
        return () if 0 <= base + offset <= len(self.data) else (ValueError,)

    def seek(self, offset: int, whence: int) -> int:
        """Apply a valid seek; return the new position."""
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self.pos, os.SEEK_END: len(self.data)}[whence]
        self.pos = base + offset
        return self.pos

    def check_read(self, asked: int | None, got: bytes) -> str | None:
        """Check the result of ``read(asked)``, advance, and return what is wrong, if anything."""
        rest = self.data[self.pos :]
        if asked is None or asked < 0:
            want = rest
            if got != want:
                return f"read({asked}) gave {len(got)} bytes, expected all {len(want)} remaining"
        else:
            want = rest[:asked]
            if not got and want:
                return f"read({asked}) gave nothing before the end"
            if got != want[: len(got)]:
                return f"read({asked}) at {self.pos} gave other bytes than stored"
        self.pos += len(got)
        return None

    def check_readinto(self, room: int, count: int, filled: bytes) -> str | None:
        """Check ``readinto`` of a ``room``-byte buffer that returned ``count``; advance."""
        want = self.data[self.pos : self.pos + room]
        if not 0 <= count <= room:
            return f"readinto of {room} bytes returned {count}"
        if not count and want:
            return f"readinto({room}) read nothing before the end"
        if filled[:count] != want[:count]:
            return f"readinto({room}) at {self.pos} filled other bytes than stored"
        self.pos += count
        return None
