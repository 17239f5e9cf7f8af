"""cp and sync: copy objects between any two stores, with progress, resumably."""

from __future__ import annotations

import hashlib
import sys
from dataclasses import dataclass

import anyio
import click
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from asyncstore.cli._common import Target, parse_target, run, state
from asyncstore.errors import AlreadyExistsError, NotFoundError, StorageError
from asyncstore.info import ObjectInfo
from asyncstore.keys import validate_key, validate_prefix
from asyncstore.module import StorageModule
from asyncstore.streams import ReadStream


@dataclass
class Totals:
    """What a copy did."""

    copied: int = 0
    skipped: int = 0
    kept: int = 0
    bytes: int = 0


async def _digest(store: StorageModule, handle: str) -> str:
    digest = hashlib.sha256()
    async with await store.get_read_stream(handle) as stream:
        async for chunk in stream:
            digest.update(chunk)
    return digest.hexdigest()


async def same_object(
    source: StorageModule, info: ObjectInfo, target: StorageModule, key: str
) -> bool:
    """Whether ``key`` in ``target`` already holds the bytes of ``info``.

    Equal sizes and either the same etag from the same kind of store, or the same SHA-256.
    """
    try:
        existing = await target.stat(key)
    except NotFoundError:
        return False
    if existing.size != info.size:
        return False
    if type(source) is type(target) and info.etag and info.etag == existing.etag:
        return True
    # Etags of different stores (or of copies) need not agree for equal bytes: compare them.
    return await _digest(source, info.handle) == await _digest(target, key)


class _Counting(ReadStream):
    """Passes a stream through, advancing a progress bar."""

    def __init__(self, inner: ReadStream, progress: Progress, task: TaskID) -> None:
        super().__init__(inner.info)
        self._inner, self._progress, self._task = inner, progress, task

    async def _read_at(self, offset: int, max_bytes: int) -> bytes:
        if offset != self._inner.tell():  # a target that re-reads (a retried part) seeks
            await self._inner.seek(offset)
        data = await self._inner.read(max_bytes)
        self._progress.advance(self._task, len(data))
        return data


async def copy_tree(
    source: StorageModule,
    source_key: str,
    target: StorageModule,
    target_key: str,
    *,
    recursive: bool,
    concurrency: int,
    skip_existing: bool,
    progress: Progress,
    overwrite: bool = True,
) -> Totals:
    """Copy one object, or (recursive) every object under a prefix, to another store.

    With ``overwrite`` False, an object is stored only where none exists (atomically, by the
    target store); existing ones are kept and counted.
    """
    totals = Totals()
    if recursive:
        validate_prefix(source_key)
        infos = [info async for info in source.list(source_key)]
    else:
        infos = [await source.stat(validate_key(source_key))]
    overall = progress.add_task("total", total=sum(info.size for info in infos))
    limiter = anyio.CapacityLimiter(concurrency)
    failures: list[StorageError | OSError] = []

    async def one(info: ObjectInfo) -> None:
        try:
            await copy_one(info)
        except (StorageError, OSError) as exc:
            # One object failing stops nothing else; the first failure is reported at the end.
            failures.append(exc)

    async def copy_one(info: ObjectInfo) -> None:
        if recursive:
            key = target_key + info.handle[len(source_key) :]
        else:
            key = target_key
        async with limiter:
            if skip_existing and await same_object(source, info, target, key):
                totals.skipped += 1
                progress.advance(overall, info.size)
                return
            async with await source.get_read_stream(info.handle) as stream:
                counted = _Counting(stream, progress, overall)
                try:
                    await target.put(
                        counted,
                        key=key,
                        metadata=info.metadata,
                        content_type=info.content_type,
                        overwrite=overwrite,
                    )
                except AlreadyExistsError:
                    if overwrite:
                        raise  # a key that clashes with a prefix: a real failure
                    totals.kept += 1
                    progress.advance(overall, info.size - counted.tell())
                    return
            totals.copied += 1
            totals.bytes += info.size

    async with anyio.create_task_group() as group:
        for info in infos:
            group.start_soon(one, info)
    if failures:
        first = failures[0]
        if len(failures) > 1 and isinstance(first, StorageError):
            first.message += f" (and {len(failures) - 1} more object(s) failed)"
        raise first
    return totals


def _destination_key(source: Target, destination: Target, recursive: bool) -> str:
    if destination.key is not None:
        if recursive and not destination.key.endswith("/"):
            return destination.key + "/"
        return destination.key
    if source.key is None:
        return ""
    return source.key if recursive else source.key.rsplit("/", 1)[-1]


def _run_copy(
    source: str,
    destination: str,
    recursive: bool,
    concurrency: int,
    skip: bool,
    overwrite: bool = True,
) -> None:
    src, dst = parse_target(source), parse_target(destination)
    if src.key is None and not recursive:
        raise click.UsageError("SOURCE names no key: use STORE:KEY, or -r for a whole store")
    if recursive and src.key is not None and not src.key.endswith("/"):
        src = Target(src.store, src.key + "/")
    target_key = _destination_key(src, dst, recursive)

    async def main() -> Totals:
        columns = (
            TextColumn("[progress.description]{task.description}"),
            BarColumn(),
            DownloadColumn(binary_units=True),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
        )
        with Progress(*columns, disable=not sys.stderr.isatty(), transient=True) as progress:
            async with state().open(src.store) as a, state().open(dst.store) as b:
                return await copy_tree(
                    a,
                    src.key or "",
                    b,
                    target_key,
                    recursive=recursive,
                    concurrency=concurrency,
                    skip_existing=skip,
                    progress=progress,
                    overwrite=overwrite,
                )

    totals = run(main)
    kept = f"; kept {totals.kept} existing (--no-overwrite)" if not overwrite else ""
    click.echo(
        f"copied {totals.copied} object(s), {totals.bytes} bytes; "
        f"skipped {totals.skipped} already present{kept}",
        err=True,
    )


_concurrency = click.option(
    "--concurrency",
    "-j",
    default=8,
    show_default=True,
    type=click.IntRange(1, 256),
    help="How many objects to copy at once.",
)


@click.command()
@click.argument("source")
@click.argument("destination")
@click.option("--recursive", "-r", is_flag=True, help="Copy everything under SOURCE's prefix.")
@_concurrency
@click.option(
    "--skip-existing/--overwrite",
    default=False,
    help="Skip objects whose size and checksum already match.",
)
@click.option(
    "--no-overwrite",
    is_flag=True,
    help="Never replace an object that exists at the destination (atomic create-only).",
)
def cp(
    source: str,
    destination: str,
    recursive: bool,
    concurrency: int,
    skip_existing: bool,
    no_overwrite: bool,
) -> None:
    """Copy objects from any store to any store.

    SOURCE and DESTINATION are STORE:KEY or URL//KEY; with -r, keys are prefixes.
    """
    _run_copy(
        source, destination, recursive, concurrency, skip_existing, overwrite=not no_overwrite
    )


@click.command()
@click.argument("source")
@click.argument("destination")
@_concurrency
def sync(source: str, destination: str, concurrency: int) -> None:
    """Copy every object under SOURCE's prefix that DESTINATION lacks or holds differently.

    Objects whose size and checksum already match are skipped, so an interrupted sync resumes
    where it stopped. Nothing is deleted from DESTINATION.
    """
    _run_copy(source, destination, True, concurrency, True)
