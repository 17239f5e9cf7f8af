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

from .helpers import CountingModule, in_pieces, new_key, read

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


# ---- reading paths --------------------------------------------------------------------------


def reference_seal(master: bytes, handle: str, data: bytes) -> bytes:
    """Build a stored object from the documented format alone (independently of the module)."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    kid, object_id, wrap_nonce = key_id(master), os.urandom(16), os.urandom(12)
    data_key = AESGCM.generate_key(bit_length=256)
    magic = b"ASE\x01"
    wrapped = AESGCM(master).encrypt(
        wrap_nonce, data_key, magic + kid + object_id + handle.encode()
    )
    aead = AESGCM(data_key)
    chunks = [data[at : at + CHUNK_SIZE] for at in range(0, len(data), CHUNK_SIZE)] or [b""]
    sealed = [
        aead.encrypt(
            i.to_bytes(12, "big"),
            chunk,
            magic + object_id + i.to_bytes(8, "big") + bytes([i == len(chunks) - 1]),
        )
        for i, chunk in enumerate(chunks)
    ]
    return magic + kid + object_id + wrap_nonce + wrapped + b"".join(sealed)


def reference_open(master: bytes, handle: str, stored: bytes) -> bytes:
    """Decrypt a stored object following the documented format alone."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    magic, kid, object_id = stored[:4], stored[4:12], stored[12:28]
    wrap_nonce, wrapped = stored[28:40], stored[40:HEADER_SIZE]
    assert magic == b"ASE\x01" and kid == key_id(master)
    aead = AESGCM(
        AESGCM(master).decrypt(wrap_nonce, wrapped, magic + kid + object_id + handle.encode())
    )
    body = stored[HEADER_SIZE:]
    records = [body[at : at + RECORD] for at in range(0, len(body), RECORD)]
    return b"".join(
        aead.decrypt(
            i.to_bytes(12, "big"),
            record,
            magic + object_id + i.to_bytes(8, "big") + bytes([i == len(records) - 1]),
        )
        for i, record in enumerate(records)
    )


