"""check: run the conformance suite against a live, configured store."""

from __future__ import annotations

import json
import os
import tempfile
import textwrap
import uuid
from pathlib import Path
from typing import Any

import click

from asyncstore.cli._common import emit_json, parse_target, run, state
from asyncstore.config import public_spec
from asyncstore.keys import MAX_KEY_BYTES

_TEST_MODULE = '''
import json
import os

import pytest

from asyncstore import open_store
from asyncstore.testing import StorageModuleTests


def record_handles(module, handles):
    """Remember every handle the checks create, keyed or generated, to delete them after."""
    for name in ("put", "copy", "new_data"):
        original = getattr(module, name)

        async def recording(*args, _original=original, **kwargs):
            handle = await _original(*args, **kwargs)
            handles.append(handle)
            return handle

        setattr(module, name, recording)


class TestLiveStore(StorageModuleTests):
    key_prefix = os.environ["ASYNCSTORE_CHECK_PREFIX"]
    list_page_objects = int(os.environ["ASYNCSTORE_CHECK_PAGE"])

    @pytest.fixture
    async def module(self):
        config = os.environ.get("ASYNCSTORE_CHECK_CONFIG") or None
        async with open_store(os.environ["ASYNCSTORE_CHECK_SPEC"], config=config) as module:
            handles = []
            record_handles(module, handles)
            try:
                yield module
            finally:
                # Leave nothing behind: generated handles, and the scratch prefix.
                if module.capabilities().get("delete", True):
                    for handle in handles:
                        await module.delete(handle)
                    if module.capabilities().get("list"):
                        async for info in module.list(self.key_prefix):
                            await module.delete(info.handle)
                else:  # the store cannot delete: say what the checks left in it
                    with open(os.environ["ASYNCSTORE_CHECK_LEFT"], "a") as left:
                        for handle in dict.fromkeys(handles):
                            if await module.available(handle):
                                left.write(json.dumps(handle) + "\\n")
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
    """A pytest plugin object that records each check's outcome."""

    def __init__(self) -> None:
        self.results: dict[str, dict[str, Any]] = {}

    def pytest_runtest_logreport(self, report: Any) -> None:
        name = report.nodeid.split("::")[-1]
        if report.when == "call" or report.outcome != "passed":
            entry = {"outcome": report.outcome, "detail": ""}
            if report.skipped and isinstance(report.longrepr, tuple):
                entry["detail"] = str(report.longrepr[2]).removeprefix("Skipped: ")
            elif report.failed:
                entry["detail"] = str(getattr(report, "longreprtext", "")).strip().splitlines()[-1:]
                entry["detail"] = entry["detail"][0] if entry["detail"] else ""
            if name not in self.results or report.outcome != "passed":
                self.results[name] = entry


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
def check(store: str, expression: str | None, page_objects: int, as_json: bool) -> None:
    """Run the conformance suite against a live store, in a scratch prefix it cleans up.

    Exits 0 when every check passes or is skipped for a capability the store declares absent.
    A store that cannot delete keeps what the checks stored: their handles are listed. The
    report says which of the contract's promises the store declares it does not make.
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
    prefix = f"asyncstore-check-{uuid.uuid4().hex[:12]}/"
    collector = _Collector()
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
                "-c",
                str(directory / "pytest.ini"),
                "--rootdir",
                str(directory),
            ]
            if expression:
                arguments += ["-k", expression]
            with open(os.devnull, "w") as quiet, _redirect(quiet):
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
    if left:
        click.echo(
            f"{public_spec(spec)!r} cannot delete: the checks left {len(left)} object(s) in it",
            err=True,
        )
        if not as_json:
            for handle in left:
                click.echo(f"  {handle}", err=True)
    if failed or not results:
        raise SystemExit(1)


def _redirect(stream: Any) -> Any:
    import contextlib

    stack = contextlib.ExitStack()
    stack.enter_context(contextlib.redirect_stdout(stream))
    return stack


def _print_table(spec: str, results: dict[str, dict[str, Any]], not_made: list[str]) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table("check", "result", "detail", box=None, title=f"conformance of {spec}")
    styles = {"passed": "green", "failed": "red", "skipped": "yellow"}
    for name, entry in sorted(results.items()):
        style = styles.get(entry["outcome"], "")
        table.add_row(
            escape(name), f"[{style}]{entry['outcome']}[/{style}]", escape(entry["detail"])
        )
    console = Console(soft_wrap=True)
    console.print(table)
    counts = {o: sum(r["outcome"] == o for r in results.values()) for o in styles}
    console.print(", ".join(f"{n} {o}" for o, n in counts.items()))
    if not_made:
        console.print("promises this store declares it does not make:")
        for note in not_made:
            console.print(f"  {escape(note)}")
