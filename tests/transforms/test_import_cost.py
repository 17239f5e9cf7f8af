"""The transform machinery loads on first use: `import asyncstore` stays as cheap as it was."""

from __future__ import annotations

from tests.core.test_import_cost import loaded_after


def test_import_asyncstore_loads_no_transform_machinery() -> None:
    modules = loaded_after("import asyncstore, asyncstore.middleware")
    assert not {m for m in modules if m.startswith("asyncstore.transforms")}
    assert "asyncstore.middleware.transform" not in modules


def test_running_inline_loads_neither_the_worker_nor_other_transforms() -> None:
    modules = loaded_after(
        "import anyio, asyncstore\n"
        "from asyncstore.memory import MemoryModule\n"
        "async def main():\n"
        "    async with MemoryModule() as m:\n"
        "        await m.put(b'x', key='a')\n"
        "        await asyncstore.run_transform('identity', inputs=[(m, 'a')], outputs=[(m, 'b')])\n"
        "anyio.run(main)"
    )
    assert "asyncstore.transforms.identity" in modules
    for unused in (
        "asyncstore.transforms._process",
        "asyncstore.transforms._worker",
        "asyncstore.transforms._read",
        "asyncstore.transforms.gzip",
        "asyncstore.transforms.csv_select",
    ):
        assert unused not in modules, unused
