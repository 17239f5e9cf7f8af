"""The storage module contract: `StorageModule` for authors and `Store` for callers.

A backend subclasses `StorageModule`, implements the abstract core (`put` or `assign`,
`get_read_stream`, `stat`, `delete`, and `list` if it can) and inherits the rest: `put` from
`new_data` + `assign` (or the reverse is refused), `get_size` and `available` from `stat`,
`copy` by streaming, `statistics` with an unknown capacity, `capabilities` derived from what
the class overrides.
"""

from __future__ import annotations

import functools
import inspect
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TypeVar, runtime_checkable

from asyncstore.errors import (
    ConfigError,
    InvalidConditionError,
    NotFoundError,
    UnsupportedError,
)
from asyncstore.info import Handle, ObjectInfo
from asyncstore.keys import MAX_KEY_BYTES, validate_key
from asyncstore.streams import ByteSource, ReadStream

if TYPE_CHECKING:
    from types import TracebackType

    from typing_extensions import Self

__all__ = ["CONDITION_CAPABILITIES", "StorageModule", "Store", "check_conditions"]

F = TypeVar("F", bound=Callable[..., Awaitable[Any]])

CONDITION_CAPABILITIES = (
    "conditional_create",
    "conditional_replace",
    "conditional_delete",
    "conditional_read",
)
"""The capabilities that say which conditions a module honours atomically:
``overwrite=False`` on put/assign/copy, ``if_match`` on put/assign/copy, ``if_match`` on delete,
``if_match`` on get_read_stream."""

# The keywords each contract method takes for conditions.
_CONDITION_KEYWORDS: dict[str, tuple[str, ...]] = {
    "put": ("overwrite", "if_match"),
    "assign": ("overwrite", "if_match"),
    "copy": ("overwrite", "if_match"),
    "delete": ("if_match",),
    "get_read_stream": ("if_match",),
}


def _overrides(cls: type, name: str) -> bool:
    return getattr(cls, name) is not getattr(StorageModule, name)


def check_conditions(
    overwrite: object = True, if_match: object = None, *, store: str | None = None
) -> None:
    """Check the condition arguments of a write, before any I/O.

    Raises:
        InvalidConditionError: If ``overwrite`` is not a bool, ``if_match`` is not None or a
            non-empty str, or both conditions are given (no object can satisfy both).
    """
    if not isinstance(overwrite, bool):
        raise InvalidConditionError(
            f"overwrite must be True or False, not {overwrite!r}", store=store
        )
    if if_match is None:
        return
    if not isinstance(if_match, str) or not if_match:
        raise InvalidConditionError(
            f"if_match must be a non-empty etag string, not {if_match!r}", store=store
        )
    if not overwrite:
        raise InvalidConditionError(
            "overwrite=False and if_match cannot be combined: the first requires that no "
            "object exists, the second that a given version does",
            store=store,
        )


def _refusing_conditions(method: F, name: str, keywords: tuple[str, ...]) -> F:
    """Wrap a method that takes no condition keywords: a condition raises `UnsupportedError`."""

    @functools.wraps(method)
    async def wrapper(self: StorageModule, *args: Any, **kwargs: Any) -> Any:
        given = {word: kwargs.pop(word) for word in keywords if word in kwargs}
        if given.get("overwrite", True) is not True or given.get("if_match") is not None:
            check_conditions(**given, store=self.name)
            raise UnsupportedError(
                f"this module does not take conditions on {name}()", store=self.name
            )
        return await method(self, *args, **kwargs)

    return wrapper  # type: ignore[return-value]


def _takes(method: Callable[..., Any], keywords: tuple[str, ...]) -> bool:
    try:
        parameters = inspect.signature(method).parameters
    except (TypeError, ValueError):  # pragma: no cover - a builtin or odd callable
        return True
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return True
    return all(word in parameters for word in keywords)


