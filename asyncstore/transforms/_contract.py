"""The transform contract: the `Transform` base class, its context, and what it is told.

A transform is a class, created once per process with a `TransformContext`, whose async
``__call__(inputs, outputs, params)`` reads input streams and writes output streams. It is
deployed by naming it in the ``asyncstore.transforms`` entry-point group.
"""

from __future__ import annotations

import logging
import re
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from asyncstore.info import ObjectInfo
    from asyncstore.transforms._streams import InputStream, OutputStream

__all__ = ["InputInfo", "Transform", "TransformContext", "default_name"]

_EMPTY: Mapping[str, str] = MappingProxyType({})


@dataclass(frozen=True)
class TransformContext:
    """What a transform receives from its host when it is created."""

    name: str
    """The name the transform is deployed under (its entry-point name)."""
    logger: logging.Logger = field(
        default_factory=lambda: logging.getLogger("asyncstore.transforms")
    )
    """A logger for the transform's messages; never log secrets to it. In a worker process,
    its records are sent to the host's logger of the same name."""

    @classmethod
    def for_name(cls, name: str) -> TransformContext:
        """Return the context a host gives the transform ``name``: a logger of its own."""
        return cls(name, logging.getLogger(f"asyncstore.transforms.{name}"))


@dataclass(frozen=True)
class InputInfo:
    """What a transform knows about one of its inputs before reading it."""

    key: str | None
    """The input object's key (its handle), or None for bytes that are not stored yet."""
    size: int | None
    """How many bytes the input holds, or None when unknown (a streamed source)."""
    content_type: str | None = None
    """The input's MIME type, if known."""
    metadata: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    """The input's user metadata."""
    etag: str | None = None
    """The stored object's etag, if any."""
    store: str | None = None
    """The name of the store the input comes from, if any."""

    def __post_init__(self) -> None:
        if not isinstance(self.metadata, MappingProxyType):
            object.__setattr__(self, "metadata", MappingProxyType(dict(self.metadata)))

    @classmethod
    def from_object(cls, info: ObjectInfo, *, store: str | None = None) -> InputInfo:
        """Describe a stored object as an input."""
        return cls(
            key=info.handle,
            size=info.size,
            content_type=info.content_type,
            metadata=info.metadata,
            etag=info.etag,
            store=store,
        )

    def to_dict(self) -> dict[str, object]:
        """Return a JSON-serialisable dict of the fields."""
        return {
            "key": self.key,
            "size": self.size,
            "content_type": self.content_type,
            "metadata": dict(self.metadata),
            "etag": self.etag,
            "store": self.store,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> InputInfo:
        """Rebuild an info from `to_dict`'s output."""
        metadata = data.get("metadata") or {}
        assert isinstance(metadata, Mapping)
        size = data.get("size")
        return cls(
            key=_opt_str(data.get("key")),
            size=size if isinstance(size, int) else None,
            content_type=_opt_str(data.get("content_type")),
            metadata={str(k): str(v) for k, v in metadata.items()},
            etag=_opt_str(data.get("etag")),
            store=_opt_str(data.get("store")),
        )


def default_name(cls: type) -> str:
    """Return the name a transform class goes by when not deployed under one.

    ``CsvSelectTransform`` becomes ``csv-select``: the class name without a ``Transform``
    suffix, in lower case, with a hyphen between words.
    """
    base = cls.__name__.removesuffix("Transform") or cls.__name__
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "-", base).lower()


def _opt_str(value: object) -> str | None:
    return None if value is None else str(value)


class Transform(ABC):
    """The base class of stream transforms.

    A subclass implements `__call__`, which reads its input streams and writes its output
    streams: on each output, `OutputStream.set_metadata` (metadata and content type) comes
    before the first `OutputStream.write`. The host creates the instance once and calls it
    many times, concurrently: keep per-call state in local variables, not on ``self``.

    Whatever ``__call__`` raises reaches the caller as a `TransformError` naming the
    transform (with the original chained), and nothing is stored at any output; errors of
    the inputs and outputs themselves reach the caller unchanged.

    Class attributes a subclass may set:
        PARAMS: The parameters it accepts (name: description); any other name is refused
            before any I/O. None accepts any name.
        INPUTS: How many inputs it takes; None means one or more.
        OUTPUTS: How many outputs it writes.
        PRESERVES_SIZE: Whether every output is exactly as long as the (single) input, as for
            ``identity``; a transformed read then knows its size without running twice.

    Args:
        context: The host's services (the transform's name and a logger). A transform
            created without one gets a context named after its class.
    """

    PARAMS: ClassVar[Mapping[str, str] | None] = {}
    INPUTS: ClassVar[int | None] = 1
    OUTPUTS: ClassVar[int] = 1
    PRESERVES_SIZE: ClassVar[bool] = False

    def __init__(self, context: TransformContext | None = None) -> None:
        self.context = context or TransformContext.for_name(default_name(type(self)))

    @property
    def name(self) -> str:
        """The name the transform is deployed under."""
        return self.context.name

    @property
    def logger(self) -> logging.Logger:
        """The context's logger."""
        return self.context.logger

    def check_params(self, params: Mapping[str, str]) -> None:
        """Check the parameters of a call before any I/O; raise `ValueError` if they are bad.

        The default refuses names that `PARAMS` does not list. Override it (calling
        ``super()``) to check values too, so that a bad value fails before anything is read.
        """
        if self.PARAMS is None:
            return
        unknown = sorted(set(params) - set(self.PARAMS))
        if unknown:
            accepted = ", ".join(sorted(self.PARAMS)) or "none"
            raise ValueError(
                f"unknown parameter(s) {', '.join(map(repr, unknown))} (accepted: {accepted})"
            )

    @abstractmethod
    async def __call__(
        self,
        inputs: Sequence[InputStream],
        outputs: Sequence[OutputStream],
        params: Mapping[str, str],
    ) -> None:
        """Read ``inputs`` and write ``outputs``.

        Args:
            inputs: The input streams, in the order the caller named them; each has
                `InputStream.info`.
            outputs: The output streams; set each one's metadata before writing to it. An
                output the transform does not close is closed when it returns.
            params: The caller's parameters, already checked by `check_params`.

        Raises:
            Exception: Anything; the caller receives it as a `TransformError`.
        """

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name!r}>"
