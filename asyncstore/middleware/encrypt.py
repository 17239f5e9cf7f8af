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
    RangeReader,
    WrapperModule,
    chunk_runs,
    read_exactly,
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
_BATCH_CHUNKS = 16  # chunks fetched per inner read of a get
_CHECKPOINT_CHUNKS = 64  # chunks sealed between two chances for other tasks to run (4 MiB)
_AAD_TAIL = struct.Struct(">QB")  # a chunk's index and final flag, after magic | object id
_AAD_AT = len(MAGIC) + _OBJECT_ID_SIZE


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
        overwrite: bool = True,
        if_match: str | None = None,
    ) -> str | None:
        """Encrypt the bytes of ``source`` and store them under ``handle`` in one inner write.

        Conditions are decided by the inner module; return its etag.
        """
        meta, ctype = self._check_write(handle, metadata, content_type, overwrite, if_match)
        return await self._inner.assign(
            handle,
            self._encrypt(handle, source),
            metadata=meta,
            content_type=ctype,
            overwrite=overwrite,
            if_match=if_match,
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
        aad = bytearray(MAGIC + object_id + bytes(_AAD_TAIL.size))
        index = 0
        # Each chunk is handed on as the cipher made it: sealing several into one new buffer
        # costs more (allocating it) than the steps it would save.
        async for run, final in chunk_runs(source, CHUNK_SIZE):
            size = len(run)
            for at in range(0, size or 1, CHUNK_SIZE):  # an empty source is one empty chunk
                _AAD_TAIL.pack_into(aad, _AAD_AT, index, final and at + CHUNK_SIZE >= size)
                yield aead.encrypt(_nonce(index), run[at : at + CHUNK_SIZE], aad)
                index += 1
                if index % _CHECKPOINT_CHUNKS == 0:
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
        self, handle: str, *, start: int = 0, end: int | None = None, if_match: str | None = None
    ) -> ReadStream:
        """Open a stream of the plaintext in ``[start, end)``; only touched chunks are read.

        Raises:
            NotFoundError: If no object exists for ``handle``.
            IntegrityError: If the header fails authentication (tampering, another handle's
                object, or a master key this module was not given).
            PreconditionFailedError: If ``if_match`` is not the stored object's etag.
        """
        check_range(start, end, store=self.name)
        self._check_handle(handle)
        self._check_read_condition(if_match)
        inner = await self._inner.get_read_stream(handle, if_match=if_match)
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
    """Decrypts the chunks a read touches, fetching them from one inner stream.

    The sealed chunks of one inner read (up to 16) are kept in a reused buffer and opened one
    at a time, as they are asked for. A read of whole chunks gets them decrypted straight into
    the caller's buffer (`readinto`) or as the cipher's own result (`read`), with no copy; the
    last chunk opened is kept for the small reads that follow.
    """

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
        self._reader = RangeReader(inner, store=store, handle=info.handle)
        self._aead = aead
        self._decrypt_into = getattr(aead, "decrypt_into", None)  # newer cryptography only
        self._aad = bytearray(MAGIC + object_id + bytes(_AAD_TAIL.size))
        self._store = store
        self._invalid_tag = invalid_tag
        self._chunks = max(1, -(-info.size // CHUNK_SIZE))
        self._stream_last = max(0, (self._offset + self._size - 1) // CHUNK_SIZE)
        self._sealed = memoryview(b"")
        self._sealed_first = 0
        self._sealed_count = 0
        self._sealed_entry = -1  # the first byte the read that fetched them wanted
        self._plain_index = -1
        self._plain = b""

    def _plain_length(self, index: int) -> int:
        return min(CHUNK_SIZE, self.info.size - index * CHUNK_SIZE)

    async def _record(self, index: int, last: int, offset: int) -> memoryview:
        """Return the sealed record of chunk ``index``, reading ``index..last`` if not held.

        ``offset`` is the byte the read wants first. When it is where the previous inner
        read ended, and that one was entered at its first byte, the stream is being read in
        order: then up to 16 chunks are read ahead, never past the stream's range, so small
        sequential reads still make large inner reads (while small reads that merely meet,
        such as another layer's index lookups, do not).
        """
        at = index - self._sealed_first
        if not 0 <= at < self._sealed_count:
            start = self._sealed_first * CHUNK_SIZE
            if self._sealed_entry == start and offset == start + self._sealed_count * CHUNK_SIZE:
                last = self._stream_last
            last = min(last, index + _BATCH_CHUNKS - 1, self._chunks - 1)
            stored_start = HEADER_SIZE + index * RECORD_SIZE
            stored_end = min(HEADER_SIZE + (last + 1) * RECORD_SIZE, self._inner.info.size)
            self._sealed, self._sealed_count = memoryview(b""), 0  # in case the read fails
            self._sealed = await self._reader.read(stored_start, stored_end - stored_start)
            self._sealed_first, self._sealed_count = index, last - index + 1
            self._sealed_entry = offset
            at = 0
        return self._sealed[at * RECORD_SIZE : (at + 1) * RECORD_SIZE]

    def _last_wanted(self, offset: int, count: int) -> int:
        """The last chunk of ``count`` bytes at ``offset``, clipped to the stream's range."""
        stop = min(offset + count, self._offset + self._size)
        return (stop - 1) // CHUNK_SIZE

    async def _read_at(self, offset: int, max_bytes: int) -> bytes:
        index, skip = divmod(offset, CHUNK_SIZE)
        if index == self._plain_index:
            return self._plain[skip : skip + max_bytes]
        at = index - self._sealed_first
        if skip or max_bytes < CHUNK_SIZE or not 0 <= at < self._sealed_count:
            return await self._fetch_and_read(index, skip, max_bytes)
        # Reading in order: the next whole chunk, already fetched. Larger reads get one chunk
        # per call (a short read), as the cipher made it: joining would copy it once more.
        self._plain = self._open(index, self._sealed[at * RECORD_SIZE : (at + 1) * RECORD_SIZE])
        self._plain_index = index
        return self._plain

    async def _fetch_and_read(self, index: int, skip: int, max_bytes: int) -> bytes:
        offset = index * CHUNK_SIZE + skip
        length = self._plain_length(index)
        if skip + max_bytes > length and max_bytes <= CHUNK_SIZE:
            # A small read across a chunk boundary is answered in full.
            parts = bytearray(max_bytes)
            got = await self._readinto_at(offset, memoryview(parts))
            return bytes(parts) if got == max_bytes else bytes(parts[:got])
        record = await self._record(index, self._last_wanted(offset, max_bytes), offset)
        self._plain = self._open(index, record)
        self._plain_index = index
        return self._plain[skip : skip + max_bytes]

    async def _readinto_at(self, offset: int, buffer: memoryview) -> int:
        filled = 0
        wanted = len(buffer)
        last = self._last_wanted(offset, wanted)
        while filled < wanted:
            index, skip = divmod(offset + filled, CHUNK_SIZE)
            if index >= self._chunks:
                break
            length = self._plain_length(index)
            if index != self._plain_index:
                record = await self._record(index, last, offset + filled)
                if skip == 0 and wanted - filled >= length:
                    self._open_into(index, record, buffer[filled : filled + length])
                    filled += length
                    continue
                self._plain = self._open(index, record)
                self._plain_index = index
            piece = self._plain[skip : skip + wanted - filled]
            buffer[filled : filled + len(piece)] = piece
            filled += len(piece)
        return filled

    def _open(self, index: int, record: memoryview) -> bytes:
        aad = self._aad
        _AAD_TAIL.pack_into(aad, _AAD_AT, index, index == self._chunks - 1)
        try:
            return self._aead.decrypt(_nonce(index), record, aad)
        except self._invalid_tag:
            raise self._failed(index) from None

    def _open_into(self, index: int, record: memoryview, out: memoryview) -> None:
        """Decrypt a whole chunk into ``out``; on failure, nothing unauthenticated stays there."""
        if self._decrypt_into is None:
            out[:] = self._open(index, record)
            return
        aad = self._aad
        _AAD_TAIL.pack_into(aad, _AAD_AT, index, index == self._chunks - 1)
        try:
            self._decrypt_into(_nonce(index), record, aad, out)
        except self._invalid_tag:
            out[:] = bytes(len(out))  # the cipher wrote plaintext before it checked the tag
            raise self._failed(index) from None

    def _failed(self, index: int) -> IntegrityError:
        return IntegrityError(
            f"chunk {index} failed authentication (altered, reordered, truncated, "
            "extended or from another object)",
            store=self._store,
            handle=self.info.handle,
        )

    async def _close(self) -> None:
        self._sealed = memoryview(b"")
        await self._inner.aclose()
