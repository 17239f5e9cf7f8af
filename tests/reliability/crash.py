"""Crash tests: a child process streams large puts and is killed with SIGKILL at random moments.

Run as ``python -m tests.reliability.crash --target JSON --key KEY --start N --seed S``, the
child opens the store itself (secrets come from the environment, never from argv) and puts
versions N, N+1, … of one key from an async iterator of unknown length (so S3 uploads in
parts), printing one line per event on stdout: ``ready``, ``begin V SIZE``, ``end V`` (the
source is exhausted: the commit is under way) and ``done V``.

The parent (`crash_trials`) kills it at a random moment drawn from a seeded plan (some time
into the run, just after a put completed, or just as a commit started), reads every line the
child managed to print, and checks the contract: the key holds one complete version, at
least the last one reported done and at most the one begun (or nothing before the first
put); `list` shows nothing but objects; then it counts the leftovers of the interrupted put
(temporary files, in-progress multipart uploads), runs the documented cleanup (the API's
``cleanup(older_than=0)`` or ``asyncstore cleanup STORE --older-than 0``) and checks that it
removed exactly those and that the object is unchanged. With SIGINT instead of SIGKILL, the
child's put is cancelled (asyncio turns Ctrl-C into a cancellation of the main task) and must
leave nothing for the cleanup at all.

Every object carries its version: each 1 MiB chunk starts with a stamp (magic, version, size,
chunk index) followed by bytes derived from the version alone, so the whole content can be
regenerated from its first 32 bytes and a torn, truncated or mixed object is caught. Its
metadata names the version too, so metadata left from another version is caught as well.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import signal
import statistics
import struct
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from functools import cache
from pathlib import Path
from typing import IO, Any

import anyio
import anyio.lowlevel
import anyio.to_thread
from anyio.streams.buffered import BufferedByteReceiveStream

from asyncstore import StorageModule
from asyncstore.errors import NotFoundError

CHUNK = 1 << 20
"""The chunks of the streaming source, each starting with a stamp."""
MAGIC = b"CRASHV01"
_STAMP = struct.Struct(">8sQQQ")  # magic, version, size, chunk index
_PATTERN = 64 << 10  # a random pattern repeated through each chunk (compressible by half)

ACCESS_KEY_VAR = "ASYNCSTORE_CRASH_S3_KEY_ID"
SECRET_KEY_VAR = "ASYNCSTORE_CRASH_S3_SECRET"
ENCRYPTION_KEY_VAR = "ASYNCSTORE_CRASH_ENCRYPTION_KEY"
SEED_VAR = "ASYNCSTORE_CRASH_SEED"
"""Set to replay a run's kill plans (printed in every failure message)."""
INTERRUPTED = 130
"""The child's exit status after SIGINT (which it handles by cancelling its put)."""
STORE = "crash"
"""The store's name in the config file the command line cleanup uses."""
REPO = Path(__file__).resolve().parents[2]


class CrashCheckError(AssertionError):
    """The store broke the contract after a kill (or the harness could not run a trial)."""


# ---- content ---------------------------------------------------------------------------------