class StorageModule(ABC):
    """The base class of every storage module.

    Instances are long-lived and shared by many tasks at once. ``async with module:`` or
    ``await module.aclose()`` releases everything the module holds.

    Class attributes a backend may set:
        name: The store name used in error messages; the registry sets it per instance to
            the configured store's name.
        keyed: Whether callers may choose keys (``put(key=...)``, ``assign`` to any valid key).
        CAPABILITIES: Capability values merged over the derived defaults.
        url_path: The constructor option that receives the path of a store URL
            (``"path"`` makes ``sqlite:///srv/blobs.db`` mean ``path="/srv/blobs.db"``);
            None (the default) refuses URLs with a location (see `options_from_url`).
    """

    name: str = "module"
    keyed: ClassVar[bool] = True
    CAPABILITIES: ClassVar[Mapping[str, Any]] = {}
    url_path: ClassVar[str | None] = None

    def __new__(cls, *args: Any, **kwargs: Any) -> Self:  # noqa: D102 - a class-level check
        if not (_overrides(cls, "put") or _overrides(cls, "assign")):
            raise TypeError(f"{cls.__name__} must implement put() or assign()")
        return super().__new__(cls)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # Modules written before conditions existed keep working: a condition given to one
        # of their methods is refused instead of failing with a TypeError.
        for name, keywords in _CONDITION_KEYWORDS.items():
            method = cls.__dict__.get(name)
            if inspect.iscoroutinefunction(method) and not _takes(method, keywords):
                setattr(cls, name, _refusing_conditions(method, name, keywords))

    # ---- writing -------------------------------------------------------------------------

    async def put(
        self,
        source: ByteSource,
        *,
        key: str | None = None,
        metadata: Mapping[str, str] | None = None,
        content_type: str | None = None,
        overwrite: bool = True,
        if_match: str | None = None,
    ) -> str:
        """Store the bytes of ``source`` and return the object's handle.

        Atomic: readers see the old object or the new one, never a partial one. If ``source``
        fails midway nothing is stored and an existing object under the key is intact. A
        condition is decided atomically by the store: of two writers that create one key,
        exactly one wins; a compare-and-swap never loses another writer's update.

        Args:
            source: The bytes to store (see `asyncstore.streams.ByteSource`).
            key: Store under this key (keyed modules); a fresh handle is chosen when omitted.
            metadata: User metadata (see `asyncstore.keys.validate_metadata`).
            content_type: The MIME type to record.
            overwrite: False stores only if no object exists under the key
                (``capabilities()["conditional_create"]``).
            if_match: Replace only the object whose etag is this
                (``capabilities()["conditional_replace"]``).

        Returns:
            The handle, as a `asyncstore.Handle` carrying the new object's etag where the
            module reports it.

        Raises:
            InvalidKeyError: If ``key`` breaks the key rules.
            InvalidMetadataError: If ``metadata`` or ``content_type`` is malformed.
            InvalidConditionError: If the conditions are malformed or contradictory.
            AlreadyExistsError: If ``overwrite`` is False and an object exists.
            PreconditionFailedError: If ``if_match`` is not the current object's etag (or no
                object exists); nothing is changed.
            UnsupportedError: If a key is given to a module that chooses its own handles, or
                a condition to a module that cannot honour it atomically.
            TypeError: If ``source`` is not an accepted byte source.
        """
        conditions = self._write_conditions(overwrite, if_match)
        if key is None:
            handle = await self.new_data()
        elif self.keyed:
            handle = validate_key(key, store=self.name)
        else:
            raise UnsupportedError("this module chooses its own handles", store=self.name)
        etag = await self.assign(
            handle, source, metadata=metadata, content_type=content_type, **conditions
        )
        return Handle(handle, etag)

    async def new_data(self) -> str:
        """Allocate a fresh unique handle; `available` is False for it until `assign`."""
        import uuid  # here, not at the top: importing asyncstore stays cheap

        return uuid.uuid4().hex

    async def assign(
        self,
        handle: str,
        source: ByteSource,
        *,
        metadata: Mapping[str, str] | None = None,
        content_type: str | None = None,
        overwrite: bool = True,
        if_match: str | None = None,
    ) -> str | None:
        """Store the bytes of ``source`` under an existing or chosen handle.

        Same atomicity, conditions and errors as `put`. The default stores through `put` with
        the handle as key for keyed modules that implement `put`, and is refused otherwise.

        Returns:
            The new object's etag, or None if the module does not report it.
        """
        conditions = self._write_conditions(overwrite, if_match)
        if self.keyed and _overrides(type(self), "put"):
            handle = await self.put(
                source,
                key=validate_key(handle, store=self.name),
                metadata=metadata,
                content_type=content_type,
                **conditions,
            )
            return getattr(handle, "etag", None)
        raise UnsupportedError("this module cannot store under a chosen handle", store=self.name)

    # ---- reading -------------------------------------------------------------------------

    @abstractmethod
    async def get_read_stream(
        self, handle: str, *, start: int = 0, end: int | None = None, if_match: str | None = None
    ) -> ReadStream:
        """Open a stream of the object's bytes in the half-open range ``[start, end)``.

        With ``if_match`` (``capabilities()["conditional_read"]``), only the version with that
        etag is opened, and a stream that finds it replaced later raises
        `PreconditionFailedError` rather than return bytes of another version.

        Raises:
            NotFoundError: If no complete object exists for ``handle``.
            InvalidRangeError: If ``start`` is negative or ``end`` is before ``start``.
            PreconditionFailedError: If ``if_match`` is not the object's etag.
        """

    @abstractmethod
    async def stat(self, handle: str) -> ObjectInfo:
        """Describe the object.

        Raises:
            NotFoundError: If no complete object exists for ``handle``.
        """

    async def available(self, handle: str) -> bool:
        """Return whether complete data exists for ``handle``."""
        try:
            await self.stat(handle)
        except NotFoundError:
            return False
        return True

    async def get_size(self, handle: str) -> int:
        """Return the object's size in bytes.

        Raises:
            NotFoundError: If no complete object exists for ``handle``.
        """
        return (await self.stat(handle)).size

    def list(self, prefix: str = "") -> AsyncIterator[ObjectInfo]:
        """Yield every complete object whose handle starts with ``prefix``, in handle order.

        Raises:
            InvalidKeyError: If the prefix could never match a valid key.
            UnsupportedError: If the module cannot list.
        """
        return _unsupported_listing(self.name)

    # ---- other operations ----------------------------------------------------------------

    @abstractmethod
    async def delete(self, handle: str, *, if_match: str | None = None) -> None:
        """Delete the object; deleting a missing handle is not an error.

        With ``if_match`` (``capabilities()["conditional_delete"]``), only the version with
        that etag is deleted.

        Raises:
            PreconditionFailedError: If ``if_match`` is not the current object's etag, or no
                object exists; nothing is deleted.
        """

    async def copy(
        self,
        handle: str,
        *,
        key: str | None = None,
        overwrite: bool = True,
        if_match: str | None = None,
    ) -> str:
        """Copy an object, with its metadata and content type, and return the new handle.

        The default streams the bytes through this process; backends may copy server-side.
        ``overwrite`` and ``if_match`` apply to the destination, as for `put`.

        Raises:
            NotFoundError: If no complete object exists for ``handle``.
            AlreadyExistsError: If ``overwrite`` is False and the destination exists.
            PreconditionFailedError: If ``if_match`` is not the destination's current etag.
        """
        conditions = self._write_conditions(overwrite, if_match)
        if key is not None:
            if not self.keyed:
                raise UnsupportedError("this module chooses its own handles", store=self.name)
            validate_key(key, store=self.name)
        async with await self.get_read_stream(handle) as stream:
            info = stream.info
            return await self.put(
                stream,
                key=key,
                metadata=info.metadata,
                content_type=info.content_type,
                **conditions,
            )

    async def presign(self, handle: str, *, method: str = "GET", expires: int = 3600) -> str:
        """Return a URL that grants ``method`` on the object for ``expires`` seconds.

        Raises:
            UnsupportedError: If the module cannot presign (the default).
        """
        raise UnsupportedError("this module cannot presign URLs", store=self.name, handle=handle)

    async def cleanup(self, *, older_than: float = 3600.0) -> dict[str, int]:
        """Remove what interrupted writes left behind; return counts of what was removed.

        Writes that fail clean up after themselves; this collects the leftovers of processes
        that were killed mid-write (temporary files, in-progress multipart uploads, orphaned
        content). Only leftovers older than ``older_than`` seconds are touched, so writes in
        flight in other processes are left alone: run it from a maintenance job, or with
        ``older_than=0`` when nothing else writes. Never removes a complete object.

        The default has nothing to clean and returns ``{}``; middleware adds its inner
        modules' counts to its own.
        """
        return {}

    async def statistics(self) -> dict[str, Any]:
        """Return JSON-serialisable statistics.

        Always ``{"capacity": {"total", "used", "free"}}`` in bytes (None where unknown), plus
        module-specific extras.
        """
        return {"capacity": {"total": None, "used": None, "free": None}}

    @classmethod
    def class_capabilities(cls) -> dict[str, Any]:
        """Return the capabilities every instance of the class has (no I/O, no instance)."""
        derived: dict[str, Any] = {
            "range_read": True,
            "seek": True,
            "list": _overrides(cls, "list"),
            "metadata": True,
            "named_keys": cls.keyed,
            "new_data": True,
            "assign": _overrides(cls, "assign") or (cls.keyed and _overrides(cls, "put")),
            "delete": True,
            "server_side_copy": _overrides(cls, "copy"),
            "presign": _overrides(cls, "presign"),
            "reconfigure": _overrides(cls, "reconfigure"),
            "max_object_size": None,
            "writable": True,
            "atomic_writes": True,
            **dict.fromkeys(CONDITION_CAPABILITIES, False),
            "max_key_bytes": MAX_KEY_BYTES,
            "list_order": "lexicographic",
        }
        return {**derived, **cls.CAPABILITIES}

    def capabilities(self) -> dict[str, Any]:
        """Return this module's JSON-serialisable capabilities; does no I/O.

        Standard keys: ``range_read``, ``seek``, ``list``, ``metadata``, ``named_keys``,
        ``new_data``, ``assign``, ``delete``, ``server_side_copy``, ``presign``,
        ``reconfigure``, ``max_object_size``, ``max_key_bytes`` (the longest key accepted, at
        most 1024 bytes of UTF-8: less where the store adds a prefix of its own),
        ``list_order`` (``lexicographic``; ``tree`` where listings come in directory-tree order,
        each directory's entries sorted by name, so ``a/b`` comes before ``a-b``),
        ``writable`` (False when every write raises `PermissionDeniedError`),
        ``atomic_writes`` (True unless the module cannot keep `put`'s promise that readers see
        the old object or the new one and a failed write stores nothing), the conditions
        honoured (``conditional_create``, ``conditional_replace``, ``conditional_delete``,
        ``conditional_read``), and CDMI names such as ``cdmi_encryption``. ``new_data``,
        ``assign`` and ``delete`` are False only for modules (legacy ones, write-once stores or
        read-only views) that cannot do them; a module that leaves them out has them, and so
        with ``writable``.
        """
        return self.class_capabilities()

    async def reconfigure(self, **options: Any) -> None:
        """Update options of a live instance (for example rotated credentials).

        Raises:
            UnsupportedError: If the module cannot be reconfigured (the default).
            ConfigError: If an option is unknown or invalid.
        """
        raise UnsupportedError("this module cannot be reconfigured", store=self.name)

    @classmethod
    def options_from_url(cls, url: str) -> dict[str, Any]:
        """Turn a store URL such as ``memory://?max_bytes=1024`` into constructor options.

        Query parameters become options (values stay strings; the registry converts them to
        the annotated types). A module whose class names a `url_path` option takes a local
        path as well: ``sqlite:///var/lib/app/blobs.db?timeout=5`` gives
        ``{"path": "/var/lib/app/blobs.db", "timeout": "5"}`` (the path percent-decoded). Any
        other location is refused; backends with other locations (a bucket, a host) override
        this.

        Raises:
            ConfigError: If the URL has a location this module does not take.
        """
        from urllib.parse import parse_qsl, unquote, urlsplit

        parts = urlsplit(url)
        options: dict[str, Any] = dict(parse_qsl(parts.query, keep_blank_values=True))
        has_path = parts.path not in ("", "/")
        if cls.url_path is None:
            if parts.netloc or has_path:
                raise ConfigError(
                    f"{parts.scheme}:// URLs take no location; pass options as query "
                    f"parameters ({parts.scheme}://?option=value)"
                )
            return options
        if parts.netloc not in ("", "localhost"):
            raise ConfigError(
                f"{parts.scheme}:// URLs name a local path, not a host: write "
                f"{parts.scheme}:///absolute/path (three slashes), or "
                f"{parts.scheme}://?{cls.url_path}=relative/path"
            )
        if has_path:
            if cls.url_path in options:
                raise ConfigError(
                    f"{parts.scheme}:// URL gives {cls.url_path!r} twice: as its path and as a "
                    "query parameter"
                )
            options[cls.url_path] = unquote(parts.path)
        return options

    # ---- lifecycle -----------------------------------------------------------------------

    async def aclose(self) -> None:  # noqa: B027 - nothing to release by default
        """Release every resource the module holds (connections, threads, files).

        Closing is final: afterwards only `aclose` (again, harmlessly) and `capabilities` may
        be called; any other call may fail (modules built on `asyncstore.kv` raise
        `StorageError`). To go on using a store, open a new module.
        """

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name!r}>"

    # ---- helpers for authors -------------------------------------------------------------

    def _not_found(self, handle: str) -> NotFoundError:
        """Return the `NotFoundError` for ``handle`` in this store."""
        return NotFoundError("no such object", store=self.name, handle=handle)

    def _write_conditions(self, overwrite: bool, if_match: str | None) -> dict[str, Any]:
        """Check a write's conditions; return them as keywords to pass on (empty for none).

        Raises:
            InvalidConditionError: If the conditions are malformed or contradictory.
            UnsupportedError: If the module does not declare the condition's capability.
        """
        if overwrite is True and if_match is None:
            return {}
        check_conditions(overwrite, if_match, store=self.name)
        if if_match is None:
            self._require_condition("conditional_create", "overwrite=False")
            return {"overwrite": False}
        self._require_condition("conditional_replace", "if_match")
        return {"if_match": if_match}

    def _check_read_condition(self, if_match: str | None) -> None:
        """Check ``get_read_stream``'s ``if_match`` (see `_write_conditions`)."""
        if if_match is not None:
            check_conditions(if_match=if_match, store=self.name)
            self._require_condition("conditional_read", "if_match on reads")

    def _check_delete_condition(self, if_match: str | None) -> None:
        """Check ``delete``'s ``if_match`` (see `_write_conditions`)."""
        if if_match is not None:
            check_conditions(if_match=if_match, store=self.name)
            self._require_condition("conditional_delete", "if_match on deletes")

    def _require_condition(self, capability: str, what: str) -> None:
        """Raise `UnsupportedError` unless the module declares ``capability``."""
        cls = type(self)
        if cls.capabilities is StorageModule.capabilities:
            # The class's own declaration decides: no need to build every capability.
            declared = cls.CAPABILITIES.get(capability, False)
        else:
            declared = self.capabilities().get(capability)
        if not declared:
            raise UnsupportedError(
                f"this module cannot honour {what} atomically "
                f"(capabilities()[{capability!r}] is False)",
                store=self.name,
            )


