"""Testing transforms: run one on bytes in memory, and the checks every transform passes.

```python
import pytest
from asyncstore.testing.transforms import TransformTests, run_on_bytes

class TestUpper(TransformTests):
    sample_inputs = (b"hello",)

    @pytest.fixture
    def transform(self):
        return UpperTransform()

async def test_upper() -> None:
    (out,) = await run_on_bytes(UpperTransform(), [b"abc"])
    assert out.data == b"ABC"
```

`TransformTests` checks that metadata comes before data, outputs end closed, calls run at once
on one instance give what they give alone, failures are `TransformError` and store nothing, a
failing input's error reaches the caller as it is, cancellation stores nothing, and (unless
``check_process`` is False) the transform gives the same bytes in a worker process. It runs
on anyio's pytest plugin like `asyncstore.testing.StorageModuleTests`.
"""

from __future__ import annotations

from asyncstore.testing._transform_checks import TransformTests
from asyncstore.testing._transform_run import (
    Produced,
    RecordingOutput,
    Sample,
    run_on_bytes,
    sample_stream,
)

__all__ = [
    "Produced",
    "RecordingOutput",
    "Sample",
    "TransformTests",
    "run_on_bytes",
    "sample_stream",
]
