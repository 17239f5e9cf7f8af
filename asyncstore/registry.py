"""The plugin registry: storage modules installed under the ``asyncstore.modules`` entry points.

Listing reads distribution metadata only and imports nothing. Loading imports one plugin;
a plugin that fails to import is reported with its error and never breaks listing or the
other plugins. A name claimed by two distributions is reported, never silently resolved.
"""

from __future__ import annotations

import inspect
import re
import sys
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from asyncstore.errors import ConfigError, PluginLoadError, PluginNotFoundError
from asyncstore.module import StorageModule

if TYPE_CHECKING:
    # Only creating a module needs it: listing plugins does without logging's import.
    from asyncstore.context import ModuleContext

__all__ = [
    "MODULES_GROUP",
    "OptionInfo",
    "PluginDescription",
    "PluginInfo",
    "Registry",
    "default_registry",
]

MODULES_GROUP = "asyncstore.modules"
"""The entry-point group under which storage modules are registered."""


class EntryPointLike(Protocol):
    """The part of `importlib.metadata.EntryPoint` the registry uses."""

    @property
    def name(self) -> str: ...
    @property
    def value(self) -> str: ...
    def load(self) -> Any: ...


@dataclass(frozen=True)
class PluginInfo:
    """One installed plugin, as its distribution's metadata describes it (nothing imported)."""

    name: str
    """The plugin name, also its URL scheme."""
    target: str
    """The ``module:attribute`` the entry point names."""
    distribution: str | None
    """The distribution that installed it."""
    version: str | None
    """That distribution's version."""
    conflicts: tuple[str, ...] = ()
    """Other distributions that claim the same name (``"dist version"``); empty if none."""


@dataclass(frozen=True)
class OptionInfo:
    """One keyword option a module's constructor accepts."""

    name: str
    """The option name."""
    required: bool
    """Whether the option must be given."""
    default: str | None
    """The default, as its repr, or None when required."""
    annotation: str
    """The annotated type, as text."""
    description: str = ""
    """The description from the class docstring's ``Args:`` section."""


@dataclass(frozen=True)
class PluginDescription:
    """A plugin described by importing it."""

    plugin: PluginInfo
    """What the metadata says."""
    summary: str | None = None
    """The first line of the class docstring."""
    capabilities: dict[str, Any] | None = None
    """The class's capabilities."""
    options: tuple[OptionInfo, ...] = ()
    """The options its constructor accepts."""
    error: str | None = None
    """Why it could not be loaded, or None if it loaded."""


@dataclass
class _Entry:
    info: PluginInfo
    entry_point: EntryPointLike
    extra: list[PluginInfo] = field(default_factory=list)


def _installed_entry_points(group: str) -> list[EntryPointLike]:
    if sys.version_info >= (3, 12):
        from importlib.metadata import entry_points
    else:
        from importlib_metadata import entry_points
    return list(entry_points(group=group))


def _dist_of(entry_point: EntryPointLike) -> tuple[str | None, str | None]:
    dist = getattr(entry_point, "dist", None)
    if dist is None:
        return None, None
    # Name and Version open the metadata file: reading them needs no email parser (whose
    # import alone costs a listing of plugins a third of its time).
    text = dist.read_text("METADATA") or dist.read_text("PKG-INFO") or ""
    headers: dict[str, str] = {}
    for line in text.splitlines():
        if not line or line[0].isspace():
            break
        name, _, value = line.partition(":")
        headers.setdefault(name.strip().lower(), value.strip())
        if "name" in headers and "version" in headers:
            return headers["name"], headers["version"]
    return dist.metadata["Name"] or dist.name, dist.version


