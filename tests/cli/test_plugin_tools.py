"""new-plugin scaffolds a distribution that installs, lists and passes the suite once filled;
check passes correct stores and fails broken ones; plugins shows broken plugins."""

from __future__ import annotations

import json
import re
from pathlib import Path

from tests.cli.conftest import Run
from tests.install import pip_install_into, run_package_tests, write_dist

EXAMPLE = (
    Path(__file__).resolve().parents[2]
    / "docs"
    / "examples"
    / "sqlite"
    / "asyncstore_sqlite"
    / "__init__.py"
)

BUGGY = '''
from asyncstore.memory import MemoryModule

class WrongRange(MemoryModule):
    """Returns one byte too many for ranges."""

    async def get_read_stream(self, handle, *, start=0, end=None):
        return await super().get_read_stream(handle, start=start, end=None if end is None else end + 1)
'''


def test_new_plugin_scaffold_fill_install_and_pass(cli: Run, workdir: Path) -> None:
    result = cli("new-plugin", "shelf", "--dir", "plugins")
    assert result.returncode == 0, result.stderr
    root = workdir / "plugins" / "asyncstore-shelf"
    assert 'shelf = "asyncstore_shelf:ShelfModule"' in (root / "pyproject.toml").read_text()
    assert cli("new-plugin", "shelf", "--dir", "plugins").returncode == 1
    assert cli("new-plugin", "Bad-Name").returncode == 2
    # Fill the skeleton with the SQLite example (the scaffold's base and options).
    filled = (
        EXAMPLE.read_text()
        .replace("SQLiteModule", "ShelfModule")
        .replace('name = "sqlite"', 'name = "shelf"')
    )
    (root / "asyncstore_shelf" / "__init__.py").write_text(filled)
    site = workdir / "site"
    site.mkdir()
    pip_install_into(root, site)
    env = {"PYTHONPATH": str(site)}
    listed = json.loads(cli("plugins", "--json", env=env).stdout)
    assert {
        "kind": "module",
        "name": "shelf",
        "target": "asyncstore_shelf:ShelfModule",
        "distribution": "asyncstore-shelf",
        "version": "0.1.0",
    } in listed
    suite = run_package_tests(root / "tests", root=root, pythonpath=site)
    assert suite.returncode == 0, suite.stdout[-3000:]
    assert int(re.search(r"(\d+) passed", suite.stdout).group(1)) > 200  # type: ignore[union-attr]
    assert "warning" not in suite.stdout.lower(), suite.stdout[-3000:]
    assert cli("check", f"shelf://{workdir}/check.db", env=env).returncode == 0


def test_unfilled_scaffold_fails_the_suite(cli: Run, workdir: Path) -> None:
    for base in ("blocking", "async", "module"):
        cli("new-plugin", f"todo_{base}", "--dir", "plugins", "--base", base)
        root = workdir / "plugins" / f"asyncstore-todo-{base}"
        suite = run_package_tests(root / "tests", "-x", root=root, pythonpath=root)
        assert suite.returncode == 1
        assert "NotImplementedError: TODO" in suite.stdout, suite.stdout[-3000:]
        assert "warning" not in suite.stdout.lower(), suite.stdout[-3000:]


def test_check_fails_a_broken_store_and_shows_which_checks(cli: Run, workdir: Path) -> None:
    site = workdir / "site"
    write_dist(site, "buggy", modules={"buggy": BUGGY}, entry_points={"buggy": "buggy:WrongRange"})
    result = cli("check", "buggy://", "--filter", "range", "--json", env={"PYTHONPATH": str(site)})
    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert report["results"]["test_range_is_half_open"]["outcome"] == "failed"
    assert report["failed"] >= 3
    table = cli("check", "memory://", "--filter", "range")
    assert table.returncode == 0 and "test_range_is_half_open" in table.stdout


def test_plugins_verbose_shows_broken_plugins(cli: Run, workdir: Path) -> None:
    site = workdir / "site"
    write_dist(
        site,
        "broken",
        modules={"broken_mod": "raise ImportError('libbroken is missing')\n"},
        entry_points={"broken": "broken_mod:X"},
    )
    env = {"PYTHONPATH": str(site)}
    plain = cli("plugins", env=env)
    assert plain.returncode == 0 and "broken" in plain.stdout
    verbose = cli("plugins", "--verbose", "--json", env=env)
    rows = {row["name"]: row for row in json.loads(verbose.stdout)}
    assert "libbroken is missing" in rows["broken"]["error"]
    assert rows["memory"]["summary"].startswith("Keeps objects")
