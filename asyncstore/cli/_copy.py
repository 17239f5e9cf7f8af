"""cp and sync: copy objects between any two stores, with progress, resumably.

Into a store that chooses its own handles (a legacy module), cp stores each object and
prints which handle it got; sync, and cp --skip-existing, refuse before copying anything,
since such a store cannot say which objects it already holds.
"""

from __future__ import annotations

import hashlib
import sys
from dataclasses import dataclass, field

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

from asyncstore.cli._common import Target, emit_json, parse_target, run, state
from asyncstore.config import public_spec
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
    handles: dict[str, str] = field(default_factory=dict)
    """Each copied object's source handle and the handle the target stored it under."""
    chooses_handles: bool = False
    """Whether the target chose the handles (it has no named keys)."""

    def to_dict(self) -> dict[str, object]:
        """Return the totals and handles for ``--json``."""
        return {
            "copied": self.copied,
            "skipped": self.skipped,
            "kept": self.kept,
            "bytes": self.bytes,
            "handles": dict(sorted(self.handles.items())),
        }


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
    totals: Totals | None = None,
) -> Totals:
    """Copy one object, or (recursive) every object under a prefix, to another store.

    With ``overwrite`` False, an object is stored only where none exists (atomically, by the
    target store); existing ones are kept and counted. A target that chooses its own handles
    gets no key (``target_key`` is not used, nothing is skipped and nothing can be
    replaced); ``totals.handles`` records where each object went, including when the copy
    fails partway (pass ``totals`` in to keep them).
    """
    totals = totals if totals is not None else Totals()
    totals.chooses_handles = not target.capabilities().get("named_keys")
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
        key: str | None = target_key
        if totals.chooses_handles:
            key = None
        elif recursive:
            key = target_key + info.handle[len(source_key) :]
        async with limiter:
            if skip_existing and key is not None and await same_object(source, info, target, key):
                totals.skipped += 1
                progress.advance(overall, info.size)
                return
            async with await source.get_read_stream(info.handle) as stream:
                counted = _Counting(stream, progress, overall)
                try:
                    totals.handles[info.handle] = await target.put(
                        counted,
                        key=key,
                        metadata=info.metadata,
                        content_type=info.content_type,
                        # A store that chooses the handle creates a new object: none is
                        # replaced, and it need not know conditions.
                        overwrite=overwrite or key is None,
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


def _refuse_unkeyed(destination: Target, skip_existing: bool) -> None:
    """Refuse, before copying anything, what a store that chooses its handles cannot do."""
    name = public_spec(destination.store)
    if skip_existing:
        raise click.UsageError(
            f"{name!r} chooses its own handles, so it cannot tell which objects it already "
            "holds: sync and --skip-existing need a store with keys (cp copies everything "
            "and prints each object's new handle)"
        )
    if destination.key is not None:
        raise click.UsageError(
            f"{name!r} chooses its own handles: give the destination no key "
            "(cp prints each object's new handle)"
        )


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
    as_json: bool = False,
) -> None:
    src, dst = parse_target(source), parse_target(destination)
    if src.key is None and not recursive:
        raise click.UsageError("SOURCE names no key: use STORE:KEY, or -r for a whole store")
    if recursive and src.key is not None and not src.key.endswith("/"):
        src = Target(src.store, src.key + "/")
    target_key = _destination_key(src, dst, recursive)
    totals = Totals()

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
                if not b.capabilities().get("named_keys"):
                    _refuse_unkeyed(dst, skip)
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
                    totals=totals,
                )

    try:
        run(main)
    except BaseException:
        # What was stored before the copy failed (or was interrupted) must stay findable.
        if totals.handles:
            _report(totals, as_json)
        raise
    _report(totals, as_json)
    kept = f"; kept {totals.kept} existing (--no-overwrite)" if not overwrite else ""
    click.echo(
        f"copied {totals.copied} object(s), {totals.bytes} bytes; "
        f"skipped {totals.skipped} already present{kept}",
        err=True,
    )


def _report(totals: Totals, as_json: bool) -> None:
    if as_json:
        emit_json(totals.to_dict())
    elif totals.chooses_handles:
        for key, handle in sorted(totals.handles.items()):
            click.echo(f"{key}\t{handle}")


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
@click.option("--json", "as_json", is_flag=True, help="Print totals and handles as JSON.")
def cp(
    source: str,
    destination: str,
    recursive: bool,
    concurrency: int,
    skip_existing: bool,
    no_overwrite: bool,
    as_json: bool,
) -> None:
    """Copy objects from any store to any store.

    SOURCE and DESTINATION are STORE:KEY or URL//KEY; with -r, keys are prefixes. Into a
    store that chooses its own handles, name no key (STORE or STORE:): each object's key
    and new handle are printed, separated by a tab.
    """
    _run_copy(
        source,
        destination,
        recursive,
        concurrency,
        skip_existing,
        overwrite=not no_overwrite,
        as_json=as_json,
    )


@click.command()
@click.argument("source")
@click.argument("destination")
@_concurrency
@click.option("--json", "as_json", is_flag=True, help="Print totals and handles as JSON.")
def sync(source: str, destination: str, concurrency: int, as_json: bool) -> None:
    """Copy every object under SOURCE's prefix that DESTINATION lacks or holds differently.

    Objects whose size and checksum already match are skipped, so an interrupted sync resumes
    where it stopped. Nothing is deleted from DESTINATION. A DESTINATION that chooses its
    own handles cannot say what it holds, so sync refuses it (use cp).
    """
    _run_copy(source, destination, True, concurrency, True, as_json=as_json)
