"""A contract break planted in a scratch backend is explained, by the pytest suite and by
`asyncstore check`: the check's name, what the contract expected and what came back."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli.conftest import Run
from tests.install import run_package_tests, write_dist

SCRATCH = '''
from asyncstore import MemoryModule, ObjectInfo


class OffByOne(MemoryModule):
    """Reports every object one byte larger than it is."""

    async def stat(self, handle):
        info = await super().stat(handle)
        return ObjectInfo(info.handle, info.size + 1, info.modified, info.etag)


class Crashing(MemoryModule):
    """Fails every stat with an error that is no asyncstore error."""

    async def stat(self, handle):
        raise KeyError("the index lost " + handle)
'''

SUITE = """
import pytest

from asyncstore.testing import StorageModuleTests
from scratch import OffByOne


class TestOffByOne(StorageModuleTests):
    @pytest.fixture
    async def module(self):
        async with OffByOne() as store:
            yield store
"""

EXPECTATION = "get_size() of a 12345-byte object: expected 12345, got 12346"


def scratch_site(workdir: Path) -> Path:
    site = workdir / "site"
    write_dist(
        site,
        "scratch",
        modules={"scratch": SCRATCH},
        entry_points={"offbyone": "scratch:OffByOne", "crashing": "scratch:Crashing"},
    )
    return site


def test_the_suite_explains_a_failed_check(workdir: Path) -> None:
    site = scratch_site(workdir)
    tests = workdir / "tests"
    tests.mkdir()
    (tests / "test_scratch.py").write_text(SUITE)
    result = run_package_tests(tests, "-k", "test_get_size", root=workdir, pythonpath=site)
    assert result.returncode == 1, result.stdout[-3000:]
    assert "FAILED tests/test_scratch.py::TestOffByOne::test_get_size" in result.stdout
    assert f"AssertionError: {EXPECTATION}" in result.stdout
    # Assertion rewriting is on for the suite: the compared values show too.
    assert "assert 12346 == 12345" in result.stdout


def test_check_explains_a_failed_check(cli: Run, workdir: Path) -> None:
    env = {"PYTHONPATH": str(scratch_site(workdir))}
    result = cli("check", "offbyone://", "--filter", "test_get_size", env=env)
    assert result.returncode == 1
    out = result.stdout
    assert "FAILED test_get_size" in out
    failure = out.split("FAILED test_get_size", 1)[1]
    assert f"AssertionError: {EXPECTATION}" in failure  # unwrapped, on one line
    assert "assert 12346 == 12345" in failure
    assert "_objects.py:" in failure
    assert "async def test_get_size" not in failure  # the traceback waits for --debug
    debug = cli("--debug", "check", "offbyone://", "--filter", "test_get_size", env=env)
    assert debug.returncode == 1
    traceback = debug.stdout.split("FAILED test_get_size", 1)[1]
    assert "async def test_get_size(self, module" in traceback
    assert f"E       AssertionError: {EXPECTATION}" in traceback
    report = json.loads(
        cli("check", "offbyone://", "--filter", "test_get_size", "--json", env=env).stdout
    )
    entry = report["results"]["test_get_size"]
    assert entry["outcome"] == "failed" and entry["detail"] == EXPECTATION
    assert entry["message"].startswith(f"AssertionError: {EXPECTATION}")
    assert "traceback" not in entry


def test_check_shows_the_exception_a_store_raised(cli: Run, workdir: Path) -> None:
    env = {"PYTHONPATH": str(scratch_site(workdir))}
    result = cli("check", "crashing://", "--filter", "test_stat_fields", env=env)
    assert result.returncode == 1
    failure = result.stdout.split("FAILED test_stat_fields", 1)[1]
    assert "KeyError: 'the index lost asyncstore-check-" in failure
    assert "scratch.py:" in failure
