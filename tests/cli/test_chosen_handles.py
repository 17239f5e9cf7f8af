"""put, cp and sync into stores that choose their own handles (legacy modules)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.cli.conftest import Run
from tests.install import write_dist

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "example-legacy"

STORES = """
[stores.files]
module = "legacy-files"
root = "blobs"

[stores.secure]
module = "legacy-scramble"
inner = "files"

[stores.picky]
module = "legacy-picky"
root = "picky"

[stores.keeper]
module = "legacy-keeper"
root = "kept"
"""

PICKY = """
import io

from asyncstore.sync import legacy_module_class
from legacy_blobstore.files import FileModule


class PickyModule(FileModule):
    '''Refuses objects that contain the word "poison".'''

    def put(self, context, stream):
        data = stream.read()
        if b"poison" in data:
            raise ValueError("refused")
        return super().put(context, io.BytesIO(data))


class KeeperModule(FileModule):
    '''Never deletes anything.'''

    delete = None


PickyStore = legacy_module_class(PickyModule)
KeeperStore = legacy_module_class(KeeperModule)
"""


@pytest.fixture
def legacy(cli: Run, workdir: Path, tmp_path_factory: pytest.TempPathFactory) -> Run:
    """The ``cli`` runner with the example's legacy stores (and a picky one) configured."""
    site = tmp_path_factory.mktemp("site")
    write_dist(
        site,
        "legacy-blobstore",
        modules={"picky_plugin": PICKY},
        entry_points={
            "legacy-files": "legacy_blobstore.asyncstore_plugin:FileStore",
            "legacy-scramble": "legacy_blobstore.asyncstore_plugin:ScrambleStore",
            "legacy-picky": "picky_plugin:PickyStore",
            "legacy-keeper": "picky_plugin:KeeperStore",
        },
    )
    with (workdir / "asyncstore.toml").open("a") as config:
        config.write(STORES)
    path = os.pathsep.join([str(site), str(EXAMPLE)])

    def run(*args: str, **kwargs: object) -> object:
        return cli(*args, env={"PYTHONPATH": path}, **kwargs)  # type: ignore[arg-type]

    return run  # type: ignore[return-value]


def _stored(workdir: Path, root: str = "blobs") -> list[str]:
    directory = workdir / root
    if not directory.exists():
        return []
    return sorted(p.name for p in directory.iterdir() if not p.name.startswith("."))


@pytest.mark.parametrize("destination", ["secure", "secure:"])
def test_put_prints_the_handle_the_store_chose(
    legacy: Run, workdir: Path, destination: str
) -> None:
    (workdir / "hello.txt").write_text("hello, legacy")
    result = legacy("put", "hello.txt", destination)
    assert result.returncode == 0, result.stderr
    handle = result.stdout.strip()
    assert _stored(workdir) == [json.loads(handle)["id"]]
    assert legacy("cat", f"secure:{handle}").stdout == "hello, legacy"
    # A new handle replaces nothing: create-only holds without the store knowing conditions.
    as_json = legacy("put", "hello.txt", destination, "--json", "--no-overwrite")
    other = json.loads(as_json.stdout)["handle"]
    assert other != handle and legacy("cat", f"secure:{other}").stdout == "hello, legacy"
    piped = legacy("put", "-", destination, input="from a pipe")
    assert piped.returncode == 0, piped.stderr
    assert legacy("cat", f"secure:{piped.stdout.strip()}").stdout == "from a pipe"
    for name in (handle, other, piped.stdout.strip()):
        assert legacy("rm", f"secure:{name}").stderr == "deleted 1 object(s)\n"
    assert _stored(workdir) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["secure:named.txt"], "'secure' chooses its own handles: give no key"),
        (["secure:dir/"], "'secure' chooses its own handles: give no key"),
        (["secure", "--key", "named.txt"], "'secure' chooses its own handles: give no key"),
        (["secure", "--meta", "a=1"], "keeps no metadata or content type"),
        (["secure", "--content-type", "text/plain"], "keeps no metadata or content type"),
    ],
)
def test_put_refuses_what_the_store_cannot_keep(
    legacy: Run, workdir: Path, args: list[str], message: str
) -> None:
    (workdir / "hello.txt").write_text("hello")
    result = legacy("put", "hello.txt", *args)
    assert result.returncode == 2
    assert message in result.stderr
    assert _stored(workdir) == []


