"""The conformance suite every storage module runs: subclass, give one fixture, done.

```python
import pytest
from asyncstore.testing import StorageModuleTests

class TestMyStore(StorageModuleTests):
    @pytest.fixture
    async def module(self, tmp_path):
        async with MyStore(root=tmp_path) as store:
            yield store
```

The fixture yields a fresh, empty module. The suite checks every method's contract, and skips
only the checks whose capability `capabilities()` declares absent. It runs on anyio's pytest
plugin (asyncio by default; override the ``anyio_backend`` fixture with
``params=["asyncio", "trio"]`` to add trio). With pytest-asyncio in auto mode, or with
``pytest.mark.asyncio`` on the subclass (and ``pytest_asyncio.fixture`` for the module
fixture), pytest-asyncio runs it instead. Knobs are class attributes: see `SuiteBase`.

A module that accepts no writes declares ``capabilities()["writable"]`` False (and
``new_data``, ``assign``, ``delete`` and the conditions on writes False too), and its suite
overrides the `SuiteBase.seed` hook to store the objects the checks read through a writable
store beneath it: the reading checks run over them, the writing checks skip, and
`ReadOnlyTests` checks that every write is refused.
"""

from __future__ import annotations

from asyncstore.testing._base import MiB, SourceFailed, SuiteBase, failing_source
from asyncstore.testing._conditions import ConditionTests
from asyncstore.testing._listing import LIST_ORDERS, ListTests
from asyncstore.testing._objects import INVALID_KEYS, ObjectTests
from asyncstore.testing._readonly import ReadOnlyTests
from asyncstore.testing._reads import ReadTests
from asyncstore.testing._writes import WriteTests

__all__ = [
    "INVALID_KEYS",
    "LIST_ORDERS",
    "MiB",
    "SourceFailed",
    "StorageModuleTests",
    "SuiteBase",
    "failing_source",
]


class StorageModuleTests(
    WriteTests, ReadTests, ObjectTests, ListTests, ConditionTests, ReadOnlyTests
):
    """The whole conformance suite; subclass it and define the ``module`` fixture."""
