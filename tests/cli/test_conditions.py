"""Conditional writes from the command line: put --no-overwrite / --if-match, cp --no-overwrite."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli.conftest import Run


def test_put_no_overwrite_and_if_match(cli: Run, workdir: Path) -> None:
    (workdir / "a.txt").write_text("first")
    (workdir / "b.txt").write_text("second")
    created = cli("put", "a.txt", "local:doc.txt", "--no-overwrite", "--json")
    assert created.returncode == 0, created.stderr
    etag = json.loads(created.stdout)["etag"]
    assert etag == json.loads(cli("stat", "local:doc.txt", "--json").stdout)["etag"]

    refused = cli("put", "b.txt", "local:doc.txt", "--no-overwrite")
    assert refused.returncode == 1
    assert refused.stderr.startswith("error: ") and "exists" in refused.stderr
    assert (workdir / "store" / "doc.txt").read_text() == "first"

    swapped = cli("put", "b.txt", "local:doc.txt", "--if-match", etag, "--json")
    assert swapped.returncode == 0, swapped.stderr
    assert json.loads(swapped.stdout)["etag"] != etag
    stale = cli("put", "a.txt", "local:doc.txt", "--if-match", etag)
    assert stale.returncode == 1 and "if_match" in stale.stderr
    assert (workdir / "store" / "doc.txt").read_text() == "second"

    both = cli("put", "a.txt", "local:doc.txt", "--if-match", etag, "--no-overwrite")
    assert both.returncode == 2 and "cannot be combined" in both.stderr


def test_cp_no_overwrite_keeps_existing_objects(cli: Run, workdir: Path) -> None:
    for name in ("one", "two", "three"):
        (workdir / f"{name}.txt").write_text(f"source {name}")
        assert cli("put", f"{name}.txt", f"local:src/{name}.txt").returncode == 0
    (workdir / "mine.txt").write_text("mine")
    assert cli("put", "mine.txt", "other:dst/two.txt").returncode == 0
    result = cli("cp", "-r", "local:src/", "other:dst/", "--no-overwrite")
    assert result.returncode == 0, result.stderr
    assert "copied 2 object(s)" in result.stderr and "kept 1 existing" in result.stderr
    assert (workdir / "other" / "dst" / "two.txt").read_text() == "mine"
    assert (workdir / "other" / "dst" / "one.txt").read_text() == "source one"
