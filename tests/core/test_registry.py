"""The registry lists without importing, reports broken and conflicting plugins."""

from __future__ import annotations

import json

import pytest

from asyncstore import ConfigError, PluginLoadError, PluginNotFoundError, Registry
from asyncstore.memory import MemoryModule

GOOD = """
import asyncstore.memory

class GoodModule(asyncstore.memory.MemoryModule):
    '''A throwaway module for the registry tests.

    Args:
        size: How big.
        label: A label
            over two lines.
    '''

    def __init__(self, *, size: int, label: str = "x", fast: bool = False) -> None:
        super().__init__()
        self.size, self.label, self.fast = size, label, fast
"""

LISTING = """
import json, sys
import asyncstore
rows = [
    {"name": p.name, "target": p.target, "dist": p.distribution, "version": p.version,
     "conflicts": list(p.conflicts)}
    for p in asyncstore.plugins()
]
print(json.dumps({"rows": rows, "imported": sorted(
    m for m in ("good_plugin", "broken_plugin", "other_good") if m in sys.modules)}))
"""


def test_listing_imports_no_plugin(make_dist, run_python) -> None:
    make_dist(
        "good-plugin",
        "1.2",
        modules={"good_plugin": GOOD},
        entry_points={"good": "good_plugin:GoodModule"},
    )
    make_dist(
        "broken-plugin",
        "0.1",
        modules={"broken_plugin": "raise ImportError('no libfoo')"},
        entry_points={"broken": "broken_plugin:Module"},
    )
    result = json.loads(run_python(LISTING).stdout)
    rows = {row["name"]: row for row in result["rows"]}
    assert rows["good"] == {
        "name": "good",
        "target": "good_plugin:GoodModule",
        "dist": "good-plugin",
        "version": "1.2",
        "conflicts": [],
    }
    assert rows["broken"]["dist"] == "broken-plugin"
    assert rows["memory"]["dist"] == "asyncstore"
    assert result["imported"] == []


def test_broken_plugin_is_reported_and_others_still_load(make_dist, run_python) -> None:
    make_dist(
        "good-plugin",
        modules={"good_plugin": GOOD},
        entry_points={"good": "good_plugin:GoodModule"},
    )
    make_dist(
        "broken-plugin",
        modules={"broken_plugin": "raise ImportError('no libfoo')"},
        entry_points={"broken": "broken_plugin:Module"},
    )
    out = run_python("""
        import asyncstore
        from asyncstore import PluginLoadError
        from asyncstore.registry import default_registry
        broken = asyncstore.describe_plugin("broken")
        print("ERROR:", broken.error)
        good = asyncstore.describe_plugin("good")
        print("SUMMARY:", good.summary)
        print("OPTIONS:", [(o.name, o.required, o.default, o.annotation, o.description) for o in good.options])
        try:
            default_registry().load("broken")
        except PluginLoadError as exc:
            print("CAUSE:", type(exc.__cause__).__name__)
        print("LISTED:", [p.name for p in asyncstore.plugins() if p.name in ("broken", "good", "memory")])
    """).stdout
    assert (
        "ERROR: storage module 'broken' (broken_plugin:Module) failed to import: ImportError: no libfoo"
        in out
    )
    assert "SUMMARY: A throwaway module for the registry tests." in out
    assert (
        "OPTIONS: [('size', True, None, 'int', 'How big.'), "
        "('label', False, \"'x'\", 'str', 'A label over two lines.'), "
        "('fast', False, 'False', 'bool', '')]"
    ) in out
    assert "CAUSE: ImportError" in out
    assert "LISTED: ['broken', 'good', 'memory']" in out


def test_two_distributions_claiming_one_name_are_reported(make_dist, run_python) -> None:
    make_dist(
        "first-dist",
        "1.0",
        modules={"good_plugin": GOOD},
        entry_points={"dup": "good_plugin:GoodModule"},
    )
    make_dist(
        "second-dist",
        "2.0",
        modules={"other_good": GOOD},
        entry_points={"dup": "other_good:GoodModule"},
    )
    out = run_python("""
        import asyncstore, sys
        dups = [p for p in asyncstore.plugins() if p.name == "dup"]
        print(len(dups), sorted(c for p in dups for c in p.conflicts))
        try:
            asyncstore.open_store("dup://", size=1)
        except asyncstore.PluginLoadError as exc:
            print("REFUSED:", exc)
        print("IMPORTED:", "good_plugin" in sys.modules or "other_good" in sys.modules)
    """).stdout
    assert (
        "2 ['first-dist 1.0 (good_plugin:GoodModule)', 'second-dist 2.0 (other_good:GoodModule)']"
        in out
    )
    assert "REFUSED: storage module 'dup' is provided by several distributions" in out
    assert "uninstall all but one" in out
    assert "IMPORTED: False" in out


class FakeEntryPoint:
    def __init__(self, name: str, value: str, loader) -> None:
        self.name, self.value, self._loader = name, value, loader

    def load(self):
        return self._loader()


def test_registry_built_from_given_entry_points() -> None:
    failures = []

    def fail():
        raise RuntimeError("kaboom")

    registry = Registry(
        [
            FakeEntryPoint("mem", "x:Mem", lambda: MemoryModule),
            FakeEntryPoint("bad", "x:Bad", fail),
            FakeEntryPoint("notamodule", "x:obj", lambda: object),
        ],
        on_load_failure=lambda info, error: failures.append((info.name, str(error))),
    )
    assert [p.name for p in registry.plugins()] == ["bad", "mem", "notamodule"]
    assert registry.load("mem") is MemoryModule
    with pytest.raises(PluginLoadError, match="RuntimeError: kaboom"):
        registry.load("bad")
    with pytest.raises(PluginLoadError, match="not a StorageModule subclass"):
        registry.load("notamodule")
    assert [name for name, _ in failures] == ["bad", "notamodule"]
    with pytest.raises(PluginNotFoundError, match=r"installed: bad, mem, notamodule"):
        registry.get("nope")


def test_create_checks_and_converts_options() -> None:
    registry = Registry([FakeEntryPoint("mem", "x:Mem", lambda: MemoryModule)])
    module = registry.create("mem", {"max_bytes": "1024"})
    assert isinstance(module, MemoryModule) and module.name == "mem"
    assert module._max_bytes == 1024
    with pytest.raises(ConfigError, match=r"unknown option\(s\) 'colour'.*accepted: max_bytes\?"):
        registry.create("mem", {"colour": "blue"})
    with pytest.raises(ConfigError, match="must be int or None"):
        registry.create("mem", {"max_bytes": "lots"})
    assert registry.create("mem", {"max_bytes": "none"})._max_bytes is None  # type: ignore[attr-defined]


def test_missing_required_options_are_listed() -> None:
    class Needs(MemoryModule):
        def __init__(self, *, root: str, depth: int = 2) -> None:
            super().__init__()

    registry = Registry([FakeEntryPoint("needs", "x:Needs", lambda: Needs)])
    with pytest.raises(
        ConfigError, match=r"missing required option\(s\) 'root'.*accepted: root, depth\?"
    ):
        registry.create("needs", {})
