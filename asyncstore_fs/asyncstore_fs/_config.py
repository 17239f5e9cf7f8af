"""The module's options: checking them, preparing the root, and reading them from a URL."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from asyncstore.errors import ConfigError
from asyncstore_fs._metadata import supports_xattrs

__all__ = ["Settings", "options_from_url", "settle"]


@dataclass(frozen=True)
class Settings:
    """Checked options, with the root resolved and the filesystem probed."""

    root: str
    """The root directory, absolute and without symlinks."""
    sidecar: bool
    """Whether metadata goes to sidecar files rather than extended attributes."""
    name_max: int
    """The longest file name the filesystem takes, in bytes."""


def _check_bool(option: str, value: object) -> None:
    if not isinstance(value, bool):
        raise ConfigError(f"{option} must be True or False, not {value!r}")


def settle(
    root: object, *, fsync: object, create: object, xattrs: object, threads: object
) -> Settings:
    """Check the constructor's options, create the root if asked, and probe its filesystem.

    Raises:
        ConfigError: If an option has the wrong type or value, or the root is unusable.
    """
    if not isinstance(root, (str, os.PathLike)) or not isinstance(os.fspath(root), str):
        raise ConfigError(f"root must be a directory path (str), not {root!r}")
    _check_bool("fsync", fsync)
    _check_bool("create", create)
    if not isinstance(threads, int) or isinstance(threads, bool) or not 1 <= threads <= 64:
        raise ConfigError(f"threads must be an int from 1 to 64, not {threads!r}")
    if xattrs is not None:
        _check_bool("xattrs", xattrs)
    path = os.path.abspath(os.fspath(root))
    if create:
        try:
            os.makedirs(path, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"cannot create root {path!r}: {exc.strerror}") from exc
    if not os.path.isdir(path):
        raise ConfigError(f"root {path!r} is not an existing directory")
    real = os.path.realpath(path)
    supported = supports_xattrs(real)
    if xattrs and not supported:
        raise ConfigError(f"the filesystem of {path!r} has no user extended attributes")
    try:
        name_max = os.pathconf(real, "PC_NAME_MAX")
    except (OSError, ValueError):
        name_max = 255
    return Settings(real, not (supported if xattrs is None else xattrs), name_max)


def options_from_url(url: str) -> dict[str, Any]:
    """Turn ``fs:///abs/root?fsync=false`` (or ``file://``) into constructor options.

    Raises:
        ConfigError: If the URL names a host, has no absolute path, or repeats ``root``.
    """
    parts = urlsplit(url)
    if parts.netloc not in ("", "localhost"):
        raise ConfigError(
            f"{parts.scheme}:// URLs name a local directory and no host: write "
            f"{parts.scheme}:///absolute/path (three slashes)"
        )
    root = unquote(parts.path)
    if not root.startswith("/"):
        raise ConfigError(f"{parts.scheme}:// URLs need an absolute path, as in fs:///srv/data")
    options: dict[str, Any] = dict(parse_qsl(parts.query, keep_blank_values=True))
    if "root" in options:
        raise ConfigError("give the root as the URL's path, not as a query parameter")
    options["root"] = root
    return options
