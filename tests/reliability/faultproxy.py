"""A fault-injecting HTTP proxy between the S3 backend and the loopback S3 server.

`FaultProxy` listens on a free port of 127.0.0.1 and forwards each HTTP/1.1 request it
receives to the upstream server (over a fresh connection: moto closes its connections after
each response), keeping the client's connection alive as S3 does. A chosen share of the
requests meets a fault instead:

``reset``
    The connection is reset (RST) once the request has arrived; the server never sees it.
``lost_response``
    The server handles the request, then the client's connection is reset instead of the
    response: the request took effect but the client cannot know.
``truncate``
    The response head is sent with its real ``Content-Length``, then only part of the body,
    then the connection is closed. Only GET requests are truncated; a response without a
    body is lost instead (and counted as ``lost_response``).
``error_500``
    An S3 ``InternalError`` (HTTP 500) answers; the server never sees the request.
``slowdown_503``
    An S3 ``SlowDown`` (HTTP 503) answers; the server never sees the request.
``delay``
    The server handles the request and its response is held back for a while.
``corrupt``
    The response arrives whole but with one byte of its body flipped (only by `force`: no
    retry can recover from it, so it is not in the random deck).

Kinds are drawn from a shuffled deck holding each kind as many times as its weight, so every
kind of positive weight is injected once in each round of the deck. Decisions come from
seeded random generators. `force` queues faults for the next matching requests, for tests that
need one exact fault. Counters say what was injected and how many requests were retries
(botocore gives every attempt of one call the same ``amz-sdk-invocation-id`` header, and
aiohttp resends a request on a fresh connection when a reused one turns out dead).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import struct
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from urllib.parse import urlsplit

__all__ = ["FAULTS", "FORCED_ONLY", "FaultProxy", "Request"]

FAULTS = ("reset", "lost_response", "truncate", "error_500", "slowdown_503", "delay")
"""Every kind of fault the proxy injects at random."""
FORCED_ONLY = ("corrupt",)
"""Kinds of fault only injected by `FaultProxy.force`."""

_HEAD_LIMIT = 1 << 20
_NO_BODY_STATUSES = {204, 304}
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "expect", "proxy-connection"}
_ERRORS = {
    "error_500": (
        500,
        "Internal Server Error",
        "InternalError",
        "We encountered an internal error.",
    ),
    "slowdown_503": (503, "Slow Down", "SlowDown", "Please reduce your request rate."),
}


@dataclass(frozen=True)
class Request:
    """One request as the proxy received it."""

    method: str
    """The HTTP method."""
    target: str
    """The request target (path and query)."""
    headers: tuple[tuple[str, str], ...]
    """The header fields, names lower-cased, in order."""

    def header(self, name: str) -> str | None:
        """Return the value of the header ``name`` (lower case), or None."""
        for key, value in self.headers:
            if key == name:
                return value
        return None


@dataclass
class _Response:
    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes
    bodiless: bool

    def head(self) -> bytes:
        lines = [f"HTTP/1.1 {self.status} {self.reason}"]
        lines += [f"{key}: {value}" for key, value in self.headers]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


@dataclass
class _Forced:
    kind: str
    times: int
    when: Callable[[Request], bool] | None
    keep: int | None


class FaultProxy:
    """An HTTP/1.1 proxy on 127.0.0.1 that injects faults into a share of the requests.

    Args:
        upstream: The URL of the server (``http://127.0.0.1:port``).
        rate: The share of requests that meet a fault (0 to 1).
        weights: Relative weights of the kinds in `FAULTS` (missing kinds weigh 0; None: 1 each).
        seed: Seeds the random generators.
        delay: The range in seconds of a ``delay`` fault.
    """

    def __init__(
        self,
        upstream: str,
        *,
        rate: float = 0.0,
        weights: Mapping[str, int] | None = None,
        seed: int = 0,
        delay: tuple[float, float] = (0.05, 0.25),
    ) -> None:
        parts = urlsplit(upstream)
        if parts.hostname != "127.0.0.1" or parts.port is None:
            raise ValueError("the proxy only forwards to http://127.0.0.1:<port>")
        if weights is None:
            weights = dict.fromkeys(FAULTS, 1)
        unknown = set(weights) - set(FAULTS)
        if unknown:
            raise ValueError(f"unknown fault kinds: {sorted(unknown)}")
        self._upstream = (parts.hostname, parts.port)
        self.rate = rate
        """The share of requests that meet a fault; may be changed while running."""
        self._cards = [kind for kind in FAULTS for _ in range(weights.get(kind, 0))]
        self._deck: list[str] = []
        self._decide = random.Random(f"{seed}-decide")
        self._shuffle = random.Random(f"{seed}-shuffle")
        self._shape = random.Random(f"{seed}-shape")
        self._delay = delay
        self._forced: list[_Forced] = []
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self.injected: Counter[str] = Counter()
        """How many faults of each kind were injected."""
        self.faults: list[tuple[str, Request]] = []
        """Every fault injected, with the request it met, in order."""
        self.requests = 0
        """How many requests arrived."""
        self.seen: list[Request] = []
        """Every request that arrived, in order."""
        self.retries = 0
        """How many of them repeated an earlier request (botocore's retries, aiohttp's resends)."""
        self._invocations: set[str] = set()
        self.connections = 0
        """How many client connections were accepted."""

    # ---- control ---------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The proxy's URL, to use as the S3 endpoint."""
        if self._server is None:
            raise RuntimeError("the proxy is not started")
        port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def force(
        self,
        kind: str,
        *,
        times: int = 1,
        when: Callable[[Request], bool] | None = None,
        keep: int | None = None,
    ) -> None:
        """Inject ``kind`` into the next ``times`` requests that ``when`` accepts (all if None).

        Forced faults come before the random ones and ignore the rate. A truncation keeps
        ``keep`` bytes of the body (fewer if the body is shorter; None: a random number), a
        corruption flips the byte at ``keep`` (None: a random one).
        """
        if kind not in FAULTS + FORCED_ONLY:
            raise ValueError(f"unknown fault kind {kind!r}")
        self._forced.append(_Forced(kind, times, when, keep))

    async def start(self) -> None:
        """Listen on a free port of 127.0.0.1."""
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0, limit=_HEAD_LIMIT)

    async def aclose(self) -> None:
        """Stop listening and drop every connection."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if server is not None:
            await server.wait_closed()

    async def __aenter__(self) -> FaultProxy:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # ---- choosing faults -------------------------------------------------------------------

    def _choose(self, request: Request) -> tuple[str | None, int | None]:
        """Return the fault for ``request`` (None for none) and the bytes a truncation keeps."""
        for forced in self._forced:
            if forced.when is None or forced.when(request):
                forced.times -= 1
                if forced.times <= 0:
                    self._forced.remove(forced)
                return forced.kind, forced.keep
        if not self._cards or self._decide.random() >= self.rate:
            return None, None
        for _ in range(2):
            for index, kind in enumerate(self._deck):
                if kind != "truncate" or request.method == "GET":
                    return self._deck.pop(index), None
            fresh = list(self._cards)
            self._shuffle.shuffle(fresh)
            self._deck.extend(fresh)
        return None, None  # only truncations are left, and this request has nothing to cut

    # ---- serving ---------------------------------------------------------------------------

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._writers.add(writer)
        self.connections += 1
        try:
            await self._serve(reader, writer)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            pass  # the client went away, or sent something we cannot parse: drop it
        finally:
            self._tasks.discard(task)
            self._writers.discard(writer)
            writer.transport.abort()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError:
                return  # the client closed its connection between requests
            request, forward = _parse_request(head)
            if (request.header("expect") or "").lower() == "100-continue":
                # We answer the expectation ourselves and forward the request whole.
                writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
                await writer.drain()
            body = await _read_body(reader, request.headers)
            self.requests += 1
            self.seen.append(request)
            invocation = request.header("amz-sdk-invocation-id")
            if invocation is not None:
                if invocation in self._invocations:
                    self.retries += 1
                self._invocations.add(invocation)
            kind, keep = self._choose(request)
            if kind == "reset":
                self._record(kind, request)
                _reset(writer)
                return
            if kind in _ERRORS:
                self._record(kind, request)
                writer.write(_error_response(kind, request, self.injected[kind]))
                await writer.drain()
                continue
            try:
                response = await self._forward(forward + body, request)
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
                _reset(writer)  # the server failed us: the client sees a broken connection
                return
            if kind == "truncate" and response.body:
                self._record(kind, request)
                cut = self._shape.randrange(len(response.body)) if keep is None else keep
                cut = min(cut, len(response.body) - 1)
                writer.write(response.head() + response.body[:cut])
                await writer.drain()
                writer.close()
                await writer.wait_closed()
                return
            if kind == "corrupt" and response.body:
                self._record(kind, request)
                at = self._shape.randrange(len(response.body)) if keep is None else keep
                body = bytearray(response.body)
                body[min(at, len(body) - 1)] ^= 0xFF
                response.body = bytes(body)
            if kind in ("lost_response", "truncate"):
                self._record("lost_response", request)
                _reset(writer)
                return
            if kind == "delay":
                self._record(kind, request)
                await asyncio.sleep(self._shape.uniform(*self._delay))
            writer.write(response.head() + response.body)
            await writer.drain()
            if (request.header("connection") or "").lower() == "close":
                return

    def _record(self, kind: str, request: Request) -> None:
        self.injected[kind] += 1
        self.faults.append((kind, request))

    async def _forward(self, data: bytes, request: Request) -> _Response:
        reader, writer = await asyncio.open_connection(*self._upstream, limit=_HEAD_LIMIT)
        try:
            writer.write(data)
            await writer.drain()
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                status, reason, headers = _parse_response_head(head)
                if not 100 <= status < 200:
                    break
            bodiless = request.method == "HEAD" or status in _NO_BODY_STATUSES
            kept = [(key, value) for key, value in headers if key.lower() not in _HOP_BY_HOP]
            if bodiless:
                return _Response(status, reason, kept, b"", bodiless=True)
            lowered = [(key.lower(), value) for key, value in headers]
            if any(key == "content-length" for key, _ in lowered) or any(
                key == "transfer-encoding" for key, _ in lowered
            ):
                body = await _read_body(reader, tuple(lowered))
                if any(key == "transfer-encoding" for key, _ in lowered):
                    body = _dechunk(body)
            else:
                body = await reader.read()  # delimited by the end of the connection
            kept = [(key, value) for key, value in kept if key.lower() != "content-length"]
            kept.append(("Content-Length", str(len(body))))
            return _Response(status, reason, kept, body, bodiless=False)
        finally:
            writer.transport.abort()


def _parse_request(head: bytes) -> tuple[Request, bytes]:
    """Return the request and the head to forward (hop-by-hop fields replaced)."""
    lines = head.decode("latin-1").split("\r\n")
    method, target, _version = lines[0].split(" ", 2)
    fields: list[tuple[str, str]] = []
    forward = [lines[0]]
    for line in lines[1:]:
        if not line:
            continue
        name, _, value = line.partition(":")
        name, value = name.strip(), value.strip()
        fields.append((name.lower(), value))
        if name.lower() not in ("connection", "keep-alive", "expect", "proxy-connection"):
            forward.append(f"{name}: {value}")
    # moto closes each connection after its response; we say so and read up to the close.
    forward.append("Connection: close")
    data = ("\r\n".join(forward) + "\r\n\r\n").encode("latin-1")
    return Request(method=method, target=target, headers=tuple(fields)), data


def _parse_response_head(head: bytes) -> tuple[int, str, list[tuple[str, str]]]:
    lines = head.decode("latin-1").split("\r\n")
    _version, status, *rest = lines[0].split(" ", 2)
    headers = []
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers.append((name.strip(), value.strip()))
    return int(status), rest[0] if rest else "", headers


async def _read_body(reader: asyncio.StreamReader, headers: tuple[tuple[str, str], ...]) -> bytes:
    """Read a message body as framed (chunked bodies are returned with their framing)."""
    fields = dict(headers)
    if "chunked" in fields.get("transfer-encoding", "").lower():
        raw = bytearray()
        while True:
            line = await reader.readuntil(b"\r\n")
            raw += line
            size = int(line.split(b";")[0].strip(), 16)
            if size == 0:
                while True:
                    trailer = await reader.readuntil(b"\r\n")
                    raw += trailer
                    if trailer == b"\r\n":
                        return bytes(raw)
            raw += await reader.readexactly(size + 2)
    length = int(fields.get("content-length", "0") or 0)
    return await reader.readexactly(length) if length else b""


def _dechunk(raw: bytes) -> bytes:
    data = bytearray()
    pos = 0
    while True:
        end = raw.index(b"\r\n", pos)
        size = int(raw[pos:end].split(b";")[0].strip(), 16)
        if size == 0:
            return bytes(data)
        data += raw[end + 2 : end + 2 + size]
        pos = end + 2 + size + 2


def _error_response(kind: str, request: Request, number: int) -> bytes:
    status, reason, code, message = _ERRORS[kind]
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message}</Message>"
        f"<RequestId>fault-{kind}-{number}</RequestId></Error>"
    ).encode()
    headers = [
        ("Content-Type", "application/xml"),
        ("Content-Length", str(len(body))),
        ("x-amz-request-id", f"fault-{kind}-{number}"),
    ]
    response = _Response(status, reason, headers, body, bodiless=request.method == "HEAD")
    return response.head() + (b"" if response.bodiless else body)


def _reset(writer: asyncio.StreamWriter) -> None:
    """Drop the connection with a TCP reset, as a failing network or server does."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()