class Registry:
    """Finds, lists, loads and instantiates plugins of one entry-point group.

    Args:
        entry_points: Entry points to use instead of the installed ones (for tests and
            embedding); anything with ``name``, ``value`` and ``load()``.
        group: The entry-point group to read when ``entry_points`` is not given.
        on_load_failure: Called as ``callback(plugin, error)`` when a plugin fails to load.
    """

    def __init__(
        self,
        entry_points: Iterable[EntryPointLike] | None = None,
        *,
        group: str = MODULES_GROUP,
        on_load_failure: Callable[[PluginInfo, BaseException], None] | None = None,
    ) -> None:
        self._given = None if entry_points is None else list(entry_points)
        self._group = group
        self._on_load_failure = on_load_failure
        self._entries: dict[str, _Entry] | None = None
        self._loaded: dict[str, type[StorageModule]] = {}

    def _scan(self) -> dict[str, _Entry]:
        if self._entries is not None:
            return self._entries
        found = self._given if self._given is not None else _installed_entry_points(self._group)
        entries: dict[str, _Entry] = {}
        for entry_point in found:
            dist, version = _dist_of(entry_point)
            info = PluginInfo(entry_point.name, entry_point.value, dist, version)
            current = entries.get(entry_point.name)
            if current is None:
                entries[entry_point.name] = _Entry(info, entry_point)
            elif (current.info.distribution, current.info.target) != (dist, entry_point.value):
                current.extra.append(info)
        for entry in entries.values():
            if entry.extra:
                claims = [entry.info, *entry.extra]
                labels = tuple(f"{c.distribution} {c.version} ({c.target})" for c in claims)
                entry.info = PluginInfo(
                    entry.info.name,
                    entry.info.target,
                    entry.info.distribution,
                    entry.info.version,
                    conflicts=labels[1:],
                )
                entry.extra = [
                    PluginInfo(c.name, c.target, c.distribution, c.version, conflicts=labels[:1])
                    for c in entry.extra
                ]
        self._entries = entries
        return entries

    def plugins(self) -> list[PluginInfo]:
        """List every plugin, sorted by name, without importing any.

        A name claimed by several distributions appears once per claim, each with its
        `PluginInfo.conflicts` filled in.
        """
        result: list[PluginInfo] = []
        for name in sorted(self._scan()):
            entry = self._scan()[name]
            result.append(entry.info)
            result.extend(entry.extra)
        return result

    def get(self, name: str) -> PluginInfo:
        """Return the metadata of one plugin.

        Raises:
            PluginNotFoundError: If no plugin has that name; the message lists the installed.
        """
        entries = self._scan()
        entry = entries.get(name)
        if entry is None:
            installed = ", ".join(sorted(entries)) or "none"
            raise PluginNotFoundError(
                f"no storage module named {name!r} is installed (installed: {installed})"
            )
        return entry.info

    def load(self, name: str) -> type[StorageModule]:
        """Import a plugin and return its `StorageModule` subclass.

        Raises:
            PluginNotFoundError: If no plugin has that name.
            PluginLoadError: If several distributions claim the name, or it fails to import,
                or it does not name a `StorageModule` subclass (chained to the cause).
        """
        if name in self._loaded:
            return self._loaded[name]
        info = self.get(name)
        if info.conflicts:
            raise PluginLoadError(
                f"storage module {name!r} is provided by several distributions: "
                f"{info.distribution} {info.version} ({info.target}), "
                f"{', '.join(info.conflicts)}; uninstall all but one"
            )
        entry_point = self._scan()[name].entry_point
        try:
            loaded = entry_point.load()
        except Exception as exc:
            self._report(info, exc)
            raise PluginLoadError(
                f"storage module {name!r} ({info.target}) failed to import: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        if not (isinstance(loaded, type) and issubclass(loaded, StorageModule)):
            error = PluginLoadError(
                f"storage module {name!r} ({info.target}) is not a StorageModule subclass"
            )
            self._report(info, error)
            raise error
        self._loaded[name] = loaded
        return loaded

    def _report(self, info: PluginInfo, error: BaseException) -> None:
        if self._on_load_failure is not None:
            self._on_load_failure(info, error)

    def describe(self, name: str) -> PluginDescription:
        """Import a plugin and describe it; a plugin that fails to load is described by its error.

        Raises:
            PluginNotFoundError: If no plugin has that name.
        """
        info = self.get(name)
        try:
            cls = self.load(name)
        except PluginLoadError as exc:
            return PluginDescription(info, error=exc.message)
        doc = inspect.getdoc(cls) or ""
        return PluginDescription(
            info,
            summary=doc.strip().splitlines()[0] if doc.strip() else None,
            capabilities=cls.class_capabilities(),
            options=module_options(cls),
        )

    def create(
        self,
        name: str,
        options: Mapping[str, Any] | None = None,
        *,
        context: ModuleContext | None = None,
    ) -> StorageModule:
        """Load a plugin and instantiate it with keyword options.

        String values are converted to the option's annotated type (int, float, bool), as
        options from URLs and environment variables are strings.

        Raises:
            ConfigError: If an option is unknown or a required one is missing (the message
                lists the accepted options), or a value cannot be converted.
            PluginError: If the plugin cannot be found or loaded.
        """
        cls = self.load(name)
        if context is None:
            from asyncstore.context import ModuleContext

            context = ModuleContext(name)
        return create_module(cls, options or {}, context=context)


_default: Registry | None = None


def default_registry() -> Registry:
    """Return the process-wide registry of installed plugins."""
    global _default
    if _default is None:
        _default = Registry()
    return _default


# ---- options --------------------------------------------------------------------------------

_ARG_LINE = re.compile(r"^\s{4}(\w+)(?:\s*\([^)]*\))?:\s*(.*)$")


def _arg_descriptions(cls: type) -> dict[str, str]:
    doc = inspect.getdoc(cls) or ""
    descriptions: dict[str, str] = {}
    in_args = False
    current: str | None = None
    for line in doc.splitlines():
        if line.strip() in ("Args:", "Arguments:"):
            in_args = True
            continue
        if in_args:
            if line and not line.startswith(" "):
                break
            match = _ARG_LINE.match(line)
            if match:
                current = match.group(1)
                descriptions[current] = match.group(2).strip()
            elif current and line.strip():
                descriptions[current] += " " + line.strip()
    return descriptions


def _parameters(cls: type[StorageModule]) -> tuple[list[inspect.Parameter], bool, bool]:
    """Return (keyword options, accepts **kwargs, accepts context)."""
    if cls.__init__ is object.__init__:
        return [], False, False  # no constructor of its own: no options at all
    signature = inspect.signature(cls.__init__)
    params = list(signature.parameters.values())[1:]
    options = [
        p
        for p in params
        if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD) and p.name != "context"
    ]
    var_kw = any(p.kind is p.VAR_KEYWORD for p in params)
    return options, var_kw, any(p.name == "context" for p in params)