async def _unsupported_listing(store: str) -> AsyncIterator[ObjectInfo]:
    error = UnsupportedError("this module cannot list its objects", store=store)
    for _ in ():
        yield _  # never runs: its presence makes this an async generator
    raise error


@runtime_checkable
class Store(Protocol):
    """What callers can rely on from any storage module (the contract's caller side)."""

    name: str

    async def put(
        self,
        source: ByteSource,
        *,
        key: str | None = None,
        metadata: Mapping[str, str] | None = None,
        content_type: str | None = None,
        overwrite: bool = True,
        if_match: str | None = None,
    ) -> str:
        """Store bytes and return the handle."""

    async def new_data(self) -> str:
        """Allocate a fresh unique handle."""

    async def assign(
        self,
        handle: str,
        source: ByteSource,
        *,
        metadata: Mapping[str, str] | None = None,
        content_type: str | None = None,
        overwrite: bool = True,
        if_match: str | None = None,
    ) -> str | None:
        """Store bytes under a handle; return the new etag if known."""

    async def available(self, handle: str) -> bool:
        """Return whether complete data exists for the handle."""

    async def get_read_stream(
        self, handle: str, *, start: int = 0, end: int | None = None, if_match: str | None = None
    ) -> ReadStream:
        """Open a stream of the object's bytes."""

    async def get_size(self, handle: str) -> int:
        """Return the object's size."""

    async def stat(self, handle: str) -> ObjectInfo:
        """Describe the object."""

    def list(self, prefix: str = "") -> AsyncIterator[ObjectInfo]:
        """Iterate over objects in handle order."""

    async def delete(self, handle: str, *, if_match: str | None = None) -> None:
        """Delete the object."""

    async def copy(
        self,
        handle: str,
        *,
        key: str | None = None,
        overwrite: bool = True,
        if_match: str | None = None,
    ) -> str:
        """Copy the object."""

    async def cleanup(self, *, older_than: float = 3600.0) -> dict[str, int]:
        """Remove leftovers of interrupted writes."""

    async def statistics(self) -> dict[str, Any]:
        """Return statistics."""

    def capabilities(self) -> dict[str, Any]:
        """Return capabilities."""

    async def aclose(self) -> None:
        """Release resources."""
