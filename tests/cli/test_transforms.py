"""asyncstore run, the transforms of asyncstore plugins, and new-transform."""

from __future__ import annotations

import gzip
import hashlib
import json
import re
from pathlib import Path

from tests.cli.conftest import Run
from tests.install import pip_install_into, run_package_tests, write_dist

TEXT = "".join(f"{i},item {i},{i % 7}\n" for i in range(200_000))


def put(cli: Run, workdir: Path, key: str, data: str) -> None:
    (workdir / "input").write_text(data)
    assert cli("put", "input", f"local:{key}").returncode == 0


def test_run_into_a_store_and_to_standard_output(cli: Run, workdir: Path) -> None:
    put(cli, workdir, "t.csv", "n,label,group\n" + TEXT)
    result = cli("run", "gzip", "local:t.csv", "-o", "local:t.csv.gz", "-p", "level=1")
    assert result.returncode == 0, result.stderr
    assert "gzip: wrote" in result.stderr and "content-encoding=gzip" in result.stderr
    stored = (workdir / "store" / "t.csv.gz").read_bytes()
    assert gzip.decompress(stored).decode() == "n,label,group\n" + TEXT
    back = cli("run", "gzip", "local:t.csv.gz", "-p", "mode=decompress", text=False)
    assert back.returncode == 0 and back.stdout == ("n,label,group\n" + TEXT).encode()
    selected = cli("run", "csv-select", "local:t.csv", "-p", "columns=label", "-p", "where=n < 3")
    assert selected.stdout == "label\nitem 0\nitem 1\nitem 2\n"


def test_run_json_and_process_isolation(cli: Run, workdir: Path) -> None:
    put(cli, workdir, "a", TEXT)
    result = cli("run", "checksum", "local:a", "-o", "local:b", "--json", "--isolation", "process")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    digest = hashlib.sha256(TEXT.encode()).hexdigest()
    (output,) = report["outputs"]
    assert (output["output"], output["size"]) == ("local:b", len(TEXT))
    assert output["metadata"] == {"sha256": digest}
    assert report["bytes_read"] == len(TEXT)


def test_run_shows_progress_when_asked(cli: Run, workdir: Path) -> None:
    put(cli, workdir, "a", TEXT)
    result = cli("run", "identity", "local:a", "-o", "local:b", "--progress")
    assert result.returncode == 0
    assert "identity" in result.stderr and re.search(r"\d+\.\d/\d+\.\d MiB", result.stderr)
    quiet = cli("run", "identity", "local:a", "-o", "local:c")
    assert "MiB/" not in quiet.stderr and "━" not in quiet.stderr


def test_run_errors(cli: Run, workdir: Path) -> None:
    put(cli, workdir, "a", TEXT)
    refused = cli("run", "gzip", "local:a", "-o", "local:z", "-p", "level=99")
    assert refused.returncode == 1
    assert refused.stderr.strip() == (
        "error: transform 'gzip' refused its parameters: level must be 1 to 9, not '99'"
    )
    failed = cli("run", "checksum", "local:a", "-o", "local:z", "-p", "verify=" + "0" * 64)
    assert failed.returncode == 1 and "transform 'checksum' failed" in failed.stderr
    assert not (workdir / "store" / "z").exists()
    missing = cli("run", "identity", "local:nothing", "-o", "local:z")
    assert missing.returncode == 1 and "no such object" in missing.stderr
    unknown = cli("run", "nope", "local:a")
    assert unknown.returncode == 1 and "no transform named 'nope'" in unknown.stderr
    assert cli("run", "identity", "local:a", "-p", "novalue").returncode == 2
    assert cli("run", "identity", "local:a", "--json").returncode == 2
    assert cli("run", "identity", "local:a", "--memory-limit", "lots").returncode == 2


def test_plugins_lists_transforms_and_reports_broken_ones(cli: Run, workdir: Path) -> None:
    site = workdir / "site"
    write_dist(
        site,
        "broken-transform",
        modules={"broken_transform": "raise ImportError('libzz is missing')\n"},
        entry_points={"zz": "broken_transform:ZZ"},
        group="asyncstore.transforms",
    )
    write_dist(
        site,
        "not-a-transform",
        modules={"not_a_transform": "class Thing:\n    pass\n"},
        entry_points={"thing": "not_a_transform:Thing"},
        group="asyncstore.transforms",
    )
    env = {"PYTHONPATH": str(site)}
    rows = {r["name"]: r for r in json.loads(cli("plugins", "--json", env=env).stdout)}
    for name in ("identity", "gzip", "checksum", "csv-select", "zz", "thing"):
        assert rows[name]["kind"] == "transform"
    assert "error" not in rows["zz"]  # listing imports nothing
    verbose = {r["name"]: r for r in json.loads(cli("plugins", "-v", "--json", env=env).stdout)}
    assert "libzz is missing" in verbose["zz"]["error"]
    assert "not a subclass" in verbose["thing"]["error"]
    assert verbose["gzip"]["summary"].startswith("Compresses to gzip")
    assert {o["name"] for o in verbose["gzip"]["options"]} == {"mode", "level"}
    assert verbose["memory"]["summary"].startswith("Keeps objects")  # modules still described
    broken = cli("run", "zz", "local:a", env=env)
    assert broken.returncode == 1 and "libzz is missing" in broken.stderr


def test_new_transform_scaffold_installs_lists_and_passes(cli: Run, workdir: Path) -> None:
    result = cli("new-transform", "word-tag", "--dir", "plugins")
    assert result.returncode == 0, result.stderr
    root = workdir / "plugins" / "asyncstore-transform-word-tag"
    assert (
        'word-tag = "asyncstore_transform_word_tag:WordTagTransform"'
        in (root / "pyproject.toml").read_text()
    )
    assert cli("new-transform", "word-tag", "--dir", "plugins").returncode == 1
    assert cli("new-transform", "Bad Name").returncode == 2
    site = workdir / "site"
    site.mkdir()
    pip_install_into(root, site)
    env = {"PYTHONPATH": str(site)}
    listed = json.loads(cli("plugins", "--json", env=env).stdout)
    assert {
        "kind": "transform",
        "name": "word-tag",
        "target": "asyncstore_transform_word_tag:WordTagTransform",
        "distribution": "asyncstore-transform-word-tag",
        "version": "0.1.0",
    } in listed
    suite = run_package_tests(root / "tests", root=root, pythonpath=site)
    assert suite.returncode == 0, suite.stdout[-3000:]
    passed = int(re.search(r"(\d+) passed", suite.stdout).group(1))  # type: ignore[union-attr]
    assert passed >= 8
    put(cli, workdir, "in", "hello\n")
    ran = cli("run", "word-tag", "local:in", "-o", "local:out", "-p", "tag=t1", env=env)
    assert ran.returncode == 0, ran.stderr
    assert "word-tag-tag=t1" in ran.stderr
    assert (workdir / "store" / "out").read_text() == "hello\n"
