"""Object commands: put, get, cat, ls, stat, rm."""

from __future__ import annotations

import mimetypes
import os
import sys
import tempfile
from pathlib import Path
from typing import IO, Any

import anyio
import click

from asyncstore.cli._common import (
    emit_json,
    human_size,
    parse_range,
    parse_target,
    require_key,
    run,
    state,
)
from asyncstore.config import public_spec
from asyncstore.keys import validate_prefix


def _metadata(pairs: tuple[str, ...]) -> dict[str, str]:
    result = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep:
            raise click.BadParameter(f"{pair!r} is not NAME=VALUE", param_hint="--meta")
        result[name] = value
    return result


@click.command()
@click.argument("source", type=click.Path(dir_okay=False, allow_dash=True))
@click.argument("destination")
@click.option("--key", help="The key to store under (default: DESTINATION's key or the file name).")
@click.option("--content-type", help="The MIME type (default: guessed from the file name).")
@click.option("--meta", "meta", multiple=True, metavar="NAME=VALUE", help="User metadata.")
@click.option(
    "--no-overwrite",
    is_flag=True,
    help="Store only if no object exists under the key (atomic; fails if one does).",
)
@click.option(
    "--if-match",
    metavar="ETAG",
    help="Replace only the object whose etag is ETAG (atomic compare-and-swap).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def put(
    source: str,
    destination: str,
    key: str | None,
    content_type: str | None,
    meta: tuple[str, ...],
    no_overwrite: bool,
    if_match: str | None,
    as_json: bool,
) -> None:
    """Store a file (or standard input, with -) in a store and print its handle.

    DESTINATION is STORE, STORE:KEY or URL//KEY; a KEY ending in '/' gets the file's name,
    and with no KEY the file's name is the key. A store that chooses its own handles (a
    legacy module) takes no KEY (STORE or STORE:). Prints the handle; --json adds the new
    object's etag where the store reports it.
    """
    if no_overwrite and if_match is not None:
        raise click.UsageError("--no-overwrite and --if-match cannot be combined")
    target = parse_target(destination)
    named = key or target.key
    explicit = bool(meta) or content_type is not None
    if content_type is None and source != "-":
        content_type = mimetypes.guess_type(source)[0]
    metadata = _metadata(meta)
    options: dict[str, Any] = {
        "metadata": metadata,
        "content_type": content_type,
        "overwrite": not no_overwrite,
        "if_match": if_match,
    }

    async def main() -> str:
        async with state().open(target.store) as store:
            capabilities = store.capabilities()
            options["key"] = _put_key(capabilities, target.store, named, source)
            if options["key"] is None:  # a store that chooses the handle replaces nothing
                options["overwrite"] = True
            if explicit and not capabilities.get("metadata"):
                raise click.UsageError(
                    f"{public_spec(target.store)!r} keeps no metadata or content type: "
                    "--meta and --content-type would be lost"
                )
            if source == "-":
                return await store.put(sys.stdin.buffer, **options)
            file = await anyio.to_thread.run_sync(open, source, "rb")
            try:
                return await store.put(file, **options)
            finally:
                await anyio.to_thread.run_sync(file.close)

    handle = run(main)
    if as_json:
        emit_json({"handle": handle, "etag": getattr(handle, "etag", None)})
    else:
        click.echo(handle)


def _put_key(
    capabilities: dict[str, object], store: str, named: str | None, source: str
) -> str | None:
    """Return the key to put under, or None where the store chooses the handle.

    Raises:
        click.UsageError: If a key is needed and missing, or given and not accepted.
    """
    if not capabilities.get("named_keys"):
        if named is not None:
            raise click.UsageError(
                f"{public_spec(store)!r} chooses its own handles: give no key "
                "(STORE or STORE:), and the handle it chose is printed"
            )
        return None
    chosen = named or (None if source == "-" else Path(source).name)
    if chosen is None:
        raise click.UsageError("reading standard input needs a key: STORE:KEY or --key")
    if chosen.endswith("/") and source != "-":
        chosen += Path(source).name  # a key ending in '/' names a folder
    return chosen


async def _copy_out(spec: str, key: str, start: int, end: int | None, out: IO[bytes]) -> None:
    async with (
        state().open(spec) as store,
        await store.get_read_stream(key, start=start, end=end) as stream,
    ):
        async for chunk in stream:
            await anyio.to_thread.run_sync(out.write, chunk)


