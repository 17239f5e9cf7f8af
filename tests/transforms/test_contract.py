"""The pieces of the contract: input and output streams, the pipe between them, the checks of
a call, TransformError, and the registry of the asyncstore.transforms group."""

from __future__ import annotations

import pickle
from collections.abc import Mapping
from typing import Any, ClassVar

import anyio
import pytest
from anyio.streams.buffered import BufferedByteReceiveStream

from asyncstore import InvalidMetadataError, PluginLoadError, PluginNotFoundError, TransformError
from asyncstore.memory import MemoryModule
from asyncstore.transforms import InputInfo, InputStream, Transform, TransformRegistry
from asyncstore.transforms._contract import default_name
from asyncstore.transforms._execute import check_call
from asyncstore.transforms._outputs import OutputAbandonedError, Pipe
from asyncstore.transforms.csv_select import parse_condition

from .helpers import Concat, Upper

pytestmark = pytest.mark.anyio

DATA = bytes(range(256)) * 1000


async def test_an_input_over_a_source_reads_like_a_stream() -> None:
    stream = InputStream.from_source([DATA[:1000], b"", DATA[1000:]])
    assert stream.size is None and stream.info.key is None
    assert await stream.read(10) == DATA[:10]
    buffer = bytearray(5000)
    assert await stream.readinto(buffer) == 990  # the rest of the first chunk
    assert bytes(buffer[:990]) == DATA[10:1000]
    assert await stream.receive(100) == DATA[1000:1100]
    rest = b"".join([chunk async for chunk in stream])
    assert rest == DATA[1100:] and stream.tell() == len(DATA)
    assert await stream.read() == b""
    with pytest.raises(anyio.EndOfStream):
        await stream.receive()
    await stream.aclose()
    with pytest.raises(anyio.ClosedResourceError):
        await stream.read()


async def test_an_input_over_a_read_stream_has_the_objects_info() -> None:
    async with MemoryModule() as store:
        await store.put(DATA, key="k", metadata={"a": "1"}, content_type="text/plain")
        read_stream = await store.get_read_stream("k")
        await read_stream.seek(100)
        stream = InputStream.from_read_stream(read_stream, store="memory")
        assert stream.info == InputInfo(
            "k", len(DATA) - 100, "text/plain", {"a": "1"}, stream.info.etag, "memory"
        )
        buffered = BufferedByteReceiveStream(stream)  # anyio's wrappers work on it
        assert await buffered.receive_exactly(5) == DATA[100:105]
        assert await stream.read(-1) == DATA[105 + len(buffered.buffer) :]
        await stream.aclose()
        assert read_stream.closed


async def test_an_input_remembers_its_own_failure() -> None:
    async def broken() -> Any:
        yield b"x"
        raise OSError("disk on fire")

    stream = InputStream.from_source(broken())
    assert await stream.read(10) == b"x"
    with pytest.raises(OSError, match="on fire") as caught:
        await stream.read(10)
    assert stream.failure is caught.value
    with pytest.raises(TypeError):
        await InputStream.from_source("text").read()


async def test_input_info_round_trips_through_a_dict() -> None:
    info = InputInfo("a/b", 3, "text/csv", {"x": "1"}, "etag", "store")
    assert InputInfo.from_dict(info.to_dict()) == info


async def test_output_rules() -> None:
    from asyncstore.testing.transforms import RecordingOutput

    output = RecordingOutput(transform="t")
    output.set_metadata({"a": "1"}, content_type="text/plain")
    output.set_metadata({"b": "2"})  # replaces both
    assert (dict(output.metadata), output.content_type) == ({"b": "2"}, None)
    with pytest.raises(InvalidMetadataError):
        output.set_metadata({"Bad Name": "x"})
    with pytest.raises(TypeError):
        await output.write("text")  # type: ignore[arg-type]
    reused = bytearray(b"abc")
    await output.write(reused)
    reused[:] = b"xyz"  # the output copied it
    with pytest.raises(TransformError, match="before the first write") as caught:
        output.set_metadata({"c": "3"})
    assert caught.value.transform == "t"
    await output.aclose()
    await output.aclose()
    with pytest.raises(TransformError, match="closed output"):
        await output.write(b"more")
    produced = output.produced()
    assert produced.data == b"abc" and produced.events == ("metadata", "metadata", "write", "close")