def _sources(legacy: Run, workdir: Path, contents: dict[str, str]) -> None:
    for key, text in contents.items():
        (workdir / "source.txt").write_text(text)
        assert legacy("put", "source.txt", f"local:{key}").returncode == 0


def test_cp_prints_each_key_and_the_handle_it_got(legacy: Run, workdir: Path) -> None:
    contents = {"docs/a.txt": "first", "docs/b.txt": "second", "docs/sub/c.txt": "third"}
    _sources(legacy, workdir, contents)
    result = legacy("cp", "-r", "local:docs/", "secure:")
    assert result.returncode == 0, result.stderr
    assert "copied 3 object(s)" in result.stderr
    lines = [line.split("\t") for line in result.stdout.splitlines()]
    assert [key for key, _ in lines] == sorted(contents)
    for key, handle in lines:
        assert legacy("cat", f"secure:{handle}").stdout == contents[key]
    single = legacy("cp", "local:docs/a.txt", "secure", "--json", "--no-overwrite")
    report = json.loads(single.stdout)
    assert (report["copied"], report["skipped"], report["bytes"]) == (1, 0, 5)
    [(key, handle)] = report["handles"].items()
    assert key == "docs/a.txt" and legacy("cat", f"secure:{handle}").stdout == "first"
    assert len(_stored(workdir)) == 4


def test_cp_json_lists_target_keys_of_keyed_stores(legacy: Run, workdir: Path) -> None:
    _sources(legacy, workdir, {"docs/a.txt": "first"})
    result = legacy("cp", "-r", "local:docs/", "other:copy/", "--json")
    assert json.loads(result.stdout)["handles"] == {"docs/a.txt": "copy/a.txt"}
    assert legacy("cp", "-r", "local:docs/", "other:again/").stdout == ""


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["sync", "local:docs/", "secure"], "cannot tell which objects it already holds"),
        (["cp", "-r", "--skip-existing", "local:docs/", "secure:"], "cannot tell which"),
        (["cp", "-r", "local:docs/", "secure:docs/"], "give the destination no key"),
        (["cp", "local:docs/a.txt", "secure:a.txt"], "give the destination no key"),
    ],
)
def test_what_cannot_work_is_refused_before_copying(
    legacy: Run, workdir: Path, args: list[str], message: str
) -> None:
    _sources(legacy, workdir, {"docs/a.txt": "first", "docs/b.txt": "second"})
    result = legacy(*args, "--json")
    assert result.returncode == 2
    assert message in result.stderr and "'secure' chooses its own handles" in result.stderr
    assert result.stdout == ""
    assert _stored(workdir) == []


def test_a_failed_cp_still_prints_the_handles_of_what_it_stored(legacy: Run, workdir: Path) -> None:
    _sources(legacy, workdir, {"mix/1.txt": "fine", "mix/2.txt": "poison", "mix/3.txt": "ok"})
    result = legacy("cp", "-r", "-j", "1", "local:mix/", "picky")
    assert result.returncode == 1
    assert "refused" in result.stderr
    printed = dict(line.split("\t") for line in result.stdout.splitlines())
    assert sorted(printed) == ["mix/1.txt", "mix/3.txt"]
    assert sorted(json.loads(h)["id"] for h in printed.values()) == _stored(workdir, "picky")
    assert legacy("cat", f"picky:{printed['mix/3.txt']}").stdout == "ok"


def test_check_of_a_store_that_cannot_delete_says_what_it_left(legacy: Run, workdir: Path) -> None:
    result = legacy("check", "keeper", "--json")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr
    report = json.loads(result.stdout)
    assert report["failed"] == 0
    details = {e["detail"] for e in report["results"].values() if e["outcome"] == "skipped"}
    assert "KeeperModule declares 'delete' unsupported" in details
    assert sorted(json.loads(h)["id"] for h in report["left"]) == _stored(workdir, "kept")
    assert len(report["left"]) > 50
    assert f"'keeper' cannot delete: the checks left {len(report['left'])} object(s)" in (
        result.stderr
    )
