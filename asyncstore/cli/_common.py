"""What every command shares: store addressing, opening stores, output and errors."""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
import click

from asyncstore.errors import StorageError
from asyncstore.keys import validate_key

if TYPE_CHECKING:
    from asyncstore.config import Config
    from asyncstore.module import StorageModule

T = TypeVar("T")

_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


@dataclass(frozen=True)
class Target:
    """A store spec and, optionally, a key or prefix within it."""

    store: str
    key: str | None


def parse_target(text: str) -> Target:
    """Split ``STORE:KEY``, ``URL//KEY`` or ``scheme://bucket/KEY`` into store and key."""
    if not _URL.match(text):
        store, sep, key = text.partition(":")
        return Target(store, key if sep and key else None)
    base, qmark, query = text.partition("?")
    scheme, rest = base.split("://", 1)
    suffix = f"?{query}" if qmark else ""
    if "//" in rest:
        location, key = rest.split("//", 1)
        return Target(f"{scheme}://{location}{suffix}", key or None)
    netloc, slash, path = rest.partition("/")
    if netloc:
        return Target(f"{scheme}://{netloc}{suffix}", path if slash and path else None)
    # A URL with a path and no '//' names a store only (fs:///srv/data).
    return Target(text, None)


@dataclass
class State:
    """Global options, kept on the click context."""

    config_path: str | None
    debug: bool
    _config: Config | None = None

    @property
    def config(self) -> Config:
        """The config file's stores, loaded on first use."""
        if self._config is None:
            from asyncstore.config import Config

            self._config = Config.load(self.config_path)
        return self._config

    def open(self, spec: str) -> StorageModule:
        """Create the module for a store spec."""
        from asyncstore.config import open_store

        config = self.config if not _URL.match(spec) else self.config_path
        return open_store(spec, config=config)


def state() -> State:
    """Return the global options of the running command."""
    return click.get_current_context().find_object(State) or State(None, False)


def run(function: Callable[[], Awaitable[T]]) -> T:
    """Run an async function to completion on a fresh event loop."""
    return anyio.run(function)


def require_key(target: Target, what: str = "key") -> str:
    """Return the target's key (validated as a key unless ``what`` is "prefix").

    Raises:
        click.UsageError: If the target names no key.
    """
    if target.key is None:
        from asyncstore.config import public_spec

        raise click.UsageError(
            f"{public_spec(target.store)!r} names no {what}: use STORE:KEY, or URL//KEY "
            "with '//' between the store's URL and the key (fs:///srv/data//dir/file.txt)"
        )
    return target.key if what == "prefix" else validate_key(target.key)


def emit_json(data: Any) -> None:
    """Print data as indented JSON on stdout."""
    click.echo(json.dumps(data, indent=2, default=str))


class ErrorHandlingGroup(click.Group):
    """A click group that turns storage errors into one line and exit status 1."""

    def invoke(self, ctx: click.Context) -> Any:
        """Invoke the command, reporting errors as one clear line."""
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.Abort, click.ClickException):
            raise
        except KeyboardInterrupt:
            click.echo("interrupted; nothing partial was stored", err=True)
            raise SystemExit(1) from None
        except (StorageError, OSError) as exc:
            found = ctx.find_object(State)
            if found is not None and found.debug:
                raise
            click.echo(f"error: {describe_error(exc)}", err=True)
            raise SystemExit(1) from None


def describe_error(exc: BaseException) -> str:
    """Say what went wrong in a user's words: an OS error as its file and reason, no errno."""
    if isinstance(exc, OSError) and not isinstance(exc, StorageError) and exc.strerror:
        reason = exc.strerror[0].lower() + exc.strerror[1:]
        if exc.filename is not None and exc.filename2 is not None:
            return f"{exc.filename!r} -> {exc.filename2!r}: {reason}"
        if exc.filename is not None:
            return f"{exc.filename!r}: {reason}"
        return reason
    return str(exc)


def parse_range(text: str | None) -> tuple[int, int | None]:
    """Parse ``A-B`` (half-open, either side optional) into start and end.

    Raises:
        click.BadParameter: If the range is malformed.
    """
    if not text:
        return 0, None
    match = re.fullmatch(r"(\d*)-(\d*)", text)
    if not match:
        raise click.BadParameter(
            f"{text!r} is not a range A-B (bytes A up to, not including, B)",
            param_hint="--range",
        )
    start = int(match.group(1) or 0)
    end = int(match.group(2)) if match.group(2) else None
    if end is not None and end < start:
        raise click.BadParameter(
            f"{text!r} is backwards: B ({end}) must not be less than A ({start}); "
            "the range is bytes A up to, not including, B",
            param_hint="--range",
        )
    return start, end


def human_size(size: int | None) -> str:
    """Format a byte count for people."""
    if size is None:
        return "-"
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"
