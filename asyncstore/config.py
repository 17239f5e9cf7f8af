"""Named stores from a TOML config file, and `open_store` for names and URLs.

The file (``asyncstore.toml``) is found from an explicit path, then ``$ASYNCSTORE_CONFIG``,
then the working directory, then the user config directory::

    [stores.local]
    module = "fs"
    root = "/var/lib/app/blobs"

    [stores.secure]
    module = "encrypt"
    inner = "local"            # another store's name, or a URL
    key = "${APP_MASTER_KEY}"  # expanded from the environment when the store is opened

``${NAME}`` expands to an environment variable (``$${`` gives a literal ``${``), so secrets
stay out of the file. Expansion happens when a store is opened, never when listing.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from asyncstore.context import MetricsHook, ModuleContext
from asyncstore.errors import ConfigError
from asyncstore.module import StorageModule
from asyncstore.registry import Registry, create_module, default_registry

__all__ = [
    "CONFIG_ENV",
    "CONFIG_NAME",
    "Config",
    "StoreConfig",
    "expand_env",
    "find_config",
    "open_store",
    "plugin_of_url",
    "public_spec",
]

CONFIG_ENV = "ASYNCSTORE_CONFIG"
"""The environment variable naming the config file."""
CONFIG_NAME = "asyncstore.toml"
"""The config file's name in the working and user config directories."""

_REFERENCE = re.compile(r"\$(\$?)\{([^}]*)\}")
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_SECRET_NAME = re.compile(r"key|secret|password|passwd|token|credential", re.IGNORECASE)


def user_config_dir() -> Path:
    """Return the per-user config directory asyncstore looks in."""
    if sys.platform == "win32":
        base = Path(os.environ.get("APPDATA") or Path.home() / "AppData" / "Roaming")
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "asyncstore"


def find_config(path: str | os.PathLike[str] | None = None) -> Path | None:
    """Find the config file, or return None if there is none.

    Looks at ``path``, then ``$ASYNCSTORE_CONFIG``, then the working directory, then the user
    config directory.

    Raises:
        ConfigError: If an explicitly named file (argument or variable) does not exist.
    """
    explicit = path if path is not None else os.environ.get(CONFIG_ENV) or None
    if explicit is not None:
        candidate = Path(explicit).expanduser()
        if not candidate.is_file():
            raise ConfigError(f"config file {str(candidate)!r} does not exist")
        return candidate
    for candidate in (Path.cwd() / CONFIG_NAME, user_config_dir() / CONFIG_NAME):
        if candidate.is_file():
            return candidate
    return None


def expand_env(value: Any, environ: Mapping[str, str] | None = None, *, where: str = "") -> Any:
    """Expand ``${NAME}`` references in strings, recursively through lists and tables.

    Raises:
        ConfigError: If a referenced variable is not set (the message names the variable,
            never a value).
    """
    env = os.environ if environ is None else environ
    if isinstance(value, str):

        def substitute(match: re.Match[str]) -> str:
            if match.group(1):
                return "${" + match.group(2) + "}"
            name = match.group(2)
            if name not in env:
                raise ConfigError(
                    f"environment variable {name!r} is not set"
                    + (f" (referenced by {where})" if where else "")
                )
            return env[name]

        return _REFERENCE.sub(substitute, value)
    if isinstance(value, list):
        return [expand_env(v, env, where=where) for v in value]
    if isinstance(value, dict):
        return {
            k: expand_env(v, env, where=f"{where}.{k}" if where else k) for k, v in value.items()
        }
    return value


@dataclass(frozen=True)
class StoreConfig:
    """One named store of a config file, before ``${ENV}`` expansion."""

    name: str
    """The store's name."""
    module: str = field(repr=False)
    """The plugin name (or a URL whose query gives further options)."""
    options: Mapping[str, Any] = field(default_factory=dict, repr=False)
    """The other keys of the table: the module's options (may hold secrets: never shown)."""

    def masked_module(self) -> str:
        """Return `module` fit for display: a URL loses its credentials and query."""
        return public_spec(self.module)

    def masked_options(self) -> dict[str, Any]:
        """Return the options fit for display.

        Secret-looking values are hidden at any depth and URLs lose credentials and query;
        ``${NAME}`` references are shown as written.
        """
        masked = _mask(dict(self.options))
        assert isinstance(masked, dict)
        return masked


def _is_reference(value: Any) -> bool:
    return isinstance(value, str) and bool(_REFERENCE.fullmatch(value))


