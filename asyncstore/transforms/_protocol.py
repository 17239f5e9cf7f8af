"""The frames a host and its transform worker process exchange over two pipes.

Every frame is a 7-byte header (kind, stream index, payload length; big-endian) and its
payload. The worker pulls input (``READ`` → ``DATA``) and pushes output (``META``,
``WRITE``, ``CLOSE``), so pipes never fill with bytes nobody asked for, and each side's
waits are bounded by the other's progress.

Host to worker: ``INIT`` (JSON: what to run), ``DATA`` (input bytes; empty at the end),
``INPUT_FAILED`` (JSON: the host could not read that input).
Worker to host: ``READ`` (4-byte size wanted), ``META`` (JSON: metadata and content type),
``WRITE`` (output bytes), ``CLOSE``, ``LOG`` (JSON: a log record), ``DONE``, ``FAILED``
(JSON: the error, its traceback, and whether it was an input's).
"""

from __future__ import annotations

import json
import os
import struct
from typing import Any

__all__ = [
    "CHUNK",
    "HEADER",
    "Kind",
    "decode",
    "encode",
    "grow_pipe",
    "write_all",
]

HEADER = struct.Struct(">BHI")
"""kind (1 byte), stream index (2 bytes), payload length (4 bytes)."""
CHUNK = 1 << 20
"""The most input bytes a worker asks for at a time."""
_F_SETPIPE_SZ = 1031  # Linux: fcntl.F_SETPIPE_SZ (Python 3.10+ names it; older fcntl may not)


class Kind:
    """Frame kinds."""

    INIT = 1
    DATA = 2
    INPUT_FAILED = 3
    READ = 10
    META = 11
    WRITE = 12
    CLOSE = 13
    LOG = 14
    DONE = 15
    FAILED = 16


def encode(data: Any) -> bytes:
    """Encode a JSON payload."""
    return json.dumps(data, separators=(",", ":")).encode()


def decode(payload: bytes | bytearray) -> Any:
    """Decode a JSON payload."""
    return json.loads(payload)


def grow_pipe(fd: int, size: int = CHUNK) -> None:
    """Ask for a pipe buffer of ``size`` bytes (Linux), so a chunk passes in one write.

    Fewer, larger writes make process isolation cheaper; where the system refuses (other
    systems, or a lower ``/proc/sys/fs/pipe-max-size``) the default buffer is kept.
    """
    try:
        import fcntl

        fcntl.fcntl(fd, getattr(fcntl, "F_SETPIPE_SZ", _F_SETPIPE_SZ), size)
    except (ImportError, OSError):
        pass


def write_all(fd: int, header: bytes, payload: bytes | bytearray | memoryview) -> int:
    """Write a frame to a blocking fd; return the bytes written."""
    total = len(header) + len(payload)
    done = os.writev(fd, [header, payload]) if payload else os.write(fd, header)
    while done < total:
        if done < len(header):
            done += os.writev(fd, [header[done:], payload])
        else:
            done += os.write(fd, memoryview(payload)[done - len(header) :])
    return total
