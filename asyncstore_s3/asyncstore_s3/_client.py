"""The long-lived aiobotocore client of a store, swapped without dropping requests in flight."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import anyio
from aiobotocore.session import AioSession
from botocore.utils import parse_timestamp as default_timestamp_parser

from asyncstore_s3._config import S3Options
from asyncstore_s3._events import adjust_handlers
from asyncstore_s3._redact import SECRETS, secrets_of

if TYPE_CHECKING:
    from types_aiobotocore_s3 import S3Client
else:
    S3Client = Any

__all__ = ["ClientLease", "ClientPool", "S3Client", "parse_timestamp"]


_SESSIONS: dict[str | None, AioSession] = {}


def _session(options: S3Options) -> AioSession:
    """Return the botocore session to create the store's client from.

    A session caches botocore's parsed service model, so sharing one makes a new client cost
    milliseconds instead of a tenth of a second. Only stores with explicit credentials share
    (credentials go to each client, never to the session): credentials the session resolves
    itself may refresh under a lock bound to one event loop.
    """
    shared = options.access_key_id is not None
    session = _SESSIONS.get(options.profile) if shared else None
    if session is None:
        session = AioSession(profile=options.profile)
        # botocore parses every Last-Modified with dateutil, a tenth of a small request's CPU.
        factory = session.get_component("response_parser_factory")
        factory.set_parser_defaults(timestamp_parser=parse_timestamp)
        if shared:
            _SESSIONS[options.profile] = session
    return session


_MONTHS = {
    name: number
    for number, name in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1
    )
}


def parse_timestamp(value: str) -> datetime:
    """Parse the timestamps S3 sends, fast: HTTP dates in headers, ISO 8601 in XML bodies.

    Anything else goes to botocore's general parser.
    """
    try:
        if value.endswith(" GMT"):
            # "Tue, 24 Nov 2026 18:23:11 GMT" (RFC 7231)
            _, day, month, year, clock, _ = value.split(" ")
            hour, minute, second = clock.split(":")
            return datetime(
                int(year),
                _MONTHS[month],
                int(day),
                int(hour),
                int(minute),
                int(second),
                tzinfo=timezone.utc,
            )
        if value.endswith("Z") and "T" in value:
            # "2026-11-24T18:23:11.000Z"
            return datetime.fromisoformat(value[:-1]).replace(tzinfo=timezone.utc)
    except (ValueError, KeyError):
        pass
    parsed: datetime = default_timestamp_parser(value)
    return parsed


class ClientLease:
    """One aiobotocore client and the number of operations using it.

    A retired lease (replaced by `ClientPool.replace`) is closed when its last user returns it,
    so requests and read streams already running on it finish undisturbed.
    """

    def __init__(self, client: S3Client, stack: AsyncExitStack, options: S3Options) -> None:
        self.client = client
        self.options = options
        """The options the client was created with (its retries among them)."""
        self._stack = stack
        self._users = 0
        self._retired = False
        self._closed = False

    @property
    def closed(self) -> bool:
        """Whether the client has been closed."""
        return self._closed

    def take(self) -> None:
        """Count one more user."""
        self._users += 1

    async def give_back(self) -> None:
        """Count one user less; close the client if it is retired and now unused."""
        self._users -= 1
        if self._retired and self._users == 0:
            await self.close()

    async def retire(self) -> None:
        """Stop handing the client out; close it once nobody uses it."""
        self._retired = True
        if self._users == 0:
            await self.close()

    async def close(self) -> None:
        """Close the client and its connection pool now."""
        if not self._closed:
            self._closed = True
            # Closing must finish even when the caller is being cancelled, or sockets leak.
            with anyio.CancelScope(shield=True):
                await self._stack.aclose()


class ClientPool:
    """Creates the store's client on first use and hands it out to operations.

    Args:
        options: The store's options; `replace` swaps them (credentials rotation).
    """

    def __init__(self, options: S3Options) -> None:
        self.options = options
        self._current: ClientLease | None = None
        self._retired: list[ClientLease] = []
        self._lock = anyio.Lock()

    async def acquire(self) -> ClientLease:
        """Return the current client's lease with one more user (create the client if none)."""
        lease = self._current
        if lease is None:
            async with self._lock:
                lease = self._current
                if lease is None:
                    lease = self._current = await self._create(self.options)
        lease.take()
        return lease

    @asynccontextmanager
    async def client(self) -> AsyncIterator[S3Client]:
        """Use the current client for the duration of the block."""
        lease = await self.acquire()
        try:
            yield lease.client
        finally:
            await lease.give_back()

    async def replace(self, options: S3Options) -> None:
        """Use ``options`` for new operations; the old client closes when its users finish."""
        async with self._lock:
            self.options = options
            old, self._current = self._current, None
            self._retired = [lease for lease in self._retired if not lease.closed]
            if old is not None:
                self._retired.append(old)
                await old.retire()

    async def aclose(self) -> None:
        """Close every client now; a later operation creates a new one."""
        async with self._lock:
            leases = [*self._retired, *([self._current] if self._current else [])]
            self._current = None
            self._retired = []
            for lease in leases:
                await lease.close()

    @staticmethod
    async def _create(options: S3Options) -> ClientLease:
        session = _session(options)
        stack = AsyncExitStack()
        # botocore's DEBUG logs show request headers: mask this client's secrets until it closes.
        stack.callback(SECRETS.forget, SECRETS.register(secrets_of(options)))
        try:
            client = await stack.enter_async_context(
                session.create_client("s3", **options.client_kwargs())
            )
        except BaseException:
            await stack.aclose()
            raise
        adjust_handlers(
            client.meta.events,
            connect_timeout=options.connect_timeout,
            read_timeout=options.read_timeout,
            write_timeout=options.write_timeout,
            max_attempts=options.max_attempts,
            engine=options.engine,
        )
        return ClientLease(client, stack, options)
