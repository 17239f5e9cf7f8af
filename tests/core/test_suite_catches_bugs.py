"""The conformance suite fails loudly against deliberately wrong modules."""

from __future__ import annotations

import re

import pytest

BAD_MODULES = """
from __future__ import annotations

import uuid

import anyio
import pytest

from asyncstore import ObjectInfo, UnsupportedError
from asyncstore.memory import MemoryModule, _Entry
from asyncstore.streams import BytesReadStream, iter_source
from asyncstore.testing import StorageModuleTests


class WrongRangeEnd(MemoryModule):
    async def get_read_stream(self, handle, *, start=0, end=None):
        return await super().get_read_stream(handle, start=start, end=None if end is None else end + 1)


class UnsortedList(MemoryModule):
    async def list(self, prefix=""):
        for key in reversed(list(self._objects)):
            if key.startswith(prefix):
                yield self._objects[key].info


class NonAtomicOverwrite(MemoryModule):
    async def assign(self, handle, source, *, metadata=None, content_type=None):
        await super().assign(handle, b"", metadata=metadata, content_type=content_type)
        data = b""
        async for chunk in iter_source(source):
            data += bytes(chunk)
            info = ObjectInfo(handle, len(data), metadata=dict(metadata or {}))
            self._publish(handle, _Entry(data, info))
            await anyio.sleep(0)


class MissingNotFound(MemoryModule):
    async def stat(self, handle):
        entry = self._objects.get(handle)
        return entry.info if entry else ObjectInfo(handle, 0)

    async def get_read_stream(self, handle, *, start=0, end=None):
        entry = self._objects.get(handle)
        if entry is None:
            return BytesReadStream(b"", ObjectInfo(handle, 0))
        return await super().get_read_stream(handle, start=start, end=end)


class AcceptsDotDot(MemoryModule):
    async def assign(self, handle, source, *, metadata=None, content_type=None):
        data = b"".join([bytes(c) async for c in iter_source(source)])
        self._publish(handle, _Entry(data, ObjectInfo(handle, len(data))))

    async def stat(self, handle):
        if handle not in self._objects:
            raise self._not_found(handle)
        return self._objects[handle].info

    async def delete(self, handle):
        self._objects.pop(handle, None)


class PartialOnFailure(MemoryModule):
    async def assign(self, handle, source, *, metadata=None, content_type=None):
        data = bytearray()
        try:
            async for chunk in iter_source(source):
                data += chunk
        finally:
            self._publish(handle, _Entry(bytes(data), ObjectInfo(handle, len(data))))


class DeclaredAssignRefused(MemoryModule):
    # Declares assign (it overrides it) but refuses it: the suite must not call that a skip.

    async def put(self, source, *, key=None, metadata=None, content_type=None):
        handle = key or uuid.uuid4().hex
        await MemoryModule.assign(self, handle, source, metadata=metadata, content_type=content_type)
        return handle

    async def assign(self, handle, source, *, metadata=None, content_type=None):
        raise UnsupportedError("assign is declared but refused", store=self.name)


def suite_for(cls):
    class Suite(StorageModuleTests):
        list_page_objects = 1001

        @pytest.fixture
        async def module(self):
            async with cls() as module:
                yield module

    return Suite


TestWrongRangeEnd = suite_for(WrongRangeEnd)
TestUnsortedList = suite_for(UnsortedList)
TestNonAtomicOverwrite = suite_for(NonAtomicOverwrite)
TestMissingNotFound = suite_for(MissingNotFound)
TestAcceptsDotDot = suite_for(AcceptsDotDot)
TestPartialOnFailure = suite_for(PartialOnFailure)
TestDeclaredAssignRefused = suite_for(DeclaredAssignRefused)
TestCorrectMemory = suite_for(MemoryModule)
"""

EXPECTED_FAILURES = {
    "TestWrongRangeEnd": [
        "test_range_start_and_end",
        "test_range_is_half_open",
        "test_range_end_only",
    ],
    "TestUnsortedList": [
        "test_list_is_in_lexicographic_order",
        "test_list_paginates_beyond_one_thousand",
    ],
    "TestNonAtomicOverwrite": ["test_concurrent_readers_never_see_a_mix"],
    "TestMissingNotFound": [
        "test_unknown_handle_raises_not_found[stat]",
        "test_unknown_handle_raises_not_found[get_read_stream]",
        "test_new_data_is_not_available",
        "test_delete",
    ],
    "TestAcceptsDotDot": [
        "test_invalid_keys_are_rejected_before_io['../escape']",
        "test_invalid_keys_are_rejected_before_io['a/..']",
    ],
    "TestDeclaredAssignRefused": [
        "test_assign_after_new_data",
        "test_assign_to_a_chosen_key",
        "test_failing_source_on_new_data_leaves_it_unavailable",
    ],
    "TestPartialOnFailure": [
        "test_failing_source_stores_nothing",
        "test_failing_source_keeps_the_old_object",
        "test_list_skips_failed_puts",
    ],
}


@pytest.fixture(scope="module")
def outcome(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, set[str]], str]:
    import subprocess
    import sys

    directory = tmp_path_factory.mktemp("bad")
    (directory / "test_bad_modules.py").write_text(BAD_MODULES)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-rf",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:randomly",
            "test_bad_modules.py",
        ],
        cwd=directory,
        capture_output=True,
        text=True,
        timeout=600,
    )
    failed: dict[str, set[str]] = {}
    for match in re.finditer(r"^FAILED test_bad_modules\.py::(\w+)::(\S+)", result.stdout, re.M):
        failed.setdefault(match.group(1), set()).add(match.group(2))
    return failed, result.stdout


@pytest.mark.parametrize("suite", sorted(EXPECTED_FAILURES))
def test_the_suite_catches_the_bug(outcome: tuple[dict[str, set[str]], str], suite: str) -> None:
    failed, output = outcome
    missing = [name for name in EXPECTED_FAILURES[suite] if name not in failed.get(suite, set())]
    assert not missing, f"{suite}: expected these checks to fail: {missing}\n{output[-3000:]}"


def test_the_correct_module_passes(outcome: tuple[dict[str, set[str]], str]) -> None:
    failed, output = outcome
    assert "TestCorrectMemory" not in failed, output[-3000:]
    assert re.search(r"\d+ passed", output)
