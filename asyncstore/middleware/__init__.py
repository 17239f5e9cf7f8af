"""Middleware: modules that wrap other modules, to transform their bytes or to show a view.

Each lives in its own module and is registered as a plugin (``encrypt``, ``compress``,
``dedup``, ``replicate``, ``transform``; the views ``readonly``, ``prefix`` and ``mount``);
a config file names the inner store by store name or URL, and layers stack in any order::

    [stores.secure]
    module = "encrypt"
    inner = "local"
    key = "${APP_MASTER_KEY}"

Importing this package imports no optional dependency; a missing one raises an `ImportError`
naming the extra to install when the module is created.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from asyncstore._lazy import lazy_attributes

if TYPE_CHECKING:
    from asyncstore.middleware.compress import CompressionModule
    from asyncstore.middleware.dedup import DedupModule
    from asyncstore.middleware.encrypt import EncryptionModule
    from asyncstore.middleware.mount import MountModule
    from asyncstore.middleware.prefix import PrefixModule
    from asyncstore.middleware.readonly import ReadOnlyModule
    from asyncstore.middleware.replicate import ReplicationModule
    from asyncstore.middleware.transform import TransformModule

__all__ = [
    "CompressionModule",
    "DedupModule",
    "EncryptionModule",
    "MountModule",
    "PrefixModule",
    "ReadOnlyModule",
    "ReplicationModule",
    "TransformModule",
]

_LAZY = {
    "CompressionModule": "asyncstore.middleware.compress",
    "DedupModule": "asyncstore.middleware.dedup",
    "EncryptionModule": "asyncstore.middleware.encrypt",
    "MountModule": "asyncstore.middleware.mount",
    "PrefixModule": "asyncstore.middleware.prefix",
    "ReadOnlyModule": "asyncstore.middleware.readonly",
    "ReplicationModule": "asyncstore.middleware.replicate",
    "TransformModule": "asyncstore.middleware.transform",
}


__getattr__ = lazy_attributes(__name__, _LAZY)
