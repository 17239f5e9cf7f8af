"""The services a host offers the modules it creates."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from asyncstore.module import StorageModule

__all__ = ["MetricsHook", "ModuleContext"]

MetricsHook = Callable[[str, float, Mapping[str, str]], None]
"""Called as ``hook(metric_name, value, tags)``; must not block."""


def _no_module(spec: str) -> StorageModule:
    from asyncstore.errors import ConfigError

    raise ConfigError(f"this host offers no other stores (asked for {spec!r})")


@dataclass(frozen=True)
class ModuleContext:
    """What a module constructor that accepts ``context=`` receives from its host.

    A module that obtains other modules through `get_module` owns them: it must close them in
    its own `aclose`.
    """

    store_name: str
    """The name of the store being created (a config name, or the URL without its query)."""
    logger: logging.Logger = field(default_factory=lambda: logging.getLogger("asyncstore"))
    """A logger for the module's messages; never log secrets to it."""
    metrics: MetricsHook | None = None
    """A hook to report metrics to, or None."""
    get_module: Callable[[str], StorageModule] = _no_module
    """Create another configured module from a store name or URL (how wrappers find their
    inner stores)."""
