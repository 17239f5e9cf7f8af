"""Plugin authors can run the suite with anyio's plugin or with pytest-asyncio, any mode."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ANYIO = """
import pytest
from asyncstore.memory import MemoryModule
from asyncstore.testing import StorageModuleTests

class TestPlain(StorageModuleTests):
    @pytest.fixture
    async def module(self):
        async with MemoryModule() as module:
            yield module
"""

TRIO = (
    ANYIO
    + """
class TestTrio(StorageModuleTests):
    @pytest.fixture
    def anyio_backend(self):
        return "trio"

    @pytest.fixture
    async def module(self):
        import sniffio
        assert sniffio.current_async_library() == "trio"
        async with MemoryModule() as module:
            yield module
"""
)

PYTEST_ASYNCIO_STRICT = """
import asyncio
import pytest
import pytest_asyncio
from asyncstore.memory import MemoryModule
from asyncstore.testing import StorageModuleTests

@pytest.mark.asyncio
class TestStrict(StorageModuleTests):
    @pytest_asyncio.fixture
    async def module(self):
        loop = asyncio.get_running_loop()
        async with MemoryModule() as module:
            module.loop = loop
            yield module

    async def test_fixture_shares_the_loop(self, module):
        assert module.loop is asyncio.get_running_loop()
"""

PYTEST_ASYNCIO_AUTO = """
import asyncio
import pytest
from asyncstore.memory import MemoryModule
from asyncstore.testing import StorageModuleTests

class TestAuto(StorageModuleTests):
    @pytest.fixture
    async def module(self):
        loop = asyncio.get_running_loop()
        async with MemoryModule() as module:
            module.loop = loop
            yield module

    async def test_fixture_shares_the_loop(self, module):
        assert module.loop is asyncio.get_running_loop()
"""


def run(directory: Path, source: str, *options: str) -> str:
    (directory / "test_suite.py").write_text(source)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *options, "test_suite.py"],
        cwd=directory,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    return result.stdout


def passed(output: str) -> int:
    match = re.search(r"(\d+) passed", output)
    assert match, output
    return int(match.group(1))


@pytest.mark.parametrize(
    ("source", "options", "minimum"),
    [
        (ANYIO, (), 100),
        (TRIO, (), 200),
        (PYTEST_ASYNCIO_STRICT, ("-o", "asyncio_mode=strict"), 100),
        (PYTEST_ASYNCIO_AUTO, ("-o", "asyncio_mode=auto"), 100),
    ],
    ids=["anyio-asyncio", "anyio-trio", "pytest-asyncio-strict", "pytest-asyncio-auto"],
)
def test_suite_runs_under(
    tmp_path: Path, source: str, options: tuple[str, ...], minimum: int
) -> None:
    options = (*options, "-o", "asyncio_default_fixture_loop_scope=function")
    output = run(tmp_path, source, *options)
    assert passed(output) >= minimum
    assert "failed" not in output and "error" not in output.lower()
