"""The pytest plugin (``pytest11`` entry point) of the conformance suite.

It registers `asyncstore.testing` for pytest's assertion rewriting, so that a failing check
shows the values it compared next to its message; this must happen before the suite is
imported, which is why this module lives outside `asyncstore.testing` and imports nothing of it.

It also picks the async runner for the suite: `asyncstore.testing.StorageModuleTests` runs on
anyio's pytest plugin (asyncio by default, trio when the subclass overrides
``anyio_backend``). When pytest-asyncio is in auto mode, or the subclass (or its module)
carries ``pytest.mark.asyncio``, pytest-asyncio runs it instead, so that the author's
``module`` fixture and the tests share one event loop either way.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import pytest

pytest.register_assert_rewrite("asyncstore.testing")

MARKER_ATTRIBUTE = "__asyncstore_conformance__"


def _asyncio_claims(collector: pytest.Collector, obj: type) -> bool:
    config = collector.config
    if config.pluginmanager.has_plugin("asyncio"):
        mode = config.getoption("asyncio_mode", None) or config.getini("asyncio_mode")
        if mode == "auto":
            return True
    own = [mark.name for mark in getattr(obj, "pytestmark", [])]
    return "asyncio" in own or collector.get_closest_marker("asyncio") is not None


@pytest.hookimpl(hookwrapper=True)
def pytest_pycollect_makeitem(
    collector: pytest.Collector, name: str, obj: object
) -> Generator[None, Any, None]:
    """Mark conformance classes for anyio unless pytest-asyncio will run them."""
    outcome = yield
    if not (isinstance(obj, type) and getattr(obj, MARKER_ATTRIBUTE, False)):
        return
    result = outcome.get_result()
    nodes = result if isinstance(result, list) else [result]
    own = [mark.name for mark in getattr(obj, "pytestmark", [])]
    for node in nodes:
        if isinstance(node, pytest.Class) and "anyio" not in own:
            if not _asyncio_claims(collector, obj):
                node.add_marker(pytest.mark.anyio)