@pytest.mark.parametrize("size", [0, 5, CHUNK_SIZE, 3 * CHUNK_SIZE + 17])
async def test_stored_form_is_the_documented_format(
    store: EncryptionModule, inner: CountingModule, key: str, size: int
) -> None:
    master = base64.b64decode(key)
    data = data_of(size, seed=3)
    await store.put(data, key="written")
    assert reference_open(master, "written", inner.raw("written")) == data
    # An object sealed by the reference (what any earlier writer of format 1 produced) reads
    # back through every reading path.
    await inner.put(reference_seal(master, "sealed", data), key="sealed")
    assert await read(store, "sealed") == data
    async with await store.get_read_stream("sealed") as stream:
        assert b"".join([chunk async for chunk in stream]) == data
    assert (
        await read(store, "sealed", start=size // 3, end=size // 3 + 5000)
        == (data[size // 3 : size // 3 + 5000])
    )


@pytest.mark.parametrize("piece", [1000, 4093, CHUNK_SIZE - 1, CHUNK_SIZE, CHUNK_SIZE + 1, 200_000])
@pytest.mark.parametrize("start", [0, 7, CHUNK_SIZE - 3, 2 * CHUNK_SIZE])
async def test_readinto_and_read_in_pieces(store: EncryptionModule, start: int, piece: int) -> None:
    data = data_of(5 * CHUNK_SIZE + 123, seed=5)
    await store.put(data, key="obj")
    async with await store.get_read_stream("obj") as stream:
        await stream.seek(start)
        got = bytearray()
        buffer = bytearray(piece)
        while count := await stream.readinto(buffer):
            got += buffer[:count]
        assert got == data[start:]
        await stream.seek(start)
        parts = []
        while part := await stream.read(piece):
            assert len(part) <= piece
            parts.append(part)
        assert b"".join(parts) == data[start:]
    # A read of up to one chunk is answered in full, even across a chunk boundary.
    async with await store.get_read_stream("obj", start=start) as stream:
        first = await stream.read(min(piece, CHUNK_SIZE))
        assert first == data[start : start + min(piece, CHUNK_SIZE)]


async def test_a_sequential_read_fetches_every_stored_byte_once(
    store: EncryptionModule, inner: CountingModule
) -> None:
    data = data_of(40 * CHUNK_SIZE + 5, seed=7)
    await store.put(data, key="big")
    for size in (None, 1000, CHUNK_SIZE, 1 << 20):
        inner.bytes_read = inner.reads = 0
        async with await store.get_read_stream("big") as stream:
            if size is None:
                got = b"".join([chunk async for chunk in stream])
            else:
                parts = []
                while part := await stream.read(size):
                    parts.append(part)
                got = b"".join(parts)
        assert got == data
        assert inner.bytes_read == len(inner.raw("big"))
        # The header, the chunks the first read touches, then 16 chunks per inner read.
        assert inner.reads <= 2 + -(-40 // 16)


async def test_a_failed_readinto_leaves_no_unauthenticated_plaintext(
    store: EncryptionModule, inner: CountingModule
) -> None:
    data = data_of(3 * CHUNK_SIZE, seed=9)
    await store.put(data, key="obj")
    raw = bytearray(inner.raw("obj"))
    raw[HEADER_SIZE + RECORD + 100] ^= 0x01  # a ciphertext byte of chunk 1, not its tag
    await inner.poke("obj", bytes(raw))
    async with await store.get_read_stream("obj") as stream:
        await stream.seek(CHUNK_SIZE)
        buffer = bytearray(CHUNK_SIZE)  # exactly chunk 1: decrypted in place when supported
        with pytest.raises(IntegrityError, match="chunk 1"):
            await stream.readinto(buffer)
    assert buffer == bytes(CHUNK_SIZE)


class _PlainAESGCM:
    """AESGCM as cryptography releases before ``encrypt_into``/``decrypt_into`` offer it."""

    def __init__(self, key: bytes) -> None:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        self._aead = AESGCM(key)

    @staticmethod
    def generate_key(bit_length: int) -> bytes:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        return AESGCM.generate_key(bit_length)

    def encrypt(self, nonce: bytes, data: bytes, associated_data: bytes) -> bytes:
        return self._aead.encrypt(nonce, data, associated_data)

    def decrypt(self, nonce: bytes, data: bytes, associated_data: bytes) -> bytes:
        return self._aead.decrypt(nonce, data, associated_data)


async def test_older_cryptography_without_the_into_methods(inner: CountingModule, key: str) -> None:
    module = EncryptionModule(inner=inner, key=key)
    module._aesgcm = _PlainAESGCM  # type: ignore[assignment]
    data = data_of(3 * CHUNK_SIZE + 5, seed=11)
    await module.put(data, key="obj")
    assert reference_open(base64.b64decode(key), "obj", inner.raw("obj")) == data
    assert await read(module, "obj") == data
    assert (
        await read(module, "obj", start=CHUNK_SIZE - 5, end=2 * CHUNK_SIZE + 9)
        == (data[CHUNK_SIZE - 5 : 2 * CHUNK_SIZE + 9])
    )
    raw = bytearray(inner.raw("obj"))
    raw[HEADER_SIZE + 2 * RECORD + 1] ^= 0x01
    await inner.poke("obj", bytes(raw))
    async with await module.get_read_stream("obj") as stream:
        await stream.seek(2 * CHUNK_SIZE)
        buffer = bytearray(CHUNK_SIZE)
        with pytest.raises(IntegrityError, match="chunk 2"):
            await stream.readinto(buffer)
    assert buffer == bytes(CHUNK_SIZE)


async def test_small_reads_that_meet_at_a_chunk_boundary_do_not_read_ahead(
    store: EncryptionModule, inner: CountingModule
) -> None:
    # As another layer's lookups do (compress reading two index entries): not reading in order.
    data = data_of(40 * CHUNK_SIZE, seed=13)
    await store.put(data, key="big")
    inner.bytes_read = 0
    async with await store.get_read_stream("big") as stream:
        await stream.seek(20 * CHUNK_SIZE - 8)
        assert await stream.read(8) == data[20 * CHUNK_SIZE - 8 : 20 * CHUNK_SIZE]
        assert await stream.read(8) == data[20 * CHUNK_SIZE : 20 * CHUNK_SIZE + 8]
    assert inner.bytes_read == HEADER_SIZE + 2 * RECORD


@pytest.mark.parametrize(
    "pieces",
    [
        [1, 1000, CHUNK_SIZE - 1001],  # pieces adding up to exactly one chunk
        [CHUNK_SIZE - 1, 2, CHUNK_SIZE - 1],
        [3 * CHUNK_SIZE],  # one piece of whole chunks: the last is held back, then final
        [2 * CHUNK_SIZE + 5, CHUNK_SIZE - 5, 7],
        [CHUNK_SIZE, CHUNK_SIZE, 0, CHUNK_SIZE],
        [5, 0, 0],
    ],
    ids=lambda pieces: "+".join(map(str, pieces)),
)
async def test_sources_cut_anyhow_are_sealed_in_whole_chunks(
    store: EncryptionModule, inner: CountingModule, key: str, pieces: list[int]
) -> None:
    data = data_of(sum(pieces), seed=17)

    await store.put(in_pieces(data, pieces), key="obj")
    # The reference checks every chunk's size (by the record boundaries) and final flag.
    assert reference_open(base64.b64decode(key), "obj", inner.raw("obj")) == data
    assert await read(store, "obj") == data
