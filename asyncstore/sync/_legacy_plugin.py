"""Legacy module classes as registry plugins: `legacy_module_class`.

The registry creates modules from keyword options and reads their constructor's signature
(for URLs, config files and its error messages). `legacy_module_class` gives it a
`LegacyModule` subclass whose constructor takes the legacy class's options and builds the
legacy object.
"""

from __future__ import annotations

import inspect
import typing
from typing import Any, cast

from asyncstore.context import ModuleContext
from asyncstore.errors import ConfigError
from asyncstore.sync._legacy import LegacyModule

__all__ = ["legacy_module_class"]

_OPTION_KINDS = (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)


def _configure(
    legacy_class: type, options: dict[str, Any], context: ModuleContext | None
) -> object:
    """Build the legacy object; what its constructor rejects becomes a `ConfigError`."""
    try:
        return legacy_class(**options)
    except ConfigError:
        raise
    except (KeyError, TypeError, ValueError) as exc:
        # The original SDK's modules read their options from **kwargs: a missing one is a
        # KeyError from inside the constructor.
        store = context.store_name if context is not None else legacy_class.__name__
        if isinstance(exc, KeyError) and exc.args:
            problem = f"missing required option {exc.args[0]!r}"
        else:
            problem = f"{type(exc).__name__}: {exc}"
        raise ConfigError(
            f"the legacy module {legacy_class.__name__} of store {store!r} refused its "
            f"options: {problem}"
        ) from exc


def legacy_module_class(legacy_class: type, *, max_threads: int = 8) -> type[LegacyModule]:
    """Return a `LegacyModule` subclass that builds ``legacy_class`` from keyword options.

    Register the result under the ``asyncstore.modules`` entry-point group: the registry
    sees the legacy constructor's keyword options (for URLs, config files and its error
    messages), the legacy class's docstring, and its capabilities (what its methods make
    possible) without creating an instance. A constructor that takes ``**kwargs``, as the
    original SDK's did, accepts any option (URL values stay strings); named, annotated
    parameters are checked, converted and listed. What the constructor raises for bad
    options (a `KeyError` for a missing one, `TypeError`, `ValueError`) becomes a
    `ConfigError`.

    Args:
        legacy_class: The legacy module class, configured with keyword arguments.
        max_threads: How many legacy calls each instance runs at once.
    """
    parameters = inspect.signature(legacy_class).parameters.values()
    options = [
        p.replace(kind=inspect.Parameter.KEYWORD_ONLY)
        for p in parameters
        if p.kind in _OPTION_KINDS and p.name != "context"
    ]
    extra = [p for p in parameters if p.kind is inspect.Parameter.VAR_KEYWORD]
    try:
        hints = typing.get_type_hints(cast(Any, legacy_class).__init__)
    except Exception:  # unresolvable annotations only cost the registry's type conversion
        hints = {}

    def __init__(
        self: LegacyModule, *, context: ModuleContext | None = None, **kwargs: Any
    ) -> None:
        legacy = _configure(legacy_class, kwargs, context)
        LegacyModule.__init__(self, legacy, context=context, max_threads=max_threads)

    signature = inspect.Signature(
        [
            inspect.Parameter("self", inspect.Parameter.POSITIONAL_ONLY),
            *options,
            inspect.Parameter("context", inspect.Parameter.KEYWORD_ONLY, default=None),
            *extra,
        ]
    )
    setattr(__init__, "__signature__", signature)  # noqa: B010
    __init__.__annotations__ = {p.name: hints[p.name] for p in options if p.name in hints}
    namespace = {
        "__init__": __init__,
        "__doc__": legacy_class.__doc__ or f"The legacy module {legacy_class.__name__}.",
        "__module__": legacy_class.__module__,
        "__qualname__": legacy_class.__qualname__,
        "legacy_class": legacy_class,
    }
    return cast("type[LegacyModule]", type(legacy_class.__name__, (LegacyModule,), namespace))
