"""Legacy modules with any of the original SDK's optional methods left out.

`legacy_class(missing)` builds a class, written the old way (``context`` first, module_data a
JSON string), that keeps objects in a dict and has every method except those named in
``missing``. No method calls another public one, so leaving one out breaks nothing else.
"""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import Callable, Iterable
from typing import Any

SIX = ("new_data", "assign", "get_size", "available", "delete", "statistics")
"""The optional methods whose absence changes what the adapter can do or how."""

GUIDE = frozenset({"new_data", "assign", "get_size"})
"""What a module written to the original SDK's guide (seven methods) lacks."""

CAPACITY = 1 << 30


def _object_id(module_data: str) -> str:
    object_id = json.loads(module_data)["id"]
    if not (isinstance(object_id, str) and len(object_id) == 32 and object_id.isalnum()):
        raise ValueError("not a module_data of this module")
    return object_id


def _fresh() -> str:
    return json.dumps({"id": uuid.uuid4().hex})


def _read_all(stream: Any) -> bytes:
    chunks = []
    while data := stream.read(1 << 16):
        chunks.append(data)
    return b"".join(chunks)


def __init__(self: Any, **kwargs: Any) -> None:
    self.options = kwargs
    self.objects = {}


def put(self: Any, context: Any, stream: Any) -> str:
    module_data = _fresh()
    self.objects[_object_id(module_data)] = _read_all(stream)
    return module_data


def new_data(self: Any, context: Any) -> str:
    return _fresh()


def assign(self: Any, context: Any, module_data: str, stream: Any) -> None:
    object_id = _object_id(module_data)
    self.objects[object_id] = _read_all(stream)


def available(self: Any, context: Any, module_data: str) -> bool:
    return _object_id(module_data) in self.objects


def get_read_stream(self: Any, context: Any, module_data: str) -> io.BytesIO:
    return io.BytesIO(self.objects[_object_id(module_data)])


def get_size(self: Any, context: Any, module_data: str) -> int:
    return len(self.objects[_object_id(module_data)])


def delete(self: Any, context: Any, module_data: str) -> None:
    self.objects.pop(_object_id(module_data), None)


def statistics(self: Any, context: Any) -> str:
    used = sum(map(len, list(self.objects.values())))
    capacity = {"total": CAPACITY, "used": used, "free": CAPACITY - used}
    return json.dumps({"capacity": capacity, "objects": len(self.objects)})


def capabilities(self: Any, context: Any) -> dict[str, Any]:
    return {"cdmi_encryption": []}


_METHODS: dict[str, Callable[..., Any]] = {
    "__init__": __init__,
    "put": put,
    "new_data": new_data,
    "assign": assign,
    "available": available,
    "get_read_stream": get_read_stream,
    "get_size": get_size,
    "delete": delete,
    "statistics": statistics,
    "capabilities": capabilities,
}


def legacy_class(missing: Iterable[str] = ()) -> type:
    """Return a legacy module class with every method except those in ``missing``."""
    left_out = set(missing)
    name = "Without_" + "_".join(sorted(left_out)) if left_out else "Complete"
    body = {k: v for k, v in _METHODS.items() if k not in left_out}
    body["__doc__"] = "Keeps objects in a dict."
    return type(name, (), body)