async def test_the_pipe_holds_a_bounded_amount() -> None:
    pipe = Pipe(max_bytes=100)
    sent: list[int] = []

    async def writer() -> None:
        for index in range(10):
            await pipe.send(b"x" * 60)
            sent.append(index)
        pipe.close()

    async with anyio.create_task_group() as group:
        group.start_soon(writer)
        await anyio.wait_all_tasks_blocked()
        assert sent == [0]  # 120 bytes held: the second send waits for the reader
        received = [chunk async for chunk in pipe.chunks()]
    assert len(received) == 10 and sent == list(range(10))


async def test_a_failed_pipe_raises_and_an_abandoned_one_refuses() -> None:
    pipe = Pipe()
    await pipe.send(b"early")
    pipe.fail(ValueError("no"))
    with pytest.raises(ValueError, match="no"):
        await pipe.receive()  # never the bytes before the failure as a complete stream
    other = Pipe()
    other.abandon()
    with pytest.raises(OutputAbandonedError):
        await other.send(b"x")


def test_check_call_refuses_before_any_io() -> None:
    with pytest.raises(TransformError, match="takes 1 input"):
        check_call(Upper(), 2, 1, {})
    with pytest.raises(TransformError, match="one or more"):
        check_call(Concat(), 0, 1, {})
    with pytest.raises(TransformError, match="writes 1 output"):
        check_call(Upper(), 1, 2, {})
    with pytest.raises(TransformError, match="str to str"):
        check_call(Upper(), 1, 1, {"n": 3})  # type: ignore[dict-item]
    with pytest.raises(TransformError, match="unknown parameter"):
        check_call(Upper(), 1, 1, {"n": "3"})


def test_transform_error_pickles_with_its_transform() -> None:
    error = TransformError("it failed", transform="gzip", store="s", handle="h")
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.transform, copy.store, copy.handle, str(copy)) == (
        "gzip",
        "s",
        "h",
        "it failed (store 's', handle 'h')",
    )


def test_default_names() -> None:
    class CsvSelectTransform(Transform):
        async def __call__(self, inputs: Any, outputs: Any, params: Any) -> None:
            pass

    assert default_name(CsvSelectTransform) == "csv-select"
    assert default_name(Upper) == "upper"
    assert CsvSelectTransform().name == "csv-select"


def test_csv_conditions() -> None:
    condition = parse_condition('"last name" == "O\'Brien, J"')
    assert (condition.column, condition.op, condition.value) == ("last name", "==", "O'Brien, J")
    assert parse_condition("age>=30").holds("31") and not parse_condition("age>=30").holds("4")
    assert parse_condition("name < b").holds("abe")  # text compares as text
    for bad in ("age", "age ~ 3", "== 3"):
        with pytest.raises(ValueError):
            parse_condition(bad)


class _EntryPoint:
    def __init__(self, name: str, value: str, loaded: object) -> None:
        self.name, self.value, self._loaded = name, value, loaded

    def load(self) -> object:
        if isinstance(self._loaded, Exception):
            raise self._loaded
        return self._loaded


class _Tagged(Transform):
    """A transform for the registry tests."""

    PARAMS: ClassVar[Mapping[str, str] | None] = {"tag": "a tag"}

    async def __call__(self, inputs: Any, outputs: Any, params: Any) -> None:
        pass


def test_the_registry_loads_creates_once_and_reports() -> None:
    failures: list[str] = []
    registry = TransformRegistry(
        [
            _EntryPoint("tagged", "tests:_Tagged", _Tagged),
            _EntryPoint("broken", "broken:X", ImportError("libq")),
            _EntryPoint("thing", "thing:Thing", object),
        ],
        on_load_failure=lambda info, error: failures.append(info.name),
    )
    assert [p.name for p in registry.plugins()] == ["broken", "tagged", "thing"]
    first = registry.create("tagged")
    assert first is registry.create("tagged") and first.name == "tagged"
    assert first.logger.name == "asyncstore.transforms.tagged"
    description = registry.describe("tagged")
    assert description.summary == "A transform for the registry tests."
    assert description.params == {"tag": "a tag"}
    with pytest.raises(PluginLoadError, match="libq"):
        registry.load("broken")
    assert "not a subclass" in (registry.describe("thing").error or "")
    assert failures == ["broken", "thing"]
    with pytest.raises(PluginNotFoundError, match="installed: broken, tagged, thing"):
        registry.get("nope")
