"""The encrypt middleware: AES-256-GCM in authenticated chunks with envelope keys.

Every object gets a fresh random 256-bit data key, wrapped (AES-256-GCM) by the configured
master key; the plaintext is cut into 64 KiB chunks, each sealed on its own, so ranged reads
and seeks decrypt only the chunks they touch.

Stored form (format 1), one inner object per object::

    header   88 bytes  magic "ASE" 0x01 | key id (8) | object id (16) | wrap nonce (12)
                       | wrapped data key (32 + 16 tag)
    chunk i  n + 16    AES-GCM(data key, nonce = i as 12 bytes big-endian, chunk,
                       aad = magic | object id | i (8 bytes) | final flag (1))

The wrapped key's associated data is magic | key id | object id | the handle, so moving an
object to another handle is detected; a chunk's associated data binds its index, its object
and whether it is the last one, so reordering, truncation, extension and swapping chunks
between objects are detected. Every chunk but the last holds exactly 64 KiB, so the plaintext
size follows from the stored size alone (no read needed), and nonces are never reused because
every data key encrypts one object only. The key id is the first 8 bytes of a SHA-256 of the
master key, so old objects name the key they need after a new one is added.
"""

from __future__ import annotations

import os
import struct
from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import anyio.lowlevel

# Imported at run time: the registry reads the constructor's annotations to convert options.
from asyncstore.context import ModuleContext
from asyncstore.errors import IntegrityError
from asyncstore.info import ObjectInfo
from asyncstore.middleware._base import (
    WrapperModule,
    read_exactly,
    rechunk,
    require_extra,
    resolve_inner,
)
from asyncstore.middleware._keyring import KEY_ID_SIZE, key_id, load_keyring
from asyncstore.module import StorageModule
from asyncstore.streams import ByteSource, ReadStream, check_range

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM


__all__ = ["CHUNK_SIZE", "HEADER_SIZE", "EncryptionModule", "key_id", "plaintext_size"]

MAGIC = b"ASE\x01"
CHUNK_SIZE = 64 * 1024
"""Plaintext bytes per chunk (format 1)."""
TAG_SIZE = 16
RECORD_SIZE = CHUNK_SIZE + TAG_SIZE
_KEY_ID_SIZE = KEY_ID_SIZE
_OBJECT_ID_SIZE = 16
_NONCE_SIZE = 12
_WRAPPED_SIZE = 32 + TAG_SIZE
HEADER_SIZE = len(MAGIC) + _KEY_ID_SIZE + _OBJECT_ID_SIZE + _NONCE_SIZE + _WRAPPED_SIZE
"""Bytes of the header in front of every stored object."""
_BATCH_CHUNKS = 16  # how many chunks one inner read may fetch for a large sequential read


