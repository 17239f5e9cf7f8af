"""check: run the conformance suite against a live, configured store."""

from __future__ import annotations

import contextlib
import io
import json
import os
import tempfile
import textwrap
import uuid
from pathlib import Path
from typing import Any

import click

from asyncstore.cli._common import emit_json, parse_target, run, state
from asyncstore.cli._table import print_table
from asyncstore.config import public_spec
from asyncstore.keys import MAX_KEY_BYTES

_TEST_MODULE = '''
import json
import os

import pytest

from asyncstore import open_store
from asyncstore.testing import StorageModuleTests


def record_handles(module, handles, closed):
    """Remember every handle the checks create, keyed or generated, to delete them after,
    and whether a check closed the module."""
    for name in ("put", "copy", "new_data"):
        original = getattr(module, name)

        async def recording(*args, _original=original, **kwargs):
            handle = await _original(*args, **kwargs)
            handles.append(handle)
            return handle

        setattr(module, name, recording)
    original_aclose = module.aclose

    async def aclose():
        closed.append(True)
        await original_aclose()

    module.aclose = aclose


async def clean(module, handles, prefix):
    """Leave nothing behind: generated handles, and the scratch prefix; of a store that cannot
    delete, say what the checks left in it."""
    if module.capabilities().get("delete", True):
        for handle in handles:
            await module.delete(handle)
        if module.capabilities().get("list"):
            async for info in module.list(prefix):
                await module.delete(info.handle)
    else:
        with open(os.environ["ASYNCSTORE_CHECK_LEFT"], "a") as left:
            for handle in dict.fromkeys(handles):
                if await module.available(handle):
                    left.write(json.dumps(handle) + "\\n")


class TestLiveStore(StorageModuleTests):
    key_prefix = os.environ["ASYNCSTORE_CHECK_PREFIX"]
    list_page_objects = int(os.environ["ASYNCSTORE_CHECK_PAGE"])

    @pytest.fixture
    async def module(self):
        spec = os.environ["ASYNCSTORE_CHECK_SPEC"]
        config = os.environ.get("ASYNCSTORE_CHECK_CONFIG") or None
        handles, closed = [], []
        async with open_store(spec, config=config) as module:
            record_handles(module, handles, closed)
            try:
                yield module
            finally:
                closed_by_a_check = bool(closed)  # leaving `async with` closes it too
                if not closed_by_a_check:
                    await clean(module, handles, self.key_prefix)
        if closed_by_a_check:
            # The check closed the module, and nothing but aclose() may follow that: a new
            # module cleans up.
            async with open_store(spec, config=config) as fresh:
                await clean(fresh, handles, self.key_prefix)
'''


_OPTIONAL = {
    "range_read": "ranged reads",
    "seek": "seeking in read streams",
    "list": "listing",
    "metadata": "user metadata and content types",
    "named_keys": "keys of the caller's choice",
    "server_side_copy": "server-side copies",
    "presign": "presigned URLs",
    "reconfigure": "live reconfiguration",
    "atomic_writes": "all-or-nothing writes (readers may see a partial object)",
    "writable": "writes (a read-only store)",
    "new_data": "handles allocated before writing",
    "assign": "writes under a chosen handle",
    "delete": "deletion",
    "conditional_create": "create-only writes (overwrite=False)",
    "conditional_replace": "compare-and-swap writes (if_match)",
    "conditional_delete": "conditional deletes (if_match)",
    "conditional_read": "conditional reads (if_match)",
}


def promises_not_made(capabilities: dict[str, Any]) -> list[str]:
    """Say which of the contract's promises a store's capabilities declare it does not make.

    The checks of those promises are skipped or adapted to what the store declares.
    """
    notes = [
        f"{name}: no {what}"
        for name, what in _OPTIONAL.items()
        if name in capabilities and not capabilities[name]
    ]
    order = capabilities.get("list_order", "lexicographic")
    if order != "lexicographic":
        notes.append(
            f"list_order: {order} (listings come in directory-tree order, 'a/b' before 'a-b'),"
            " not lexicographic"
        )
    limit = capabilities.get("max_key_bytes", MAX_KEY_BYTES)
    if isinstance(limit, int) and limit < MAX_KEY_BYTES:
        notes.append(f"max_key_bytes: keys of at most {limit} bytes, not {MAX_KEY_BYTES}")
    return notes


class _Collector:
    """A pytest plugin object that records each check's outcome and, for failures, why."""

    def __init__(self) -> None:
        self.results: dict[str, dict[str, Any]] = {}

    def pytest_runtest_logreport(self, report: Any) -> None:
        name = report.nodeid.split("::")[-1]
        if report.when == "call" or report.outcome != "passed":
            entry: dict[str, Any] = {"outcome": report.outcome, "detail": ""}
            if report.skipped and isinstance(report.longrepr, tuple):
                entry["detail"] = str(report.longrepr[2]).removeprefix("Skipped: ")
            elif report.failed:
                entry.update(_failure(report))
            if name not in self.results or report.outcome != "passed":
                self.results[name] = entry


