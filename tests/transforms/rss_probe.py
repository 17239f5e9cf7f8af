"""Measure the peak RSS growth of running ``identity`` over a large fs object (a subprocess).

    python -m tests.transforms.rss_probe ROOT SIZE_MIB ISOLATION

Prints one JSON line: the bytes copied and the growth of the peak RSS over the RSS after a
warm-up run (Linux: VmHWM, reset through /proc/self/clear_refs).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import anyio

from asyncstore import run_transform
from asyncstore_fs import FileSystemModule


def status(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise LookupError(field)


async def main(root: str, size: int, isolation: str) -> dict[str, int]:
    with open(os.path.join(root, "big"), "wb") as file:  # noqa: ASYNC230 - set-up only
        file.truncate(size)  # sparse: reading it costs no disk
    with open(os.path.join(root, "small"), "wb") as file:  # noqa: ASYNC230
        file.write(os.urandom(32 << 20))
    async with FileSystemModule(root=root, fsync=False) as store:
        await run_transform(  # warm-up: imports, thread pools, buffers of a first run
            "identity", inputs=[(store, "small")], outputs=[(store, "warm")], isolation=isolation
        )
        Path("/proc/self/clear_refs").write_text("5")  # noqa: ASYNC240 - resets VmHWM
        baseline = status("VmRSS")
        result = await run_transform(
            "identity", inputs=[(store, "big")], outputs=[(store, "copy")], isolation=isolation
        )
        peak = status("VmHWM")
        copied = (await store.stat("copy")).size
        await store.delete("copy")
    return {"bytes": result.bytes_read, "stored": copied, "growth": peak - baseline}


if __name__ == "__main__":
    root, mib, isolation = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    print(json.dumps(anyio.run(main, root, mib << 20, isolation)))
