"""The encrypt middleware: format, tamper detection, key rotation, ranged reads, configuration."""

from __future__ import annotations

import base64
import logging
import os
import sys
from pathlib import Path

import pytest

from asyncstore import ConfigError, IntegrityError, NotFoundError, open_store
from asyncstore.memory import MemoryModule
from asyncstore.middleware.encrypt import (
    CHUNK_SIZE,
    HEADER_SIZE,
    EncryptionModule,
    key_id,
    plaintext_size,
)
from asyncstore.module import StorageModule

from .helpers import CountingModule, new_key

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


RECORD = CHUNK_SIZE + 16


def data_of(size: int, seed: int = 0) -> bytes:
    block = bytes((i * 7 + seed) % 251 for i in range(4096))
    return (block * (size // len(block) + 1))[:size]


@pytest.fixture
def inner() -> CountingModule:
    return CountingModule()


@pytest.fixture
def key() -> str:
    return new_key()


@pytest.fixture
async def store(inner: CountingModule, key: str):
    async with EncryptionModule(inner=inner, key=key) as module:
        yield module


async def read(module: StorageModule, handle: str, **kwargs: int) -> bytes:
    async with await module.get_read_stream(handle, **kwargs) as stream:
        return await stream.read()


@pytest.mark.parametrize(
    "size",
    [0, 1, CHUNK_SIZE - 1, CHUNK_SIZE, CHUNK_SIZE + 1, 2 * CHUNK_SIZE, 3 * CHUNK_SIZE + 17],
)
async def test_round_trip_and_sizes_at_chunk_boundaries(
    store: EncryptionModule, inner: CountingModule, size: int
) -> None:
    data = data_of(size)
    await store.put(data, key="obj")
    chunks = max(1, -(-size // CHUNK_SIZE))
    assert len(inner.raw("obj")) == HEADER_SIZE + size + 16 * chunks
    assert plaintext_size(len(inner.raw("obj"))) == size
    assert await read(store, "obj") == data
    assert await store.get_size("obj") == size


async def test_ciphertext_hides_the_plaintext(
    store: EncryptionModule, inner: CountingModule
) -> None:
    data = b"attack at dawn " * 10_000
    await store.put(data, key="secret")
    assert b"attack at dawn" not in inner.raw("secret")


async def test_size_and_stat_read_nothing(store: EncryptionModule, inner: CountingModule) -> None:
    await store.put(data_of(5 * CHUNK_SIZE + 3), key="big", metadata={"a": "b"})
    inner.bytes_read = 0
    assert await store.get_size("big") == 5 * CHUNK_SIZE + 3
    info = await store.stat("big")
    assert info.size == 5 * CHUNK_SIZE + 3
    assert dict(info.metadata) == {"a": "b"}
    listed = [i async for i in store.list()]
    assert [(i.handle, i.size) for i in listed] == [("big", 5 * CHUNK_SIZE + 3)]
    assert inner.bytes_read == 0


async def test_metadata_is_stored_as_given(store: EncryptionModule, inner: CountingModule) -> None:
    await store.put(b"x", key="m", metadata={"owner": "alice"}, content_type="text/plain")
    info = await inner.stat("m")
    assert dict(info.metadata) == {"owner": "alice"}
    assert info.content_type == "text/plain"


async def test_ranged_read_decrypts_only_touched_chunks(
    store: EncryptionModule, inner: CountingModule
) -> None:
    data = data_of(20 * CHUNK_SIZE)
    await store.put(data, key="big")
    inner.bytes_read = 0
    start = 7 * CHUNK_SIZE + 100
    assert await read(store, "big", start=start, end=start + 4096) == data[start : start + 4096]
    assert inner.bytes_read == HEADER_SIZE + RECORD
    inner.bytes_read = 0
    start = 8 * CHUNK_SIZE - 2048  # straddles two chunks
    assert await read(store, "big", start=start, end=start + 4096) == data[start : start + 4096]
    assert inner.bytes_read == HEADER_SIZE + 2 * RECORD


async def test_seek_decrypts_only_touched_chunks(
    store: EncryptionModule, inner: CountingModule
) -> None:
    data = data_of(20 * CHUNK_SIZE)
    await store.put(data, key="big")
    inner.bytes_read = 0
    async with await store.get_read_stream("big") as stream:
        await stream.seek(15 * CHUNK_SIZE + 5)
        assert await stream.read(10) == data[15 * CHUNK_SIZE + 5 : 15 * CHUNK_SIZE + 15]
        assert await stream.read(10) == data[15 * CHUNK_SIZE + 15 : 15 * CHUNK_SIZE + 25]
        await stream.seek(3)
        assert await stream.read(5) == data[3:8]
    assert inner.bytes_read == HEADER_SIZE + 2 * RECORD


# ---- tampering ----------------------------------------------------------------------------


async def tampered(store: EncryptionModule, inner: CountingModule, handle: str, raw: bytes) -> None:
    await inner.poke(handle, raw)
    with pytest.raises(IntegrityError) as caught:
        await read(store, handle)
    assert handle in str(caught.value)


@pytest.mark.parametrize(
    "offset",
    [
        0,
        5,
        13,
        30,
        45,
        60,
        HEADER_SIZE - 1,
        HEADER_SIZE,
        HEADER_SIZE + 1000,
        HEADER_SIZE + RECORD - 1,
        HEADER_SIZE + RECORD + 5,
        -1,
    ],
    ids=lambda o: f"byte{o}",
)
async def test_flipped_byte_is_detected(
    store: EncryptionModule, inner: CountingModule, offset: int
) -> None:
    await store.put(data_of(2 * CHUNK_SIZE + 10), key="obj")
    raw = bytearray(inner.raw("obj"))
    raw[offset] ^= 0x01
    await tampered(store, inner, "obj", bytes(raw))


async def test_swapped_chunks_are_detected(store: EncryptionModule, inner: CountingModule) -> None:
    await store.put(data_of(3 * CHUNK_SIZE), key="obj")
    raw = inner.raw("obj")
    first = raw[HEADER_SIZE : HEADER_SIZE + RECORD]
    second = raw[HEADER_SIZE + RECORD : HEADER_SIZE + 2 * RECORD]
    swapped = raw[:HEADER_SIZE] + second + first + raw[HEADER_SIZE + 2 * RECORD :]
    await tampered(store, inner, "obj", swapped)


async def test_truncation_at_a_chunk_boundary_is_detected(
    store: EncryptionModule, inner: CountingModule
) -> None:
    await store.put(data_of(3 * CHUNK_SIZE), key="obj")
    raw = inner.raw("obj")
    await tampered(store, inner, "obj", raw[: HEADER_SIZE + 2 * RECORD])


@pytest.mark.parametrize("cut", [1, 16, 17, 1000])
async def test_truncation_inside_a_chunk_is_detected(
    store: EncryptionModule, inner: CountingModule, cut: int
) -> None:
    await store.put(data_of(2 * CHUNK_SIZE + 500), key="obj")
    await tampered(store, inner, "obj", inner.raw("obj")[:-cut])


async def test_truncation_to_the_header_is_detected(
    store: EncryptionModule, inner: CountingModule
) -> None:
    await store.put(b"hello", key="obj")
    await inner.poke("obj", inner.raw("obj")[:HEADER_SIZE])
    with pytest.raises(IntegrityError):
        await store.get_size("obj")
    with pytest.raises(IntegrityError):
        await store.get_read_stream("obj")


async def test_extension_is_detected(store: EncryptionModule, inner: CountingModule) -> None:
    await store.put(data_of(2 * CHUNK_SIZE), key="obj")
    raw = inner.raw("obj")
    last = raw[-RECORD:]
    await tampered(store, inner, "obj", raw + last)
    await store.put(data_of(2 * CHUNK_SIZE), key="obj2")
    await tampered(store, inner, "obj2", inner.raw("obj2") + b"\x00" * 100)


async def test_swapping_two_objects_is_detected(
    store: EncryptionModule, inner: CountingModule
) -> None:
    await store.put(b"first object", key="a")
    await store.put(b"second object", key="b")
    raw_a, raw_b = inner.raw("a"), inner.raw("b")
    await inner.poke("a", raw_b)
    await inner.poke("b", raw_a)
    for handle in ("a", "b"):
        with pytest.raises(IntegrityError, match="another handle"):
            await read(store, handle)


async def test_chunk_spliced_from_another_object_is_detected(
    store: EncryptionModule, inner: CountingModule
) -> None:
    await store.put(data_of(2 * CHUNK_SIZE + 1, seed=1), key="a")
    await store.put(data_of(2 * CHUNK_SIZE + 1, seed=2), key="b")
    raw_a, raw_b = inner.raw("a"), inner.raw("b")
    spliced = raw_a[: HEADER_SIZE + RECORD] + raw_b[HEADER_SIZE + RECORD :]
    await tampered(store, inner, "a", spliced)


async def test_ranged_read_of_an_untouched_chunk_still_works_after_tampering_elsewhere(
    store: EncryptionModule, inner: CountingModule
) -> None:
    data = data_of(3 * CHUNK_SIZE)
    await store.put(data, key="obj")
    raw = bytearray(inner.raw("obj"))
    raw[HEADER_SIZE + 2 * RECORD + 3] ^= 0xFF  # in the last chunk
    await inner.poke("obj", bytes(raw))
    assert await read(store, "obj", start=10, end=20) == data[10:20]
    with pytest.raises(IntegrityError, match="chunk 2"):
        await read(store, "obj", start=2 * CHUNK_SIZE)


async def test_an_object_not_written_by_the_layer(
    store: EncryptionModule, inner: CountingModule
) -> None:
    await inner.put(b"plain text that is long enough to look like a header" * 3, key="plain")
    with pytest.raises(IntegrityError):
        await read(store, "plain")


async def test_missing_object_is_not_found(store: EncryptionModule) -> None:
    with pytest.raises(NotFoundError):
        await store.get_read_stream("absent")


# ---- keys ---------------------------------------------------------------------------------


async def test_wrong_key_is_an_integrity_error(inner: CountingModule, key: str) -> None:
    writer = EncryptionModule(inner=inner, key=key)
    await writer.put(b"data", key="obj")
    reader = EncryptionModule(inner=inner, key=new_key())
    with pytest.raises(IntegrityError, match="old_keys"):
        await read(reader, "obj")


async def test_key_rotation_keeps_old_objects_readable(inner: CountingModule) -> None:
    old, new = new_key(), new_key()
    await EncryptionModule(inner=inner, key=old).put(b"old object", key="old")
    rotated = EncryptionModule(inner=inner, key=new, old_keys=[old])
    assert await read(rotated, "old") == b"old object"
    await rotated.put(b"new object", key="new")
    assert inner.raw("new")[4:12] == key_id(base64.b64decode(new))
    assert inner.raw("old")[4:12] == key_id(base64.b64decode(old))
    # Once the old key is retired, the new object is still readable with the new key alone.
    only_new = EncryptionModule(inner=inner, key=new)
    assert await read(only_new, "new") == b"new object"
    with pytest.raises(IntegrityError):
        await read(only_new, "old")
    # old_keys as a comma-separated string (how an environment variable carries a list).
    from_string = EncryptionModule(inner=inner, key=new, old_keys=f"{new_key()},{old}")
    assert await read(from_string, "old") == b"old object"


@pytest.mark.parametrize("encode", ["hex", "base64", "urlsafe", "hex-prefix", "b64-prefix"])
async def test_key_encodings(encode: str) -> None:
    raw = os.urandom(32)
    text = {
        "hex": raw.hex(),
        "base64": base64.b64encode(raw).decode(),
        "urlsafe": base64.urlsafe_b64encode(raw).decode().rstrip("="),
        "hex-prefix": "hex:" + raw.hex(),
        "b64-prefix": "base64:" + base64.b64encode(raw).decode(),
    }[encode]
    inner = MemoryModule()
    await EncryptionModule(inner=inner, key=text).put(b"x", key="k")
    assert (await inner.get_read_stream("k")).info.size > 0
    assert await read(EncryptionModule(inner=inner, key=raw.hex()), "k") == b"x"


async def test_key_file(tmp_path: Path) -> None:
    raw = os.urandom(32)
    (tmp_path / "raw.key").write_bytes(raw)
    (tmp_path / "text.key").write_text(base64.b64encode(raw).decode() + "\n")
    inner = MemoryModule()
    await EncryptionModule(inner=inner, key_file=str(tmp_path / "raw.key")).put(b"x", key="k")
    module = EncryptionModule(inner=inner, key_file=str(tmp_path / "text.key"))
    assert await read(module, "k") == b"x"
    with pytest.raises(ConfigError, match="key_file"):
        EncryptionModule(inner=inner, key_file=str(tmp_path / "missing.key"))


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"key": "c2hvcnQ="},
        {"key": "not a key at all!"},
        {"key": "hex:zz"},
        {"key": "aa" * 32, "key_file": "/etc/hostname"},
        {"key": "aa" * 32, "old_keys": ["bb" * 31]},
    ],
    ids=["none", "short", "garbage", "bad-hex", "both", "bad-old"],
)
def test_bad_key_configuration(options: dict[str, object]) -> None:
    with pytest.raises(ConfigError) as caught:
        EncryptionModule(inner=MemoryModule(), **options)  # type: ignore[arg-type]
    for value in options.values():
        if isinstance(value, str) and "key" not in value and value != "/etc/hostname":
            assert value not in str(caught.value)


async def test_keys_never_appear_in_repr_errors_or_logs(
    key: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    inner = MemoryModule()
    module = EncryptionModule(inner=inner, key=key)
    raw = base64.b64decode(key)
    await module.put(b"x", key="k")
    texts = [repr(module), repr(module._keyring), str(await module.statistics())]
    with pytest.raises(IntegrityError) as caught:
        await read(EncryptionModule(inner=inner, key=new_key()), "k")
    texts.append(str(caught.value))
    texts.extend(record.getMessage() for record in caplog.records)
    for text in texts:
        assert key not in text and raw.hex() not in text


# ---- description, configuration and packaging --------------------------------------------


async def test_capabilities_and_statistics(store: EncryptionModule) -> None:
    caps = store.capabilities()
    assert caps["cdmi_encryption"] == ["AES_GCM_256"]
    assert caps["named_keys"] is True
    assert caps["server_side_copy"] is False
    assert caps["presign"] is False
    await store.put(b"12345", key="k")
    stats = await store.statistics()
    assert stats["capacity"]["used"] == HEADER_SIZE + 5 + 16
    assert stats["encrypt"]["algorithm"] == "AES_GCM_256"


async def test_config_file_names_the_inner_store(tmp_path: Path, key: str) -> None:
    config = tmp_path / "asyncstore.toml"
    config.write_text(
        """
[stores.base]
module = "memory"

[stores.secure]
module = "encrypt"
inner = "base"
key = "${TEST_MASTER_KEY}"
"""
    )
    async with open_store("secure", config=config, environ={"TEST_MASTER_KEY": key}) as store:
        assert isinstance(store, EncryptionModule)
        assert store.name == "secure"
        assert store.inner.name == "base"
        await store.put(b"through the config", key="k")
        assert await read(store, "k") == b"through the config"
        assert b"through" not in await read(store.inner, "k")


async def test_inner_store_by_url(key: str) -> None:
    async with open_store("encrypt://", inner="memory://", key=key) as store:
        await store.put(b"abc", key="k")
        assert await store.get_size("k") == 3


def test_missing_extra_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(sys.modules):
        if name.startswith("cryptography"):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "cryptography", None)  # type: ignore[arg-type]
    with pytest.raises(ImportError, match=r"asyncstore\[crypto\]"):
        EncryptionModule(inner=MemoryModule(), key="aa" * 32)
