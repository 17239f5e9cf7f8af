"""What a host and its transform worker process exchange: frames, and bytes in shared memory.

Every frame is a 7-byte header (kind, index, payload length; big-endian) and its payload.
Bytes never cross the pipes: they sit in 1 MiB slots of a region both processes map, and a
frame names the slot. The worker pulls input (``READ`` → ``DATA``) and pushes output
(``WRITE``), so a slot holds only what was asked for, and each side's waits are bounded by
the other's progress. Each side hands a slot back as soon as it has copied its bytes out.

Host to worker: ``INIT`` (JSON: what to run), ``DATA`` (input ``index``: slot and length;
length 0 at the end), ``INPUT_FAILED`` (JSON: the host could not read that input),
``RELEASE`` (output slot ``index`` is free again).
Worker to host: ``READ`` (4-byte size wanted of input ``index``), ``TAKEN`` (input slot
``index`` is free again), ``META`` (JSON: metadata and content type), ``WRITE`` (output
``index``: slot and length), ``CLOSE``, ``LOG`` (JSON: a log record), ``DONE``, ``FAILED``
(JSON: the error, its traceback, and whether it was an input's).

Frames are small (all but ``INIT``, ``LOG`` and ``FAILED`` are under 2 KiB), and the pipes
hold only the few frames in flight.
"""

from __future__ import annotations

import json
import mmap
import os
import struct
import tempfile
from typing import Any

__all__ = [
    "CHUNK",
    "HEADER",
    "IN_SLOTS",
    "OUT_SLOTS",
    "REGION",
    "SLOT",
    "Kind",
    "RemoteError",
    "decode",
    "encode",
    "grow_pipe",
    "region_fd",
    "slot_range",
]

HEADER = struct.Struct(">BHI")
"""kind (1 byte), index (2 bytes), payload length (4 bytes)."""
SLOT = struct.Struct(">BI")
"""The payload of DATA and WRITE: slot (1 byte) and length (4 bytes)."""
CHUNK = 1 << 20
"""The size of a slot: the most bytes a frame names."""
IN_SLOTS = 4
"""Input slots (filled by the host); the first slots of the region."""
OUT_SLOTS = 4
"""Output slots (filled by the worker); after the input slots."""
REGION = (IN_SLOTS + OUT_SLOTS) * CHUNK
"""The size of the shared region."""
_F_SETPIPE_SZ = 1031  # Linux: fcntl.F_SETPIPE_SZ (Python 3.10+ names it; older fcntl may not)


class Kind:
    """Frame kinds."""

    INIT = 1
    DATA = 2
    INPUT_FAILED = 3
    RELEASE = 4
    READ = 10
    META = 11
    WRITE = 12
    CLOSE = 13
    LOG = 14
    DONE = 15
    FAILED = 16
    TAKEN = 17


class RemoteError(Exception):
    """An error raised in the worker process whose type does not exist in the host.

    Attributes:
        type_name: The name of the error's type in the worker.
        remote_traceback: The worker's traceback, as text.
    """

    def __init__(self, type_name: str, message: str, remote_traceback: str = "") -> None:
        super().__init__(f"{type_name}: {message}" if message else type_name)
        self.type_name = type_name
        self.remote_traceback = remote_traceback


def encode(data: Any) -> bytes:
    """Encode a JSON payload."""
    return json.dumps(data, separators=(",", ":")).encode()


def decode(payload: bytes | bytearray) -> Any:
    """Decode a JSON payload."""
    return json.loads(payload)


def slot_range(slot: int, length: int = CHUNK) -> slice:
    """The region's bytes of ``slot`` (input slots first, then output slots)."""
    start = slot * CHUNK
    return slice(start, start + length)


def region_fd() -> int:
    """Create the shared region: a memory file (Linux) or an unlinked temporary file."""
    create = getattr(os, "memfd_create", None)
    if create is not None:
        fd: int = create("asyncstore-transform", 0)
    else:
        fd = os.dup(tempfile.TemporaryFile().fileno())
    os.ftruncate(fd, REGION)
    return fd


def map_region(fd: int) -> mmap.mmap:
    """Map the shared region."""
    return mmap.mmap(fd, REGION, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)


def grow_pipe(fd: int, size: int = 1 << 16) -> None:
    """Ask for a pipe buffer of ``size`` bytes (Linux), so frames rarely wait for room."""
    try:
        import fcntl

        fcntl.fcntl(fd, getattr(fcntl, "F_SETPIPE_SZ", _F_SETPIPE_SZ), size)
    except (ImportError, OSError):
        pass