@cache
def _block(version: int) -> bytes:
    return random.Random(version).randbytes(_PATTERN) * (CHUNK // _PATTERN)


def version_chunks(version: int, size: int) -> Iterator[bytes]:
    """Yield the content of ``version`` (``size`` bytes) in stamped 1 MiB chunks."""
    block = _block(version)
    for index, offset in enumerate(range(0, size, CHUNK)):
        length = min(CHUNK, size - offset)
        yield (_STAMP.pack(MAGIC, version, size, index) + block[_STAMP.size :])[:length]


@cache
def _digest(version: int, size: int) -> bytes:
    digest = hashlib.sha256()
    for chunk in version_chunks(version, size):
        digest.update(chunk)
    return digest.digest()


@dataclass(frozen=True)
class StoredVersion:
    """A complete version found under the key."""

    version: int
    size: int
    etag: str | None


async def read_version(module: StorageModule, key: str) -> StoredVersion | None:
    """Read the whole object under ``key``; return its version, None if absent.

    Raises:
        CrashCheckError: If the object is not exactly one complete version.
    """
    try:
        stream = await module.get_read_stream(key)
    except NotFoundError:
        return None
    digest = hashlib.sha256()
    head = b""
    total = 0
    async with stream:
        etag = stream.info.etag
        labelled = stream.info.metadata.get("version")
        async for piece in stream:
            if len(head) < _STAMP.size:
                head += bytes(piece[: _STAMP.size - len(head)])
            digest.update(piece)
            total += len(piece)
    if len(head) < _STAMP.size or head[:8] != MAGIC:
        raise CrashCheckError(f"{key!r} holds {total} bytes that do not start with a stamp")
    _, version, size, index = _STAMP.unpack(head)
    if index != 0 or total != size:
        raise CrashCheckError(
            f"partial object under {key!r}: version {version} has {size} bytes, {total} stored"
        )
    if digest.digest() != _digest(version, size):
        raise CrashCheckError(
            f"{key!r} has the size of version {version} but not its bytes (torn or mixed)"
        )
    if labelled != str(version):
        raise CrashCheckError(f"{key!r} holds version {version} with the metadata of {labelled}")
    return StoredVersion(version, size, etag)


# ---- the store -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """The store a crash test writes to, without its secrets (those come from the environment).

    ``backend`` is ``fs``, ``s3`` or ``stack`` (compress over encrypt over fs).
    """

    backend: str
    min_size: int
    max_size: int
    root: str = ""
    bucket: str = ""
    prefix: str = ""
    endpoint_url: str = ""
    region: str = ""
    part_size: int = 5 << 20
    xattrs: bool | None = None
    server: str = ""
    """For ``s3``: which S3 server the figures name (moto, seaweedfs)."""

    @property
    def label(self) -> str:
        """The backend as the figures name it."""
        if self.backend == "stack":
            return "compress→encrypt→fs"
        if self.server:
            return f"{self.backend} ({self.server})"
        return "fs (sidecars)" if self.xattrs is False else self.backend

    def to_json(self) -> str:
        """Return the target as JSON (for the child's argv)."""
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Target:
        """Read a target written by `to_json`."""
        return cls(**json.loads(text))

    def config(self) -> str:
        """Return an ``asyncstore.toml`` naming this target `STORE` (secrets as ``${VAR}``)."""
        if self.backend == "s3":
            return (
                f'[stores.{STORE}]\nmodule = "s3"\nbucket = {json.dumps(self.bucket)}\n'
                f"prefix = {json.dumps(self.prefix)}\n"
                f"endpoint_url = {json.dumps(self.endpoint_url)}\n"
                f"region = {json.dumps(self.region)}\n"
                f'access_key_id = "${{{ACCESS_KEY_VAR}}}"\n'
                f'secret_access_key = "${{{SECRET_KEY_VAR}}}"\n'
            )
        disk = f'module = "fs"\nroot = {json.dumps(self.root)}\n'
        if self.xattrs is not None:
            disk += f"xattrs = {json.dumps(self.xattrs)}\n"
        if self.backend == "fs":
            return f"[stores.{STORE}]\n{disk}"
        return (
            f"[stores.disk]\n{disk}"
            f'[stores.sealed]\nmodule = "encrypt"\ninner = "disk"\n'
            f'key = "${{{ENCRYPTION_KEY_VAR}}}"\n'
            f'[stores.{STORE}]\nmodule = "compress"\ninner = "sealed"\n'
        )


def open_module(target: Target, env: Mapping[str, str]) -> StorageModule:
    """Construct the target's module, with secrets from ``env``."""
    if target.backend == "s3":
        from asyncstore_s3 import S3Module

        return S3Module(
            bucket=target.bucket,
            prefix=target.prefix,
            endpoint_url=target.endpoint_url,
            region=target.region,
            access_key_id=env[ACCESS_KEY_VAR],
            secret_access_key=env[SECRET_KEY_VAR],
            part_size=target.part_size,
        )
    from asyncstore_fs import FileSystemModule

    disk = FileSystemModule(root=target.root, xattrs=target.xattrs)
    if target.backend == "fs":
        return disk
    from asyncstore.middleware.compress import CompressionModule
    from asyncstore.middleware.encrypt import EncryptionModule

    return CompressionModule(inner=EncryptionModule(inner=disk, key=env[ENCRYPTION_KEY_VAR]))


def fs_leftovers(root: str, key: str) -> list[str]:
    """Return every file under ``root`` but the object and its sidecar, hidden names included."""
    from asyncstore_fs._metadata import sidecar_name

    found = []
    for directory, _, files in os.walk(root):
        for name in files:
            path = os.path.relpath(os.path.join(directory, name), root)
            if path not in (key, sidecar_name(key)):
                found.append(path)
    return sorted(found)


def s3_leftovers(client: Any, bucket: str) -> list[str]:
    """Return the in-progress multipart uploads of ``bucket`` as ``key upload-id``."""
    uploads = client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    return sorted(f"{upload['Key']} {upload['UploadId']}" for upload in uploads)


# ---- the child -------------------------------------------------------------------------------


def _emit(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


async def _source(version: int, size: int) -> AsyncIterator[bytes]:
    for chunk in version_chunks(version, size):
        yield chunk
        await anyio.lowlevel.checkpoint()
    _emit(f"end {version}")


def _die_before_publishing(key: str) -> None:
    """Make the process SIGKILL itself as a write renames its file onto ``key``."""
    name = key.rpartition("/")[2]
    rename = os.rename

    def renaming(source: Any, target: Any, *args: Any, **kwargs: Any) -> None:
        if target == name:
            os.kill(os.getpid(), signal.SIGKILL)
        rename(source, target, *args, **kwargs)

    os.rename = renaming  # type: ignore[assignment]


async def child(
    target: Target,
    *,
    key: str,
    start: int,
    seed: int,
    puts: int,
    pause: float,
    bare: bool = False,
) -> None:
    """Put versions ``start``, ``start + 1``, … of ``key``, reporting each event on stdout.

    Each version is labelled with its number in the metadata, unless ``bare``.
    """
    rng = random.Random(seed)
    async with open_module(target, os.environ) as module:
        _emit("ready")
        for version in range(start, start + puts):
            size = rng.randint(target.min_size, target.max_size)
            _emit(f"begin {version} {size}")
            metadata = None if bare else {"version": str(version)}
            await module.put(_source(version, size), key=key, metadata=metadata)
            _emit(f"done {version}")
            await anyio.sleep(rng.uniform(0, pause))


def main(argv: list[str] | None = None) -> None:
    """Run the child program."""
    parser = argparse.ArgumentParser(description="Put versions of one key until killed.")
    parser.add_argument("--target", required=True, help="the store, as Target.to_json()")
    parser.add_argument("--key", required=True)
    parser.add_argument("--start", type=int, required=True, help="the first version to put")
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--puts", type=int, default=40, help="how many before giving up")
    parser.add_argument("--pause", type=float, default=0.05, help="most seconds between puts")
    parser.add_argument("--bare", action="store_true", help="put without metadata")
    parser.add_argument(
        "--die-before-publish",
        action="store_true",
        help="SIGKILL this process as a write renames its file onto the key (fs)",
    )
    args = parser.parse_args(argv)
    target = Target.from_json(args.target)
    if args.die_before_publish:
        _die_before_publishing(args.key)
    try:
        anyio.run(
            lambda: child(
                target,
                key=args.key,
                start=args.start,
                seed=args.seed,
                puts=args.puts,
                pause=args.pause,
                bare=args.bare,
            )
        )
    except KeyboardInterrupt:
        # SIGINT cancelled the put in flight, which cleaned up after itself on the way out.
        raise SystemExit(INTERRUPTED) from None


# ---- the parent ------------------------------------------------------------------------------


@dataclass
class Progress:
    """What the child reported before it died."""

    ready: bool = False
    begun: int | None = None
    ended: list[int] = field(default_factory=list)
    done: list[int] = field(default_factory=list)
    durations: list[float] = field(default_factory=list)
    eof: bool = False
    _begun_at: float = 0.0

    def record(self, line: str) -> None:
        """Take one line of the child's output into account."""
        word, *values = line.split()
        if word == "ready":
            self.ready = True
        elif word == "begin":
            self.begun = int(values[0])
            self._begun_at = time.monotonic()
        elif word == "end":
            self.ended.append(int(values[0]))
        elif word == "done":
            self.done.append(int(values[0]))
            self.durations.append(time.monotonic() - self._begun_at)
        else:
            raise CrashCheckError(f"the child printed {line!r}")


@dataclass(frozen=True)
class KillPlan:
    """When to kill: ``delay`` seconds after the ``count``-th ``event`` (``ready``: its only)."""

    event: str
    count: int
    delay: float

    @classmethod
    def draw(cls, rng: random.Random, put_seconds: float, pause: float) -> KillPlan:
        """Draw a plan: mostly any time in the first puts, else just after a put or a source."""
        choice = rng.random()
        if choice < 0.6:
            return cls("ready", 1, rng.uniform(0, 2.5 * put_seconds))
        if choice < 0.8:
            return cls("done", rng.randint(1, 2), rng.uniform(0, 1.5 * pause))
        return cls("end", rng.randint(1, 2), rng.uniform(0, 0.05))

    def reached(self, progress: Progress) -> bool:
        """Whether the event the kill waits for has happened."""
        if self.event == "ready":
            return progress.ready
        seen = progress.done if self.event == "done" else progress.ended
        return len(seen) >= self.count


@dataclass
class CrashSummary:
    """What the trials of one target saw."""

    label: str
    stop: str
    kills: int = 0
    in_put: int = 0
    mid_write: int = 0
    old: int = 0
    new: int = 0
    absent: int = 0
    removed: int = 0
    left_after: int = 0
    cli_cleanups: int = 0
    seconds: list[float] = field(default_factory=list)

    def row(self) -> dict[str, Any]:
        """The figures of these trials, one flat row."""
        return {
            "backend": self.label,
            "signal": self.stop,
            "kills": self.kills,
            "in a put": self.in_put,
            "mid-write": self.mid_write,
            "old kept": self.old,
            "new whole": self.new,
            "absent": self.absent,
            "removed": self.removed,
            "left after": self.left_after,
            "by CLI": self.cli_cleanups,
            "s/trial": round(statistics.median(self.seconds), 2),
        }


@dataclass(frozen=True)
class Harness:
    """One target's crash trials: where it is, how to see its leftovers, the seed."""

    target: Target
    workdir: Path
    env: Mapping[str, str]
    leftovers: Callable[[], list[str]]
    seed: int
    stop: signal.Signals = signal.SIGKILL
    """SIGKILL, or SIGINT to interrupt the put instead (it must then leave nothing behind)."""
    key: str = "crash/object.bin"
    pause: float = 0.05
    timeout: float = 120.0

    def fail(self, trial: int, message: str) -> CrashCheckError:
        """Return the error of a failed trial, naming the seed that replays it."""
        return CrashCheckError(
            f"{self.target.label} trial {trial}: {message} "
            f"(seed {self.seed}; replay with {SEED_VAR}={self.seed})"
        )


async def _follow(stream: Any, progress: Progress, plan: KillPlan, hit: anyio.Event) -> None:
    buffered = BufferedByteReceiveStream(stream)
    while True:
        try:
            line = await buffered.receive_until(b"\n", 4096)
        except (anyio.EndOfStream, anyio.IncompleteRead):
            break
        progress.record(line.decode())
        if plan.reached(progress):
            hit.set()
    progress.eof = True
    hit.set()


def child_command(
    target: Target,
    *,
    key: str,
    start: int,
    seed: int,
    pause: float = 0.05,
    flags: tuple[str, ...] = (),
) -> list[str]:
    """Return the command that runs the child program (from the repository's root)."""
    return [
        sys.executable,
        "-m",
        "tests.reliability.crash",
        "--target",
        target.to_json(),
        "--key",
        key,
        "--start",
        str(start),
        "--seed",
        str(seed),
        "--pause",
        str(pause),
        *flags,
    ]


async def _run_child(
    harness: Harness, trial: int, start: int, plan: KillPlan, child_seed: int, errors: IO[bytes]
) -> Progress:
    command = child_command(
        harness.target, key=harness.key, start=start, seed=child_seed, pause=harness.pause
    )
    progress = Progress()
    hit = anyio.Event()
    env = {**os.environ, **harness.env}
    async with await anyio.open_process(
        command, stdin=subprocess.DEVNULL, stderr=errors, cwd=REPO, env=env
    ) as process:
        assert process.stdout is not None
        async with anyio.create_task_group() as group:
            group.start_soon(_follow, process.stdout, progress, plan, hit)
            with anyio.move_on_after(harness.timeout):
                await hit.wait()
            if hit.is_set() and not progress.eof:
                await anyio.sleep(plan.delay)
            early = process.returncode
            if early is None:
                process.send_signal(harness.stop)
            with anyio.move_on_after(harness.timeout):
                await process.wait()
            outlived = process.returncode is None
            if outlived:
                process.kill()
            status = await process.wait()
    if not hit.is_set():
        raise harness.fail(trial, f"the child did not reach {plan} in {harness.timeout} s")
    expected = -signal.SIGKILL if harness.stop == signal.SIGKILL else INTERRUPTED
    if early is not None or outlived or status != expected:
        errors.seek(0)
        tail = errors.read()[-3000:].decode(errors="replace")
        when = "before the signal" if early is not None else f"after {harness.stop.name}"
        raise harness.fail(trial, f"the child ended with status {status} {when}:\n{tail}")
    return progress


async def _settle(harness: Harness, module: StorageModule, quiet: float) -> None:
    """Wait until the store has not changed for ``quiet`` seconds.

    A request the server received before the client died still runs to its end (S3 completes
    an upload whose CompleteMultipartUpload arrived whole), so the checks wait for it.
    """
    previous: object = None
    since = time.monotonic()
    deadline = since + harness.timeout
    while time.monotonic() < deadline:
        try:
            info: object = await module.stat(harness.key)
        except NotFoundError:
            info = None
        state = (info, await anyio.to_thread.run_sync(harness.leftovers))
        now = time.monotonic()
        if state != previous:
            previous, since = state, now
        elif now - since >= quiet:
            return
        await anyio.sleep(0.2)
    raise CrashCheckError(f"{harness.target.label} kept changing for {harness.timeout} s")


async def _cleanup(harness: Harness, module: StorageModule, by_cli: bool) -> int:
    """Run the documented cleanup through the API or the command line; return its count."""
    if not by_cli:
        counts = await module.cleanup(older_than=0)
    else:
        config = harness.workdir / "asyncstore.toml"
        config.write_text(harness.target.config())
        script = str(Path(sys.executable).parent / "asyncstore")
        command = [script, "--config", str(config), "cleanup", STORE, "--older-than", "0"]
        result = await anyio.run_process(
            [*command, "--json"],
            cwd=harness.workdir,
            env={**os.environ, **harness.env},
            check=False,
        )
        if result.returncode:
            raise CrashCheckError(f"{' '.join(command)} failed: {result.stderr.decode()[-2000:]}")
        counts = json.loads(result.stdout)
    return sum(counts.values())


@dataclass
class _Trial:
    """One kill: its number, what the child reported, and how to describe it in failures."""

    number: int
    progress: Progress
    where: str
    by_cli: bool


async def _check(
    harness: Harness,
    module: StorageModule,
    trial: _Trial,
    current: int | None,
    summary: CrashSummary,
) -> StoredVersion | None:
    """Check the store after a kill, clean up, check again; return the version kept."""
    progress, where = trial.progress, trial.where
    try:
        found = await read_version(module, harness.key)
    except CrashCheckError as exc:
        raise harness.fail(trial.number, f"{exc}; {where}") from None
    floor = progress.done[-1] if progress.done else current
    ceiling = progress.begun if progress.begun is not None else current
    if found is None:
        if floor is not None:
            raise harness.fail(trial.number, f"version {floor} was done but is gone; {where}")
        summary.absent += 1
    elif found.version == floor:
        summary.old += 1
    elif found.version == ceiling:
        summary.new += 1
    else:
        raise harness.fail(trial.number, f"found version {found.version}; {where}")
    listed = [info.handle async for info in module.list()]
    if listed != ([harness.key] if found else []):
        raise harness.fail(trial.number, f"list() shows {listed}; {where}")
    before = await anyio.to_thread.run_sync(harness.leftovers)
    if before and harness.stop != signal.SIGKILL:
        raise harness.fail(trial.number, f"an interrupted put left {before}; {where}")
    summary.mid_write += bool(before)
    try:
        removed = await _cleanup(harness, module, trial.by_cli)
    except CrashCheckError as exc:
        raise harness.fail(trial.number, f"{exc}; {where}") from None
    after = await anyio.to_thread.run_sync(harness.leftovers)
    summary.removed += removed
    summary.left_after += len(after)
    if after or removed != len(before):
        message = f"cleanup removed {removed} of {before}, left {after}; {where}"
        raise harness.fail(trial.number, message)
    if found is not None:
        info = await module.stat(harness.key)
        if (info.size, info.etag) != (found.size, found.etag):
            raise harness.fail(trial.number, f"cleanup changed the object to {info}; {where}")
    return found


async def crash_trials(harness: Harness, *, kills: int, cli_every: int = 0) -> CrashSummary:
    """Kill a child writing to the target ``kills`` times; check the store after each kill.

    Every ``cli_every``-th cleanup (none if 0) runs through the command line, not the API.

    Raises:
        CrashCheckError: At the first trial that breaks the contract.
    """
    target = harness.target
    summary = CrashSummary(target.label, harness.stop.name.removeprefix("SIG"))
    rng = random.Random(harness.seed)
    durations: list[float] = [1.0]
    current: int | None = None  # the complete version the key holds
    next_version = 1
    async with open_module(target, harness.env) as module:
        for number in range(kills):
            began = time.monotonic()
            plan = KillPlan.draw(rng, statistics.median(durations[-9:]), harness.pause)
            with (harness.workdir / f"child-{number}.err").open("w+b") as errors:
                progress = await _run_child(
                    harness, number, next_version, plan, rng.randrange(1 << 32), errors
                )
                errors.seek(0)
                said = errors.read()[-2000:].decode(errors="replace")
            durations.extend(progress.durations)
            summary.kills += 1
            summary.in_put += progress.begun is not None and progress.begun not in progress.done
            if target.backend == "s3":
                committing = (
                    progress.begun in progress.ended and progress.begun not in progress.done
                )
                await _settle(harness, module, 1.0 if committing else 0.2)
            where = f"killed by {plan}; versions done {progress.done}, begun {progress.begun}"
            if said:
                where += f"; the child's stderr ends: {said}"
            by_cli = cli_every > 0 and (number + 1) % cli_every == 0
            summary.cli_cleanups += by_cli
            trial = _Trial(number, progress, where, by_cli)
            found = await _check(harness, module, trial, current, summary)
            current = found.version if found else None
            if progress.begun is not None:
                next_version = progress.begun + 1  # never reuse a version number
            summary.seconds.append(time.monotonic() - began)
    return summary


if __name__ == "__main__":
    main()
