"""The views' TOML in docs/middleware.md configures working stores."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from asyncstore import open_store
from asyncstore.config import Config
from asyncstore.errors import PermissionDeniedError

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

DOC = Path(__file__).resolve().parents[2] / "docs" / "middleware.md"
VIEWS = ("readonly", "prefix", "mount")


def views_config() -> dict[str, dict[str, object]]:
    section = DOC.read_text().split("## Views: readonly, prefix, mount", 1)[1]
    block = re.search(r"```toml\n(.*?)```", section, re.S)
    assert block, "the views section has no TOML"
    stores: dict[str, dict[str, object]] = tomllib.loads(block.group(1))["stores"]
    return stores


@pytest.mark.anyio
async def test_the_documented_views_open_and_work(tmp_path: Path) -> None:
    stores = views_config()
    assert {table["module"] for table in stores.values()} >= set(VIEWS)
    for name, table in stores.items():
        if table["module"] not in VIEWS:  # the stores beneath: a directory each, here
            stores[name] = {"module": "fs", "root": str(tmp_path / name), "fsync": False}
    config = Config.from_dict({"stores": stores})
    async with open_store("local", config=config) as local:
        await local.put(b"public", key="site/index.html")
    async with open_store("published", config=config) as published:
        async with await published.get_read_stream("site/index.html") as stream:
            assert await stream.read() == b"public"
        with pytest.raises(PermissionDeniedError):
            await published.put(b"x", key="site/index.html")
    async with open_store("acme", config=config) as acme:
        await acme.put(b"invoice", key="2026/01.pdf")
    assert (tmp_path / "local" / "tenants" / "acme" / "2026" / "01.pdf").exists()
    async with open_store("app", config=config) as app:
        await app.put(b"jpeg", key="media/cat.jpg")
        await app.put(b"tmp", key="cache/session")
        handles = [info.handle async for info in app.list()]
    assert (tmp_path / "s3-media" / "cat.jpg").read_bytes() == b"jpeg"
    assert handles == [
        "cache/session",
        "media/cat.jpg",
        "site/index.html",
        "tenants/acme/2026/01.pdf",
    ]
