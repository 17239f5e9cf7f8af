"""The main job, end to end, on a local store: ``python -m asyncstore.demo [STORE]``.

Lists the installed plugins, then on the store (by default a filesystem store in
``./.demo-store`` when asyncstore-fs is installed, else the memory module) puts a file, stats
it, reads a range, lists, prints statistics and deletes what it wrote.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import anyio

import asyncstore


def default_store() -> str:
    """Return the embedded default store: fs in ./.demo-store, or memory without asyncstore-fs."""
    if any(plugin.name == "fs" for plugin in asyncstore.plugins()):
        return (Path.cwd() / ".demo-store").as_uri().replace("file://", "fs://", 1)
    return "memory://"


def _say(text: str = "") -> None:
    sys.stdout.write(text + "\n")


async def run(spec: str) -> None:
    """Run the demo against the store ``spec``."""
    _say("installed storage modules:")
    for plugin in asyncstore.plugins():
        _say(f"  {plugin.name:<10} {plugin.target:<40} {plugin.distribution} {plugin.version}")
    _say(f"\nstore: {spec}")
    payload = b"asyncstore demo object\n" + b"".join(
        f"line {n:04d}: the quick brown fox\n".encode() for n in range(2000)
    )
    async with asyncstore.open_store(spec) as store:
        key = "demo/hello.txt"
        with tempfile.TemporaryFile() as file:  # a local file, streamed in chunks
            file.write(payload)
            file.seek(0)
            handle = await store.put(
                file, key=key, metadata={"source": "demo"}, content_type="text/plain"
            )
        _say(f"put       {handle!r}: {len(payload)} bytes from a local file")
        info = await store.stat(handle)
        _say(f"stat      size={info.size} etag={info.etag} type={info.content_type}")
        _say(f"          modified={info.modified} metadata={dict(info.metadata)}")
        async with await store.get_read_stream(handle, start=23, end=59) as stream:
            _say(f"range     [23, 59) -> {await stream.read()!r}")
        listed = [item.handle async for item in store.list("demo/")]
        _say(f"list      demo/ -> {listed}")
        _say(f"stats     {json.dumps(await store.statistics())}")
        await store.delete(handle)
        _say(f"delete    {handle!r}; available now: {await store.available(handle)}")


def main(argv: list[str] | None = None) -> int:
    """Parse arguments and run the demo; return the exit code."""
    parser = argparse.ArgumentParser(prog="python -m asyncstore.demo", description=__doc__)
    parser.add_argument("store", nargs="?", help="a store name or URL (default: local)")
    args = parser.parse_args(argv)
    try:
        anyio.run(run, args.store or default_store())
    except asyncstore.StorageError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