def _failure(report: Any) -> dict[str, Any]:
    """Describe a failed check: its message (what was expected, what came back), where, how."""
    crash = getattr(report.longrepr, "reprcrash", None)
    message = str(crash.message) if crash is not None else str(report.longrepr).strip()
    lines = message.splitlines() or [""]
    stage = {"setup": " (while opening the store)", "teardown": " (while cleaning up)"}
    return {
        "detail": lines[0].removeprefix("AssertionError: ") + stage.get(report.when, ""),
        "message": message,
        "where": f"{crash.path}:{crash.lineno}" if crash is not None else "",
        "traceback": str(report.longreprtext),
    }


@click.command()
@click.argument("store")
@click.option(
    "--filter", "-k", "expression", help="Only checks matching this pytest -k expression."
)
@click.option(
    "--page-objects",
    default=1001,
    show_default=True,
    help="Objects written by the listing-pagination check.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option(
    "--debug", is_flag=True, help="Show each failure's full traceback (as the global --debug)."
)
def check(
    store: str, expression: str | None, page_objects: int, as_json: bool, debug: bool
) -> None:
    """Run the conformance suite against a live store, in a scratch prefix it cleans up.

    Exits 0 when every check passes or is skipped for a capability the store declares absent.
    Each failure shows the check's name, what the contract expected and what came back;
    --debug adds the full traceback. A store that cannot delete keeps what the checks stored:
    their handles are listed. The report says which of the contract's promises the store
    declares it does not make.
    """
    try:
        import pytest
    except ImportError as exc:  # pragma: no cover - pytest is installed with the suite
        raise click.ClickException("the check needs pytest: pip install pytest") from exc
    spec = parse_target(store).store
    current = state()

    async def declared() -> dict[str, Any]:
        async with current.open(spec) as module:
            return module.capabilities()

    not_made = promises_not_made(run(declared))
    debug = debug or current.debug
    prefix = f"asyncstore-check-{uuid.uuid4().hex[:12]}/"
    collector = _Collector()
    output = io.StringIO()
    with tempfile.TemporaryDirectory(prefix="asyncstore-check-") as work:
        directory = Path(work)
        (directory / "test_live_store.py").write_text(textwrap.dedent(_TEST_MODULE))
        (directory / "pytest.ini").write_text("[pytest]\n")
        environment = {
            "ASYNCSTORE_CHECK_SPEC": spec,
            "ASYNCSTORE_CHECK_PREFIX": prefix,
            "ASYNCSTORE_CHECK_PAGE": str(page_objects),
            "ASYNCSTORE_CHECK_CONFIG": current.config_path or "",
            "ASYNCSTORE_CHECK_LEFT": str(directory / "left-behind.txt"),
        }
        saved = {name: os.environ.get(name) for name in environment}
        os.environ.update(environment)
        try:
            arguments = [
                str(directory),
                "-q",
                "-p",
                "no:cacheprovider",
                "-p",
                "no:asyncio",
                "--no-header",
                "--tb=long" if debug else "--tb=short",
                "-c",
                str(directory / "pytest.ini"),
                "--rootdir",
                str(directory),
            ]
            if expression:
                arguments += ["-k", expression]
            with contextlib.redirect_stdout(output):
                pytest.main(arguments, plugins=[collector])
            left_file = directory / "left-behind.txt"
            lines = left_file.read_text().splitlines() if left_file.exists() else []
            left = [json.loads(line) for line in lines]
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
    results = collector.results
    failed = sum(r["outcome"] == "failed" for r in results.values())
    if not debug:
        for entry in results.values():
            entry.pop("traceback", None)
    if as_json:
        emit_json(
            {
                "store": public_spec(spec),
                "results": results,
                "failed": failed,
                "promises_not_made": not_made,
                "left": left,
            }
        )
    else:
        _print_table(public_spec(spec), results, not_made)
        _print_failures(results, debug)
    if left:
        click.echo(
            f"{public_spec(spec)!r} cannot delete: the checks left {len(left)} object(s) in it",
            err=True,
        )
        if not as_json:
            for handle in left:
                click.echo(f"  {handle}", err=True)
    if not results:
        click.echo(f"no check ran; pytest said:\n{output.getvalue().strip()}", err=True)
    if failed or not results:
        raise SystemExit(1)


def _print_table(spec: str, results: dict[str, dict[str, Any]], not_made: list[str]) -> None:
    outcomes = {"passed": "green", "failed": "red", "skipped": "yellow"}
    rows = [[name, entry["outcome"], entry["detail"]] for name, entry in sorted(results.items())]
    title = f"conformance of {spec}"
    print_table(["check", "result", "detail"], rows, title=title, colors=outcomes)
    counts = {o: sum(r["outcome"] == o for r in results.values()) for o in outcomes}
    click.echo(", ".join(f"{n} {o}" for o, n in counts.items()))
    if not_made:
        click.echo("promises this store declares it does not make:")
        for note in not_made:
            click.echo(f"  {note}")


def _print_failures(results: dict[str, dict[str, Any]], debug: bool) -> None:
    """Print each failure in full, unwrapped: what was expected, what came back, where."""
    for name, entry in sorted(results.items()):
        if entry["outcome"] != "failed":
            continue
        click.echo(f"\nFAILED {name}")
        if debug:
            click.echo(entry["traceback"])
            continue
        click.echo(textwrap.indent(entry["message"], "  "))
        if entry["where"]:
            click.echo(f"  at {entry['where']} (asyncstore --debug check ... shows the traceback)")