def plaintext_size(stored_size: int) -> int:
    """Return the plaintext size of an object stored in ``stored_size`` bytes.

    Raises:
        ValueError: If no object of format 1 can have that stored size.
    """
    body = stored_size - HEADER_SIZE
    if body < TAG_SIZE:
        raise ValueError("too short for an encrypted object")
    chunks = -(-body // RECORD_SIZE)
    last = body - (chunks - 1) * RECORD_SIZE
    if last <= TAG_SIZE and chunks > 1:
        raise ValueError("the last chunk is empty or cut")
    return body - chunks * TAG_SIZE


def _stored_size(plain: int) -> int:
    chunks = max(1, -(-plain // CHUNK_SIZE))
    return HEADER_SIZE + plain + chunks * TAG_SIZE


def _chunk_aad(object_id: bytes, index: int, final: bool) -> bytes:
    return MAGIC + object_id + struct.pack(">QB", index, final)


def _nonce(index: int) -> bytes:
    return index.to_bytes(_NONCE_SIZE, "big")


class EncryptionModule(WrapperModule):
    """Encrypts objects with AES-256-GCM in authenticated 64 KiB chunks before storing them.

    Each object has its own random data key, wrapped by the master key and stored in the
    object's header with the master key's id, so master keys can be rotated: put the new key
    in ``key`` and the previous ones in ``old_keys``; old objects stay readable. Tampering
    with, truncating, extending, reordering or swapping stored bytes raises `IntegrityError`
    when the affected chunk is read. Ranged reads decrypt only the chunks they touch, and
    `get_size` and `stat` compute the plaintext size from the stored size. Metadata and content
    type are stored unencrypted, as given. Needs ``pip install 'asyncstore[crypto]'``.

    Args:
        inner: The store that keeps the ciphertext: a store name or URL (or a module).
        key: The master key: 32 bytes as hex or base64 text (``hex:``/``base64:`` prefixes
            allowed); use ``${ENV_VAR}`` in a config file.
        key_file: A file holding the master key (32 raw bytes, or hex or base64 text).
        old_keys: Previous master keys, still used to read objects they protect: a list, or
            one string of comma-separated keys.
    """

    LAYER: ClassVar[str] = "encrypt"
    CAPABILITIES: ClassVar[Mapping[str, Any]] = {"cdmi_encryption": ["AES_GCM_256"]}

    def __init__(
        self,
        *,
        inner: str | StorageModule,
        key: str | None = None,
        key_file: str | None = None,
        old_keys: str | list[str] | None = None,
        context: ModuleContext | None = None,
    ) -> None:
        aead = require_extra(
            "cryptography.hazmat.primitives.ciphers.aead",
            extra="crypto",
            feature="the encrypt module",
        )
        self._aesgcm: type[AESGCM] = aead.AESGCM
        self._invalid_tag: type[Exception] = require_extra(
            "cryptography.exceptions", extra="crypto", feature="the encrypt module"
        ).InvalidTag
        self._keyring = load_keyring(key=key, key_file=key_file, old_keys=old_keys)
        super().__init__(resolve_inner(inner, context))

    # ---- writing -------------------------------------------------------------------------

    async def assign(
        self,
        handle: str,
        source: ByteSource,
        *,
        metadata: Mapping[str, str] | None = None,
        content_type: str | None = None,
    ) -> None:
        """Encrypt the bytes of ``source`` and store them under ``handle`` in one inner write."""
        meta, ctype = self._check_write(handle, metadata, content_type)
        await self._inner.assign(
            handle, self._encrypt(handle, source), metadata=meta, content_type=ctype
        )

    async def _encrypt(self, handle: str, source: ByteSource) -> AsyncIterator[bytes]:
        kid = self._keyring.current_id
        master = self._keyring.get(kid)
        assert master is not None
        data_key = self._aesgcm.generate_key(bit_length=256)
        object_id = os.urandom(_OBJECT_ID_SIZE)
        wrap_nonce = os.urandom(_NONCE_SIZE)
        wrapped = self._aesgcm(master).encrypt(
            wrap_nonce, data_key, MAGIC + kid + object_id + handle.encode()
        )
        yield MAGIC + kid + object_id + wrap_nonce + wrapped
        aead = self._aesgcm(data_key)
        index = 0
        async for chunk, final in rechunk(source, CHUNK_SIZE):
            yield aead.encrypt(_nonce(index), chunk, _chunk_aad(object_id, index, final))
            index += 1
            if index % 16 == 0:
                await anyio.lowlevel.checkpoint()  # let other tasks run during big puts

    # ---- reading -------------------------------------------------------------------------

    def _plaintext_size(self, stored: int, handle: str) -> int:
        try:
            return plaintext_size(stored)
        except ValueError as exc:
            raise IntegrityError(
                f"the stored object is not an encrypted object ({exc}: {stored} bytes)",
                store=self.name,
                handle=handle,
            ) from None

    async def _outer_info(self, info: ObjectInfo) -> ObjectInfo:
        return self._with_size(info, self._plaintext_size(info.size, info.handle))

    async def get_read_stream(
        self, handle: str, *, start: int = 0, end: int | None = None
    ) -> ReadStream:
        """Open a stream of the plaintext in ``[start, end)``; only touched chunks are read.

        Raises:
            NotFoundError: If no object exists for ``handle``.
            IntegrityError: If the header fails authentication (tampering, another handle's
                object, or a master key this module was not given).
        """
        check_range(start, end, store=self.name)
        self._check_handle(handle)
        inner = await self._inner.get_read_stream(handle)
        try:
            inner_info = inner.info
            size = self._plaintext_size(inner_info.size, handle)
            header = await read_exactly(inner, 0, HEADER_SIZE, store=self.name, handle=handle)
            aead, object_id = self._open_header(handle, header)
        except BaseException:
            await inner.aclose()
            raise
        info = self._with_size(inner_info, size)
        return _DecryptingStream(
            info,
            inner,
            aead,
            object_id,
            invalid_tag=self._invalid_tag,
            store=self.name,
            start=start,
            end=end,
        )

    def _open_header(self, handle: str, header: bytes) -> tuple[AESGCM, bytes]:
        magic = header[: len(MAGIC)]
        if magic != MAGIC:
            raise IntegrityError(
                "the stored object is not an encrypted object (bad magic)",
                store=self.name,
                handle=handle,
            )
        offset = len(MAGIC)
        kid = header[offset : offset + _KEY_ID_SIZE]
        offset += _KEY_ID_SIZE
        object_id = header[offset : offset + _OBJECT_ID_SIZE]
        offset += _OBJECT_ID_SIZE
        wrap_nonce = header[offset : offset + _NONCE_SIZE]
        wrapped = header[offset + _NONCE_SIZE :]
        master = self._keyring.get(kid)
        if master is None:
            raise IntegrityError(
                f"the object was encrypted with a master key this store was not given "
                f"(key id {kid.hex()}); add that key to 'old_keys'",
                store=self.name,
                handle=handle,
            )
        try:
            data_key = self._aesgcm(master).decrypt(
                wrap_nonce, wrapped, MAGIC + kid + object_id + handle.encode()
            )
        except self._invalid_tag:
            raise IntegrityError(
                "the object's key failed authentication: the header was altered or the object "
                "was moved from another handle",
                store=self.name,
                handle=handle,
            ) from None
        return self._aesgcm(data_key), object_id

    # ---- description ---------------------------------------------------------------------

    def capabilities(self) -> dict[str, Any]:
        """Return the inner module's capabilities with ``cdmi_encryption`` set to AES-GCM-256."""
        effective = super().capabilities()
        effective["cdmi_encryption"] = ["AES_GCM_256"]
        limit = effective.get("max_object_size")
        if isinstance(limit, int):
            effective["max_object_size"] = max(0, plaintext_size(max(limit, _stored_size(0))))
        return effective

    def _layer_statistics(self) -> dict[str, Any]:
        return {
            "algorithm": "AES_GCM_256",
            "chunk_size": CHUNK_SIZE,
            "key_id": self._keyring.current_id.hex(),
            "master_keys": len(self._keyring),
        }


class _DecryptingStream(ReadStream):
    """Decrypts the chunks a read touches, fetching them from one inner stream."""

    def __init__(
        self,
        info: ObjectInfo,
        inner: ReadStream,
        aead: AESGCM,
        object_id: bytes,
        *,
        invalid_tag: type[Exception],
        store: str,
        start: int,
        end: int | None,
    ) -> None:
        super().__init__(info, start=start, end=end)
        self._inner = inner
        self._aead = aead
        self._object_id = object_id
        self._store = store
        self._invalid_tag = invalid_tag
        self._chunks = max(1, -(-info.size // CHUNK_SIZE))
        self._cached_index = -1
        self._cached = b""

    async def _read_at(self, offset: int, max_bytes: int) -> bytes:
        first = offset // CHUNK_SIZE
        if first == self._cached_index:
            start = offset - first * CHUNK_SIZE
            return self._cached[start : start + max_bytes]
        last = min((offset + max_bytes - 1) // CHUNK_SIZE, first + _BATCH_CHUNKS - 1)
        last = min(last, self._chunks - 1)
        stored_start = HEADER_SIZE + first * RECORD_SIZE
        stored_end = min(HEADER_SIZE + (last + 1) * RECORD_SIZE, self._inner.info.size)
        sealed = await read_exactly(
            self._inner,
            stored_start,
            stored_end - stored_start,
            store=self._store,
            handle=self.info.handle,
        )
        view = memoryview(sealed)
        plain: list[bytes] = []
        for index in range(first, last + 1):
            at = (index - first) * RECORD_SIZE
            plain.append(self._open(index, view[at : at + RECORD_SIZE]))
        self._cached_index, self._cached = last, plain[-1]
        data = plain[0] if len(plain) == 1 else b"".join(plain)
        skip = offset - first * CHUNK_SIZE
        if skip == 0 and len(data) <= max_bytes:
            return data  # the common case of reading in order: no copy
        return data[skip : skip + max_bytes]

    def _open(self, index: int, record: memoryview) -> bytes:
        final = index == self._chunks - 1
        try:
            return self._aead.decrypt(
                _nonce(index), record, _chunk_aad(self._object_id, index, final)
            )
        except self._invalid_tag:
            raise IntegrityError(
                f"chunk {index} failed authentication (altered, reordered, truncated, "
                "extended or from another object)",
                store=self._store,
                handle=self.info.handle,
            ) from None

    async def _close(self) -> None:
        await self._inner.aclose()
