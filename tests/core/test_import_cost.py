"""`import asyncstore` loads only the contract; the plugin machinery waits until used."""

from __future__ import annotations

import json
import subprocess
import sys


def loaded_after(code: str) -> set[str]:
    script = f"import sys\n{code}\nimport json\nprint(json.dumps(sorted(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    return set(json.loads(result.stdout.splitlines()[-1]))


def test_import_loads_no_plugin_machinery() -> None:
    modules = loaded_after("import asyncstore")
    for heavy in (
        "asyncstore.registry",
        "asyncstore.config",
        "asyncstore.memory",
        "asyncstore.kv",
        "asyncstore.testing",
        "importlib.metadata",
        "importlib_metadata",
        "tomllib",
        "asyncio",
        "trio",
    ):
        assert heavy not in modules, heavy


def test_listing_plugins_imports_none_of_them() -> None:
    modules = loaded_after("import asyncstore; asyncstore.plugins()")
    assert "asyncstore.registry" in modules
    assert "asyncstore.memory" not in modules


def test_lazy_names_resolve() -> None:
    modules = loaded_after("import asyncstore; asyncstore.MemoryModule; asyncstore.open_store")
    assert {"asyncstore.memory", "asyncstore.config"} <= modules
