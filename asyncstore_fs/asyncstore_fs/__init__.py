"""asyncstore-fs: the filesystem backend for asyncstore.

The object under key ``a/b/c.txt`` is the plain file ``<root>/a/b/c.txt``, written atomically
and durably. Installed as the ``fs`` and ``file`` plugins (``fs:///abs/root``).
"""

from __future__ import annotations

from asyncstore_fs._errors import map_os_errors
from asyncstore_fs._module import FileSystemModule
from asyncstore_fs._read import FileReadStream

__version__ = "0.1.0"

__all__ = [
    "FileReadStream",
    "FileSystemModule",
    "map_os_errors",
]
