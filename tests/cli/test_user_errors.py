"""The command line reports mistakes in the user's words: their paths, their options."""

from __future__ import annotations

import errno
from pathlib import Path

from asyncstore.cli._common import describe_error
from asyncstore.errors import NotFoundError
from tests.cli.conftest import Run


def test_put_of_a_missing_file_says_so(cli: Run) -> None:
    result = cli("put", "missing.txt", "local")
    assert result.returncode == 2
    assert "'missing.txt' does not exist" in result.stderr
    assert "Errno" not in result.stderr


def test_get_into_a_missing_directory_names_the_users_path(cli: Run, workdir: Path) -> None:
    cli("put", "-", "local:x.txt", input="data")
    result = cli("get", "local:x.txt", "nodir/out.txt")
    assert result.returncode == 1
    assert "cannot write 'nodir/out.txt': the directory 'nodir' does not exist" in result.stderr
    assert ".asyncstore-" not in result.stderr and "Errno" not in result.stderr
    assert not (workdir / "nodir").exists()


def test_a_backwards_range_is_explained_in_cli_terms(cli: Run) -> None:
    cli("put", "-", "local:x.txt", input="0123456789")
    for command in ("cat", "get"):
        args = [command, "local:x.txt", *(["-"] if command == "get" else []), "--range", "5-2"]
        result = cli(*args)
        assert result.returncode == 2
        assert "'5-2' is backwards: B (2) must not be less than A (5)" in result.stderr
        assert "end must be" not in result.stderr  # not the API's words
    assert cli("cat", "local:x.txt", "--range", "5-5").stdout == ""


def test_get_keeps_an_existing_file_unless_forced(cli: Run, workdir: Path) -> None:
    cli("put", "-", "local:notes.txt", input="from the store")
    (workdir / "notes.txt").write_text("mine")
    kept = cli("get", "local:notes.txt")
    assert kept.returncode == 1
    assert "'notes.txt' exists; use --force to replace it" in kept.stderr
    assert (workdir / "notes.txt").read_text() == "mine"
    assert [p.name for p in workdir.iterdir() if p.name.startswith(".asyncstore-")] == []
    forced = cli("get", "local:notes.txt", "--force")
    assert forced.returncode == 0, forced.stderr
    assert (workdir / "notes.txt").read_text() == "from the store"


def test_get_into_a_directory_is_refused(cli: Run, workdir: Path) -> None:
    (workdir / "dir.txt").mkdir()
    cli("put", "-", "local:x.txt", input="data")
    result = cli("get", "local:x.txt", "dir.txt")
    assert result.returncode == 2
    assert "'dir.txt' is a directory" in result.stderr


def test_os_errors_read_as_a_path_and_a_reason() -> None:
    missing = FileNotFoundError(errno.ENOENT, "No such file or directory", "report.pdf")
    assert describe_error(missing) == "'report.pdf': no such file or directory"
    moved = OSError(errno.EXDEV, "Invalid cross-device link", "a", None, "b")
    assert describe_error(moved) == "'a' -> 'b': invalid cross-device link"
    assert describe_error(NotFoundError("no such object", store="s", handle="k")) == (
        "no such object (store 's', handle 'k')"
    )
