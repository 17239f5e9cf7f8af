"""fsspec, both ways: asyncstore stores as fsspec filesystems, fsspec filesystems as stores.

- `AsyncStoreFileSystem` (protocol ``asyncstore``) shows any store to pandas, pyarrow, dask
  and every other fsspec user: ``pd.read_csv("asyncstore://STORE/data.csv")``.
- `FsspecModule` (plugin ``fsspec``) makes any fsspec filesystem a store:
  ``open_store("fsspec+sftp://user@host/srv/data")``.

Both need the ``asyncstore[fsspec]`` extra; importing this package imports neither fsspec nor
either bridge until one of them is used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from asyncstore._lazy import lazy_attributes

if TYPE_CHECKING:
    from asyncstore.fsspec.filesystem import AsyncStoreFileSystem
    from asyncstore.fsspec.module import FsspecModule

__all__ = ["AsyncStoreFileSystem", "FsspecModule"]

_LAZY = {
    "AsyncStoreFileSystem": "asyncstore.fsspec.filesystem",
    "FsspecModule": "asyncstore.fsspec.module",
}

__getattr__ = lazy_attributes(__name__, _LAZY)
