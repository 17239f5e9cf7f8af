"""The checks every transform passes (`TransformTests`)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any, ClassVar

import anyio
import anyio.lowlevel
import pytest

from asyncstore.errors import TransformError
from asyncstore.memory import MemoryModule
from asyncstore.testing._base import SourceFailed, SuiteBase, expect_bytes
from asyncstore.testing._transform_run import (
    Produced,
    RecordingOutput,
    Sample,
    run_on_bytes,
    sample_stream,
)
from asyncstore.transforms._contract import Transform
from asyncstore.transforms._execute import resolve
from asyncstore.transforms._run import run_transform
from asyncstore.transforms._streams import InputStream

__all__ = ["TransformTests"]


def _sample(item: Sample | bytes) -> Sample:
    return item if isinstance(item, Sample) else Sample(bytes(item))


class _Gate:
    """An input that gives its first chunk, says so, then waits forever (or fails)."""

    def __init__(self, sample: Sample, *, fail: bool) -> None:
        self.sample = sample
        self.fail = fail
        self.started = anyio.Event()
        self.closed = False

    async def _chunks(self) -> AsyncIterator[bytes]:
        try:
            half = max(1, len(self.sample.data) // 2)
            yield self.sample.data[:half]
            self.started.set()
            if self.fail:
                raise SourceFailed("the input failed midway")
            await anyio.sleep_forever()
        finally:
            self.closed = True

    def stream(self) -> InputStream:
        return InputStream(self.sample.info(), chunks=self._chunks())


class TransformTests(SuiteBase):
    """The checks every transform passes; subclass it and define the ``transform`` fixture.

    Knobs (class attributes):
        sample_inputs: One call's inputs (bytes or `Sample`), which the transform accepts.
        params: The parameters of that call.
        other_samples: More calls' inputs, run at once with the first on one instance.
        bad_params: Parameter sets the transform must refuse before any I/O.
        bad_inputs: Inputs (one call's) the transform must fail on.
        check_process: Whether to check the transform in a worker process too.
    """

    sample_inputs: ClassVar[Sequence[Sample | bytes]] = (b"sample bytes\n" * 10000,)
    params: ClassVar[Mapping[str, str]] = {}
    other_samples: ClassVar[Sequence[Sequence[Sample | bytes]]] = ()
    bad_params: ClassVar[Sequence[Mapping[str, str]]] = ()
    bad_inputs: ClassVar[Sequence[Sequence[Sample | bytes]]] = ()
    check_process: ClassVar[bool] = True

    @pytest.fixture
    def transform(self) -> Transform | str:
        """The transform under test: an instance, or an installed transform's name."""
        raise NotImplementedError("define the transform fixture")

    def _samples(self) -> list[Sample]:
        return [_sample(item) for item in self.sample_inputs]

    async def _expected(self, transform: Transform | str) -> list[Produced]:
        return await run_on_bytes(transform, self._samples(), params=self.params)

    # ---- the contract of outputs ---------------------------------------------------------

    async def test_metadata_comes_before_data(self, transform: Transform | str) -> None:
        for produced in await self._expected(transform):
            events = list(produced.events)
            if "write" in events:
                first_write = events.index("write")
                assert "metadata" not in events[first_write:], events
            assert events[-1] == "close", events

    async def test_outputs_end_closed(self, transform: Transform | str) -> None:
        instance = resolve(transform)
        outputs = [RecordingOutput(transform=instance.name) for _ in range(instance.OUTPUTS)]
        streams = [sample_stream(sample) for sample in self._samples()]
        from asyncstore.transforms._execute import check_call, execute

        given = check_call(instance, len(streams), len(outputs), self.params)
        await execute(instance, streams, outputs, given)
        for output in outputs:
            assert output.closed
            with pytest.raises(TransformError):
                await output.write(b"late")
            with pytest.raises(TransformError):
                output.set_metadata({})

    async def test_calls_at_once_give_what_they_give_alone(
        self, transform: Transform | str
    ) -> None:
        calls = [self._samples()] + [[_sample(s) for s in call] for call in self.other_samples]
        alone = [await run_on_bytes(transform, call, params=self.params) for call in calls]
        together: list[list[Produced] | None] = [None] * len(calls)

        async def one(index: int) -> None:
            together[index] = await run_on_bytes(transform, calls[index], params=self.params)

        async with anyio.create_task_group() as group:
            for index in range(len(calls)):
                group.start_soon(one, index)
        for index, (call, expected) in enumerate(zip(together, alone, strict=True)):
            assert call is not None and len(call) == len(expected)
            for output, (got, want) in enumerate(zip(call, expected, strict=True)):
                expect_bytes(
                    got.data,
                    want.data,
                    f"call {index} run beside others, output {output}, against the same call alone",
                )

    # ---- failures ------------------------------------------------------------------------

    async def test_bad_params_are_refused_before_any_io(self, transform: Transform | str) -> None:
        instance = resolve(transform)
        refused = list(self.bad_params)
        if instance.PARAMS is not None:
            refused.append({**self.params, "no-such-parameter": "1"})
        if not refused:
            pytest.skip("the transform accepts any parameter and no bad_params are given")
        for params in refused:
            gate = _Gate(self._samples()[0], fail=False)
            streams = [gate.stream()] + [sample_stream(s) for s in self._samples()[1:]]
            async with MemoryModule() as store:
                outputs = [(store, f"out{index}") for index in range(instance.OUTPUTS)]
                with pytest.raises(TransformError) as caught:
                    await run_transform(transform, inputs=streams, outputs=outputs, params=params)
                assert [info async for info in store.list()] == []
            assert caught.value.transform == instance.name
            assert not gate.started.is_set(), f"{params} was refused only after reading"

    async def test_failures_are_transform_errors_and_store_nothing(
        self, transform: Transform | str
    ) -> None:
        if not self.bad_inputs:
            pytest.skip("no bad_inputs given")
        instance = resolve(transform)
        for inputs in self.bad_inputs:
            async with MemoryModule() as store:
                keys = [f"out{index}" for index in range(instance.OUTPUTS)]
                for key in keys:
                    await store.put(b"old", key=key)
                streams = [sample_stream(_sample(item)) for item in inputs]
                with pytest.raises(TransformError) as caught:
                    await run_transform(
                        transform,
                        inputs=streams,
                        outputs=[(store, key) for key in keys],
                        params=self.params,
                    )
                assert caught.value.transform == instance.name
                assert caught.value.__cause__ is not None
                for key in keys:
                    async with await store.get_read_stream(key) as stream:
                        assert await stream.read() == b"old"

    async def test_a_failing_input_stores_nothing(self, transform: Transform | str) -> None:
        instance = resolve(transform)
        gate = _Gate(self._samples()[0], fail=True)
        streams = [gate.stream()] + [sample_stream(s) for s in self._samples()[1:]]
        outputs: list[Any] = []
        async with MemoryModule() as store:
            for index in range(instance.OUTPUTS):
                await store.put(b"old", key=f"out{index}")
                outputs.append((store, f"out{index}"))
            with pytest.raises(SourceFailed):
                await run_transform(transform, inputs=streams, outputs=outputs, params=self.params)
            for index in range(instance.OUTPUTS):
                async with await store.get_read_stream(f"out{index}") as stream:
                    assert await stream.read() == b"old"
        assert gate.closed

    async def test_cancellation_stops_it_and_stores_nothing(
        self, transform: Transform | str
    ) -> None:
        instance = resolve(transform)
        gate = _Gate(self._samples()[0], fail=False)
        streams = [gate.stream()] + [sample_stream(s) for s in self._samples()[1:]]
        async with MemoryModule() as store:
            outputs = [(store, f"out{index}") for index in range(instance.OUTPUTS)]
            with anyio.fail_after(10):  # the run must end promptly once cancelled
                async with anyio.create_task_group() as group:

                    async def run() -> None:
                        await run_transform(
                            transform, inputs=streams, outputs=outputs, params=self.params
                        )

                    group.start_soon(run)
                    await gate.started.wait()
                    await anyio.lowlevel.checkpoint()
                    group.cancel_scope.cancel()
            assert [info async for info in store.list()] == []
        assert gate.closed

    # ---- isolation -----------------------------------------------------------------------

    async def test_same_bytes_in_a_worker_process(self, transform: Transform | str) -> None:
        if not self.check_process:
            pytest.skip("check_process is False")
        inline = await self._expected(transform)
        isolated = await run_on_bytes(
            transform, self._samples(), params=self.params, isolation="process"
        )
        assert len(isolated) == len(inline)
        for output, (got, want) in enumerate(zip(isolated, inline, strict=True)):
            expect_bytes(got.data, want.data, f"output {output} in a worker process")
            assert (got.metadata, got.content_type) == (want.metadata, want.content_type)