def module_options(cls: type[StorageModule]) -> tuple[OptionInfo, ...]:
    """Describe the keyword options a module class accepts."""
    options, _, _ = _parameters(cls)
    descriptions = _arg_descriptions(cls)
    hints = _hints(cls)
    result = []
    for p in options:
        required = p.default is inspect.Parameter.empty
        annotation = hints.get(p.name, p.annotation)
        text = (
            ""
            if annotation is inspect.Parameter.empty
            else (annotation if isinstance(annotation, str) else _type_text(annotation))
        )
        result.append(
            OptionInfo(
                p.name,
                required,
                None if required else repr(p.default),
                text,
                descriptions.get(p.name, ""),
            )
        )
    return tuple(result)


def _type_text(annotation: Any) -> str:
    if isinstance(annotation, type):
        return annotation.__name__
    return str(annotation).replace("typing.", "")


def _hints(cls: type) -> dict[str, Any]:
    try:
        return typing.get_type_hints(cls.__init__)  # type: ignore[misc]
    except Exception:  # unresolvable annotations only cost us type conversion
        return {}


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _convert(name: str, value: Any, annotation: Any) -> Any:
    if not isinstance(value, str) or annotation is None:
        return value
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        args = typing.get_args(annotation)
    else:
        args = (annotation,)
    if str in args or Any in args:
        return value
    if type(None) in args and value.lower() in ("", "none", "null"):
        return None
    for target in args:
        if target is bool:
            if value.lower() in _TRUE:
                return True
            if value.lower() in _FALSE:
                return False
        elif target in (int, float):
            try:
                return target(value)
            except ValueError:
                continue
    if any(t in (bool, int, float) for t in args):
        expected = " or ".join(_type_text(t) for t in args)
        raise ConfigError(f"option {name!r} must be {expected}, not {value!r}")
    return value


def create_module(
    cls: type[StorageModule], options: Mapping[str, Any], *, context: ModuleContext
) -> StorageModule:
    """Instantiate ``cls`` with checked, converted keyword options and maybe ``context``.

    Raises:
        ConfigError: If an option is unknown, missing or of the wrong type.
    """
    params, var_kw, takes_context = _parameters(cls)
    accepted = {p.name: p for p in params}
    listing = (
        ", ".join(f"{p.name}{'' if p.default is inspect.Parameter.empty else '?'}" for p in params)
        or "none"
    )
    if not var_kw:
        unknown = sorted(set(options) - set(accepted))
        if unknown:
            raise ConfigError(
                f"unknown option(s) {', '.join(map(repr, unknown))} for store "
                f"{context.store_name!r} ({cls.__name__}); accepted: {listing} "
                "(? marks optional)"
            )
    missing = [
        p.name for p in params if p.default is inspect.Parameter.empty and p.name not in options
    ]
    if missing:
        raise ConfigError(
            f"missing required option(s) {', '.join(map(repr, missing))} for store "
            f"{context.store_name!r} ({cls.__name__}); accepted: {listing} (? marks optional)"
        )
    hints = _hints(cls)
    kwargs = {k: _convert(k, v, hints.get(k)) for k, v in options.items()}
    if takes_context:
        kwargs["context"] = context
    module = cls(**kwargs)
    module.name = context.store_name
    return module
