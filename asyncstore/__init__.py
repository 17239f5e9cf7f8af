"""asyncstore: an async-native storage-module SDK.

One contract (`StorageModule`) for pluggable blob stores, the byte streams they share, the
error hierarchy, the plugin registry, and named-store configuration.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from asyncstore._lazy import lazy_attributes

# The contract and its data: cheap to import, always loaded.
from asyncstore.errors import (
    AlreadyExistsError,
    ConfigError,
    IntegrityError,
    InvalidConditionError,
    InvalidKeyError,
    InvalidMetadataError,
    InvalidRangeError,
    NotFoundError,
    PermissionDeniedError,
    PluginError,
    PluginLoadError,
    PluginNotFoundError,
    PreconditionFailedError,
    StorageError,
    StorageFullError,
    TransformError,
    TransientError,
    UnsupportedError,
)
from asyncstore.info import Handle, ObjectInfo
from asyncstore.keys import validate_key, validate_metadata, validate_prefix
from asyncstore.module import StorageModule, Store, check_conditions
from asyncstore.streams import ByteSource, ReadStream, iter_source

if TYPE_CHECKING:
    from asyncstore.config import Config, open_store
    from asyncstore.context import ModuleContext
    from asyncstore.memory import MemoryModule
    from asyncstore.registry import PluginDescription, PluginInfo, Registry
    from asyncstore.transforms import (
        InputInfo,
        InputStream,
        OutputStream,
        Transform,
        TransformContext,
        TransformResult,
        run_transform,
    )

__version__ = "0.1.0"

__all__ = [
    "AlreadyExistsError",
    "ByteSource",
    "Config",
    "ConfigError",
    "Handle",
    "InputInfo",
    "InputStream",
    "IntegrityError",
    "InvalidConditionError",
    "InvalidKeyError",
    "InvalidMetadataError",
    "InvalidRangeError",
    "MemoryModule",
    "ModuleContext",
    "NotFoundError",
    "ObjectInfo",
    "OutputStream",
    "PermissionDeniedError",
    "PluginDescription",
    "PluginError",
    "PluginInfo",
    "PluginLoadError",
    "PluginNotFoundError",
    "PreconditionFailedError",
    "ReadStream",
    "Registry",
    "StorageError",
    "StorageFullError",
    "StorageModule",
    "Store",
    "Transform",
    "TransformContext",
    "TransformError",
    "TransformResult",
    "TransientError",
    "UnsupportedError",
    "check_conditions",
    "describe_plugin",
    "iter_source",
    "open_store",
    "plugins",
    "run_transform",
    "validate_key",
    "validate_metadata",
    "validate_prefix",
]

# Loaded on first use, so that `import asyncstore` stays fast and imports no plugin machinery.
_LAZY = {
    "Config": "asyncstore.config",
    "open_store": "asyncstore.config",
    "ModuleContext": "asyncstore.context",
    "MemoryModule": "asyncstore.memory",
    "PluginDescription": "asyncstore.registry",
    "PluginInfo": "asyncstore.registry",
    "Registry": "asyncstore.registry",
    # Stream transforms: the whole machinery loads on first use of one of these.
    "InputInfo": "asyncstore.transforms",
    "InputStream": "asyncstore.transforms",
    "OutputStream": "asyncstore.transforms",
    "Transform": "asyncstore.transforms",
    "TransformContext": "asyncstore.transforms",
    "TransformResult": "asyncstore.transforms",
    "run_transform": "asyncstore.transforms",
}


__getattr__ = lazy_attributes(__name__, _LAZY)


def plugins() -> list[PluginInfo]:
    """List the installed storage modules without importing them."""
    from asyncstore.registry import default_registry

    return default_registry().plugins()


def describe_plugin(name: str) -> PluginDescription:
    """Import one installed storage module and describe it (summary, capabilities, options)."""
    from asyncstore.registry import default_registry

    return default_registry().describe(name)
