"""Stream transforms (storlet-style): code run on stored objects' bytes, as they stream.

A transform is a `Transform` subclass deployed under the ``asyncstore.transforms`` entry-point
group. Run one with `run_transform` (stored objects in, stored objects or a stream out), on
reads and writes through the ``transform`` middleware, or with ``asyncstore run``; in this
process or, with ``isolation="process"``, in a worker process with a timeout and a memory
limit. The built-in transforms (`identity`, `gzip`, `checksum`, `csv-select`) are each a
worked example, in a module of their own.

```python
import asyncstore

result = await asyncstore.run_transform(
    "gzip", inputs=[(store, "logs/app.log")], outputs=[(store, "logs/app.log.gz")]
)
```
"""

from __future__ import annotations

from asyncstore.transforms._contract import InputInfo, Transform, TransformContext
from asyncstore.transforms._execute import DEFAULT_MEMORY_LIMIT, DEFAULT_TIMEOUT, Isolation
from asyncstore.transforms._protocol import RemoteError
from asyncstore.transforms._registry import (
    TRANSFORMS_GROUP,
    TransformDescription,
    TransformRegistry,
    default_transforms,
)
from asyncstore.transforms._run import OutputResult, TransformResult, run_transform
from asyncstore.transforms._streams import InputStream, OutputStream

__all__ = [
    "DEFAULT_MEMORY_LIMIT",
    "DEFAULT_TIMEOUT",
    "TRANSFORMS_GROUP",
    "InputInfo",
    "InputStream",
    "Isolation",
    "OutputResult",
    "OutputStream",
    "RemoteError",
    "Transform",
    "TransformContext",
    "TransformDescription",
    "TransformRegistry",
    "TransformResult",
    "default_transforms",
    "run_transform",
]
