"""Named stores, ${ENV} expansion, config discovery and inner-store resolution."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pytest

from asyncstore import Config, ConfigError, ModuleContext, ReadStream, Registry, open_store
from asyncstore.config import expand_env, find_config
from asyncstore.memory import MemoryModule
from asyncstore.module import StorageModule
from asyncstore.streams import ByteSource

pytestmark = pytest.mark.anyio


class Wrapper(StorageModule):
    """Passes everything to an inner store found through the context.

    Args:
        inner: The inner store's name or URL.
        key: A secret.
    """

    def __init__(self, *, inner: str, key: str = "", context: ModuleContext) -> None:
        self.inner = context.get_module(inner)
        self.key = key

    async def assign(
        self,
        handle: str,
        source: ByteSource,
        *,
        metadata: Mapping[str, str] | None = None,
        content_type: str | None = None,
    ) -> None:
        await self.inner.assign(handle, source, metadata=metadata, content_type=content_type)

    async def get_read_stream(
        self, handle: str, *, start: int = 0, end: int | None = None
    ) -> ReadStream:
        return await self.inner.get_read_stream(handle, start=start, end=end)

    async def stat(self, handle: str):  # type: ignore[no-untyped-def]
        return await self.inner.stat(handle)

    async def delete(self, handle: str) -> None:
        await self.inner.delete(handle)

    async def aclose(self) -> None:
        await self.inner.aclose()


class EntryPoint:
    def __init__(self, name: str, cls: type) -> None:
        self.name, self.value, self.cls = name, f"tests:{cls.__name__}", cls

    def load(self) -> type:
        return self.cls


REGISTRY = Registry([EntryPoint("memory", MemoryModule), EntryPoint("wrap", Wrapper)])

TOML = """
[stores.base]
module = "memory"
max_bytes = 1000

[stores.secure]
module = "wrap"
inner = "base"
key = "${TEST_MASTER_KEY}"

[stores.by-url]
module = "wrap"
inner = "memory://?max_bytes=5"

[stores.loop-a]
module = "wrap"
inner = "loop-b"

[stores.loop-b]
module = "wrap"
inner = "loop-a"

[stores.literal]
module = "wrap"
inner = "base"
key = "$${NOT_EXPANDED}"
"""


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "asyncstore.toml"
    path.write_text(TOML)
    return path


async def test_named_store_with_inner_store_and_env(config_file: Path) -> None:
    env = {"TEST_MASTER_KEY": "s3cr3t"}
    async with open_store("secure", config=config_file, registry=REGISTRY, environ=env) as store:
        assert isinstance(store, Wrapper)
        assert store.name == "secure"
        assert store.key == "s3cr3t"
        assert isinstance(store.inner, MemoryModule)
        assert store.inner.name == "base"
        assert (await store.inner.statistics())["capacity"]["total"] == 1000
        handle = await store.put(b"through", key="k")
        assert await store.inner.get_size(handle) == 7


async def test_inner_store_by_url(config_file: Path) -> None:
    store = open_store("by-url", config=config_file, registry=REGISTRY)
    assert isinstance(store, Wrapper)
    assert store.inner.name == "memory://"
    assert (await store.inner.statistics())["capacity"]["total"] == 5
    await store.aclose()


def test_missing_variable_is_named_not_valued(config_file: Path) -> None:
    with pytest.raises(ConfigError, match=r"'TEST_MASTER_KEY' is not set.*stores.secure.key"):
        open_store("secure", config=config_file, registry=REGISTRY, environ={})


def test_literal_dollar_brace(config_file: Path) -> None:
    store = open_store("literal", config=config_file, registry=REGISTRY, environ={})
    assert store.key == "${NOT_EXPANDED}"  # type: ignore[attr-defined]


def test_cycles_are_reported(config_file: Path) -> None:
    with pytest.raises(ConfigError, match="cycle: loop-a -> loop-b -> loop-a"):
        open_store("loop-a", config=config_file, registry=REGISTRY)


def test_unknown_store_lists_configured_ones(config_file: Path) -> None:
    with pytest.raises(
        ConfigError, match=r"no store named 'nope'.*configured: base, by-url, literal"
    ):
        open_store("nope", config=config_file, registry=REGISTRY)


def test_overrides_and_unknown_options(config_file: Path) -> None:
    store = open_store("base", config=config_file, registry=REGISTRY, max_bytes=7)
    assert store._max_bytes == 7  # type: ignore[attr-defined]
    with pytest.raises(ConfigError, match=r"unknown option\(s\) 'colour'.*accepted: max_bytes\?"):
        open_store("base", config=config_file, registry=REGISTRY, colour="red")


def test_url_specs() -> None:
    store = open_store("memory://?max_bytes=42", registry=REGISTRY)
    assert store._max_bytes == 42  # type: ignore[attr-defined]
    with pytest.raises(ConfigError, match="take no location"):
        open_store("memory://somewhere/else", registry=REGISTRY)
    with pytest.raises(ConfigError, match="non-empty str"):
        open_store("", registry=REGISTRY)


def test_installed_memory_plugin_through_the_default_registry() -> None:
    store = open_store("memory://")
    assert isinstance(store, MemoryModule)


def test_masked_options(config_file: Path) -> None:
    config = Config.from_file(config_file)
    assert config.stores["secure"].masked_options() == {
        "inner": "base",
        "key": "${TEST_MASTER_KEY}",
    }
    plain = Config.from_dict({"stores": {"s": {"module": "m", "secret_key": "abc", "root": "/x"}}})
    assert plain.stores["s"].masked_options() == {"secret_key": "***", "root": "/x"}


def test_malformed_files(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[stores.x\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        Config.from_file(bad)
    with pytest.raises(ConfigError, match="needs a 'module'"):
        Config.from_dict({"stores": {"x": {"root": "/"}}})
    with pytest.raises(ConfigError, match="unknown top-level"):
        Config.from_dict({"store": {}})


def test_discovery_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    work = tmp_path / "work"
    user = tmp_path / "xdg" / "asyncstore"
    work.mkdir()
    user.mkdir(parents=True)
    monkeypatch.chdir(work)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("ASYNCSTORE_CONFIG", raising=False)
    assert find_config() is None
    (user / "asyncstore.toml").write_text("")
    assert find_config() == user / "asyncstore.toml"
    (work / "asyncstore.toml").write_text("")
    assert find_config() == work / "asyncstore.toml"
    named = tmp_path / "named.toml"
    named.write_text("")
    monkeypatch.setenv("ASYNCSTORE_CONFIG", str(named))
    assert find_config() == named
    explicit = tmp_path / "explicit.toml"
    explicit.write_text("")
    assert find_config(explicit) == explicit
    with pytest.raises(ConfigError, match="does not exist"):
        find_config(tmp_path / "missing.toml")


def test_expand_env_recurses() -> None:
    env = {"A": "1", "B": "2"}
    assert expand_env({"x": ["${A}", {"y": "${B}-${A}"}], "n": 3}, env) == {
        "x": ["1", {"y": "2-1"}],
        "n": 3,
    }
