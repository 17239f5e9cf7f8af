"""Installed transforms: the ``asyncstore.transforms`` entry points, found like storage modules.

Listing reads distribution metadata only; loading imports one transform; a transform that
fails to import is reported with its error and never breaks listing or the others; a name
two distributions claim is reported. Each transform is created once per registry, with a
`TransformContext` of its own.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from asyncstore.errors import PluginLoadError, PluginNotFoundError
from asyncstore.registry import EntryPointLike, PluginInfo, Registry
from asyncstore.transforms._contract import Transform, TransformContext

__all__ = [
    "TRANSFORMS_GROUP",
    "TransformDescription",
    "TransformRegistry",
    "default_transforms",
]

TRANSFORMS_GROUP = "asyncstore.transforms"
"""The entry-point group under which transforms are registered."""


@dataclass(frozen=True)
class TransformDescription:
    """A transform described by importing it."""

    plugin: PluginInfo
    """What the metadata says."""
    summary: str | None = None
    """The first line of the class docstring."""
    params: Mapping[str, str] | None = None
    """The parameters it accepts (name: description); None when it accepts any."""
    inputs: int | None = 1
    """How many inputs it takes (None: one or more)."""
    outputs: int = 1
    """How many outputs it writes."""
    error: str | None = None
    """Why it could not be loaded, or None if it loaded."""


class TransformRegistry:
    """Finds, lists, loads and creates the transforms of the ``asyncstore.transforms`` group.

    Args:
        entry_points: Entry points to use instead of the installed ones (for tests).
        on_load_failure: Called as ``callback(plugin, error)`` when a transform fails to load.
    """

    def __init__(
        self,
        entry_points: Iterable[EntryPointLike] | None = None,
        *,
        on_load_failure: Callable[[PluginInfo, BaseException], None] | None = None,
    ) -> None:
        self._plugins = Registry(entry_points, group=TRANSFORMS_GROUP)
        self._on_load_failure = on_load_failure
        self._classes: dict[str, type[Transform]] = {}
        self._instances: dict[str, Transform] = {}

    def plugins(self) -> list[PluginInfo]:
        """List every transform, sorted by name, without importing any."""
        return self._plugins.plugins()

    def get(self, name: str) -> PluginInfo:
        """Return the metadata of one transform.

        Raises:
            PluginNotFoundError: If no transform has that name; the message lists the installed.
        """
        found = {info.name: info for info in reversed(self.plugins())}
        info = found.get(name)
        if info is None:
            installed = ", ".join(sorted(found)) or "none"
            raise PluginNotFoundError(
                f"no transform named {name!r} is installed (installed: {installed})"
            )
        return info

    def load(self, name: str) -> type[Transform]:
        """Import a transform and return its class.

        Raises:
            PluginNotFoundError: If no transform has that name.
            PluginLoadError: If several distributions claim the name, or it fails to import,
                or it does not name a `Transform` subclass (chained to the cause).
        """
        if name in self._classes:
            return self._classes[name]
        info = self.get(name)
        if info.conflicts:
            raise PluginLoadError(
                f"transform {name!r} is provided by several distributions: "
                f"{info.distribution} {info.version} ({info.target}), "
                f"{', '.join(info.conflicts)}; uninstall all but one"
            )
        entry_point = self._plugins._scan()[name].entry_point
        try:
            loaded = entry_point.load()
        except Exception as exc:
            self._report(info, exc)
            raise PluginLoadError(
                f"transform {name!r} ({info.target}) failed to import: {type(exc).__name__}: {exc}"
            ) from exc
        if not (isinstance(loaded, type) and issubclass(loaded, Transform)):
            error = PluginLoadError(
                f"transform {name!r} ({info.target}) is not a subclass of "
                "asyncstore.transforms.Transform"
            )
            self._report(info, error)
            raise error
        self._classes[name] = loaded
        return loaded

    def _report(self, info: PluginInfo, error: BaseException) -> None:
        if self._on_load_failure is not None:
            self._on_load_failure(info, error)

    def create(self, name: str) -> Transform:
        """Return the transform ``name``, created on first use with its own context.

        Raises:
            PluginError: If it cannot be found or loaded.
        """
        instance = self._instances.get(name)
        if instance is None:
            instance = self.load(name)(TransformContext.for_name(name))
            self._instances[name] = instance
        return instance

    def describe(self, name: str) -> TransformDescription:
        """Import a transform and describe it; one that fails to load is described by its error.

        Raises:
            PluginNotFoundError: If no transform has that name.
        """
        info = self.get(name)
        try:
            cls = self.load(name)
        except PluginLoadError as exc:
            return TransformDescription(info, error=exc.message)
        doc = (inspect.getdoc(cls) or "").strip()
        return TransformDescription(
            info,
            summary=doc.splitlines()[0] if doc else None,
            params=None if cls.PARAMS is None else dict(cls.PARAMS),
            inputs=cls.INPUTS,
            outputs=cls.OUTPUTS,
        )


_default: TransformRegistry | None = None


def default_transforms() -> TransformRegistry:
    """Return the process-wide registry of installed transforms."""
    global _default
    if _default is None:
        _default = TransformRegistry()
    return _default