@click.command()
@click.argument("source")
@click.argument("destination", required=False, type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--range", "byte_range", metavar="A-B", help="Only bytes A up to (not including) B.")
def get(source: str, destination: str | None, byte_range: str | None) -> None:
    """Fetch an object into a file (default: its name) or standard output (-).

    SOURCE is STORE:KEY or URL//KEY. The file appears only once complete.
    """
    target = parse_target(source)
    key = require_key(target)
    start, end = parse_range(byte_range)
    path = destination or key.rsplit("/", 1)[-1]
    if path == "-":
        run(lambda: _copy_out(target.store, key, start, end, sys.stdout.buffer))
        return
    directory = os.path.dirname(os.path.abspath(path))
    handle, temporary = tempfile.mkstemp(prefix=".asyncstore-", dir=directory)
    try:
        with os.fdopen(handle, "wb") as out:
            run(lambda: _copy_out(target.store, key, start, end, out))
            # mkstemp makes the file private; give it the mode a plain open() would.
            umask = os.umask(0)
            os.umask(umask)
            os.fchmod(out.fileno(), 0o666 & ~umask)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


@click.command()
@click.argument("source")
@click.option("--range", "byte_range", metavar="A-B", help="Only bytes A up to (not including) B.")
def cat(source: str, byte_range: str | None) -> None:
    """Write an object to standard output. SOURCE is STORE:KEY or URL//KEY."""
    target = parse_target(source)
    key = require_key(target)
    start, end = parse_range(byte_range)
    run(lambda: _copy_out(target.store, key, start, end, sys.stdout.buffer))


@click.command(name="ls")
@click.argument("location")
@click.option("--long", "-l", "long_format", is_flag=True, help="Show size, date and type.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON lines, one object each.")
def ls(location: str, long_format: bool, as_json: bool) -> None:
    """List objects. LOCATION is STORE, STORE:PREFIX or URL//PREFIX."""
    target = parse_target(location)
    prefix = validate_prefix(target.key or "")

    async def main() -> None:
        async with state().open(target.store) as store:
            async for info in store.list(prefix):
                if as_json:
                    import json

                    click.echo(json.dumps(info.to_dict()))
                elif long_format:
                    modified = info.modified.strftime("%Y-%m-%d %H:%M:%S") if info.modified else "-"
                    click.echo(
                        f"{human_size(info.size):>10}  {modified}  "
                        f"{info.content_type or '-':<24}  {info.handle}"
                    )
                else:
                    click.echo(info.handle)

    run(main)


@click.command()
@click.argument("source")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def stat(source: str, as_json: bool) -> None:
    """Describe an object. SOURCE is STORE:KEY or URL//KEY."""
    target = parse_target(source)
    key = require_key(target)

    async def main() -> dict[str, object]:
        async with state().open(target.store) as store:
            return (await store.stat(key)).to_dict()

    info = run(main)
    if as_json:
        emit_json(info)
        return
    for name, value in info.items():
        click.echo(f"{name + ':':<14}{value}")


@click.command()
@click.argument("targets", nargs=-1, required=True)
@click.option(
    "--prefix", is_flag=True, help="Treat each key as a prefix and delete everything under it."
)
@click.option("--yes", "-y", is_flag=True, help="Do not ask before deleting by prefix.")
def rm(targets: tuple[str, ...], prefix: bool, yes: bool) -> None:
    """Delete objects. Each TARGET is STORE:KEY or URL//KEY."""
    parsed = [parse_target(text) for text in targets]
    keys = [validate_prefix(require_key(t, "prefix")) if prefix else require_key(t) for t in parsed]

    def confirm(count: int, key: str) -> bool:
        return click.confirm(f"delete {count} object(s) under {key!r}?", err=True)

    async def main() -> int:
        deleted = 0
        for target, key in zip(parsed, keys, strict=True):
            async with state().open(target.store) as store:
                if not prefix:
                    if await store.available(key):
                        await store.delete(key)
                        deleted += 1
                    continue
                handles = [info.handle async for info in store.list(key)]
                if not handles:
                    continue
                if not yes and not await anyio.to_thread.run_sync(confirm, len(handles), key):
                    raise click.Abort
                for handle in handles:
                    await store.delete(handle)
                deleted += len(handles)
        return deleted

    count = run(main)
    click.echo(f"deleted {count} object(s)", err=True)