def _mask(value: Any, name: str = "") -> Any:
    if isinstance(value, dict):
        return {k: _mask(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask(v, name) for v in value]
    if _is_reference(value):
        return value
    if name and _SECRET_NAME.search(name):
        return "***"
    if isinstance(value, str) and _URL.match(value):
        return public_spec(value)
    return value


@dataclass(frozen=True)
class Config:
    """The named stores of one config file (or none)."""

    stores: Mapping[str, StoreConfig] = field(default_factory=dict)
    """Stores by name."""
    path: Path | None = None
    """Where the file was found, if anywhere."""

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, path: Path | None = None) -> Config:
        """Build a config from parsed TOML data.

        Raises:
            ConfigError: If the ``stores`` table is malformed.
        """
        source = f" in {str(path)!r}" if path else ""
        tables = data.get("stores", {})
        if not isinstance(tables, dict):
            raise ConfigError(f"'stores' must be a table{source}")
        unknown = sorted(set(data) - {"stores"})
        if unknown:
            raise ConfigError(f"unknown top-level key(s) {unknown}{source}; expected 'stores'")
        stores = {}
        for name, table in tables.items():
            if not isinstance(table, dict):
                raise ConfigError(f"store {name!r} must be a table{source}")
            options = dict(table)
            module = options.pop("module", None)
            if not isinstance(module, str) or not module:
                raise ConfigError(f"store {name!r} needs a 'module' string{source}")
            stores[name] = StoreConfig(name, module, options)
        return cls(stores, path)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> Config:
        """Read a TOML config file.

        Raises:
            ConfigError: If it cannot be read or parsed.
        """
        if sys.version_info >= (3, 11):
            import tomllib
        else:
            import tomli as tomllib
        file = Path(path)
        try:
            with file.open("rb") as handle:
                data = tomllib.load(handle)
        except OSError as exc:
            raise ConfigError(f"cannot read config file {str(file)!r}: {exc.strerror}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {str(file)!r} is not valid TOML: {exc}") from exc
        return cls.from_dict(data, path=file)

    @classmethod
    def load(cls, path: str | os.PathLike[str] | None = None) -> Config:
        """Find (see `find_config`) and read the config file; empty if there is none."""
        found = find_config(path)
        return cls() if found is None else cls.from_file(found)

    def store(self, name: str) -> StoreConfig:
        """Return one named store.

        Raises:
            ConfigError: If there is no such store; the message lists the configured ones.
        """
        try:
            return self.stores[name]
        except KeyError:
            where = str(self.path) if self.path else "no config file found"
            names = ", ".join(sorted(self.stores)) or "none"
            raise ConfigError(f"no store named {name!r} ({where}; configured: {names})") from None


def plugin_of_url(url: str) -> str:
    """Return the plugin a store URL names: its scheme, or the part before a ``+`` in it.

    ``memory://`` names ``memory``; ``fsspec+sftp://host/path`` names ``fsspec``, whose
    `StorageModule.options_from_url` reads the rest (``sftp``) from the URL.
    """
    return urlsplit(url).scheme.lower().partition("+")[0]


def public_spec(spec: str) -> str:
    """Return a store spec fit for messages.

    A URL loses its user info and query string, where credentials may hide; a store name is
    returned as it is.
    """
    if not _URL.match(spec):
        return spec
    parts = urlsplit(spec)
    netloc = parts.netloc.rsplit("@", 1)[-1]
    return f"{parts.scheme}://{netloc}{parts.path}"


class _Resolver:
    def __init__(
        self,
        config: Config | str | os.PathLike[str] | None,
        registry: Registry,
        environ: Mapping[str, str] | None,
        metrics: MetricsHook | None,
    ) -> None:
        self._config = config
        self.registry = registry
        self.environ = environ
        self.metrics = metrics
        self.opening: list[str] = []

    @property
    def config(self) -> Config:
        # Loaded only when a store name must be resolved: a URL alone needs no file.
        if not isinstance(self._config, Config):
            self._config = Config.load(self._config)
        return self._config

    def open(self, spec: str, overrides: Mapping[str, Any]) -> StorageModule:
        if not isinstance(spec, str) or not spec:
            raise ConfigError(f"a store spec must be a non-empty str, not {spec!r}")
        if spec in self.opening:
            chain = " -> ".join([*self.opening, spec])
            raise ConfigError(f"stores refer to each other in a cycle: {chain}")
        self.opening.append(spec)
        try:
            if _URL.match(spec):
                return self._open_url(spec, spec, {}, overrides)
            store = self.config.store(spec)
            options = expand_env(dict(store.options), self.environ, where=f"stores.{spec}")
            module = expand_env(store.module, self.environ, where=f"stores.{spec}.module")
            if _URL.match(module):
                return self._open_url(spec, module, options, overrides)
            return self._create(spec, module, {**options, **overrides})
        finally:
            self.opening.pop()

    def _open_url(
        self, name: str, url: str, options: Mapping[str, Any], overrides: Mapping[str, Any]
    ) -> StorageModule:
        plugin = plugin_of_url(url)
        cls = self.registry.load(plugin)
        from_url = cls.options_from_url(url)
        store_name = public_spec(url) if name == url else name
        return self._create(store_name, plugin, {**from_url, **options, **overrides})

    def _create(self, store_name: str, plugin: str, options: Mapping[str, Any]) -> StorageModule:
        cls = self.registry.load(plugin)
        context = ModuleContext(
            store_name=store_name,
            metrics=self.metrics,
            get_module=lambda inner: self.open(inner, {}),
        )
        return create_module(cls, options, context=context)


def open_store(
    spec: str,
    *,
    config: Config | str | os.PathLike[str] | None = None,
    registry: Registry | None = None,
    environ: Mapping[str, str] | None = None,
    metrics: MetricsHook | None = None,
    **options: Any,
) -> StorageModule:
    """Create the module for a store name or URL; use it with ``async with``.

    Args:
        spec: A store name from the config file, or a URL such as ``memory://`` or
            ``fs:///var/lib/blobs``; the scheme names the plugin (the part before a ``+``
            in it: ``fsspec+sftp://host/path`` names ``fsspec``).
        config: A `Config`, or the path of a config file; found as `find_config` says when
            omitted (and only needed when ``spec`` is a name).
        registry: The plugin registry; the installed plugins by default.
        environ: The variables ``${NAME}`` expands from; `os.environ` by default.
        metrics: A metrics hook handed to the modules that accept a context.
        **options: Options that override the config file's or the URL's.

    Raises:
        ConfigError: If the store is unknown, options are wrong, a variable is unset or
            stores refer to each other in a cycle.
        PluginError: If the plugin cannot be found or loaded.
    """
    resolver = _Resolver(config, registry or default_registry(), environ, metrics)
    return resolver.open(spec, options)
