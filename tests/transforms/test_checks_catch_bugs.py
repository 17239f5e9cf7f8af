"""TransformTests fails transforms that break the contract (run as an author would run it)."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

from tests.install import run_package_tests

TRANSFORMS = '''
import anyio
from asyncstore.transforms import Transform


class Stateful(Transform):
    """Keeps a call's bytes on the instance: calls at once mix them up."""

    async def __call__(self, inputs, outputs, params):
        self.parts = []
        async for chunk in inputs[0]:
            self.parts.append(chunk)
            await anyio.sleep(0.001)
        outputs[0].set_metadata({})
        await outputs[0].write(b"".join(self.parts))


class Swallows(Transform):
    """Hides a failing input and writes what it got, so a truncated object is stored."""

    async def __call__(self, inputs, outputs, params):
        outputs[0].set_metadata({})
        try:
            async for chunk in inputs[0]:
                await outputs[0].write(chunk)
        except Exception:
            pass


class Good(Transform):
    """Copies its input."""

    async def __call__(self, inputs, outputs, params):
        outputs[0].set_metadata(inputs[0].info.metadata)
        async for chunk in inputs[0]:
            await outputs[0].write(chunk)
'''

TESTS = """
import pytest
from asyncstore.testing.transforms import TransformTests
from buggy import Good, Stateful, Swallows


class TestStateful(TransformTests):
    other_samples = ((b"other bytes" * 5000,), (b"third" * 9000,))
    check_process = False

    @pytest.fixture
    def transform(self):
        return Stateful()


class TestSwallows(TransformTests):
    check_process = False

    @pytest.fixture
    def transform(self):
        return Swallows()


class TestGood(TransformTests):
    @pytest.fixture
    def transform(self):
        return Good()
"""


def test_the_checks_fail_broken_transforms_and_pass_a_good_one(tmp_path: Path) -> None:
    (tmp_path / "buggy.py").write_text(textwrap.dedent(TRANSFORMS))
    (tmp_path / "test_buggy.py").write_text(textwrap.dedent(TESTS))
    # CI=1: pytest then explains a failed comparison in full, as on a CI machine; a check
    # comparing whole outputs with == took minutes to explain the Stateful failure.
    result = run_package_tests(tmp_path, "-rA", root=tmp_path, pythonpath=tmp_path, env={"CI": "1"})
    lines = re.findall(r"^(PASSED|FAILED) \S+::(\w+)::(\w+)", result.stdout, re.M)
    failed = {(cls, test) for outcome, cls, test in lines if outcome == "FAILED"}
    assert ("TestStateful", "test_calls_at_once_give_what_they_give_alone") in failed
    assert ("TestSwallows", "test_a_failing_input_stores_nothing") in failed
    assert not {cls for cls, _ in failed} & {"TestGood"}, result.stdout[-3000:]
    assert sum(1 for _, cls, _ in lines if cls == "TestGood") >= 6
