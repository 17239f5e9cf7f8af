"""Master keys of the encrypt middleware: parsing them from options, and the keyring.

A master key is 32 bytes given as hex or base64 text (``hex:``/``base64:`` prefixes allowed),
or read from a key file (32 raw bytes, or the same text). Its id, recorded with every object
it protects, is the first 8 bytes of a SHA-256 of the key: it identifies the key without
revealing it. Error messages say what is wrong with a key, never what was given.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Sequence
from pathlib import Path

from asyncstore.errors import ConfigError

__all__ = ["KEY_ID_SIZE", "Keyring", "key_id", "load_keyring"]

KEY_ID_SIZE = 8
"""Bytes of a key id."""
_HEX_KEY = re.compile(r"[0-9a-fA-F]{64}")


def key_id(key: bytes) -> bytes:
    """Return the 8-byte id recorded with objects a master key protects (a hash, not the key)."""
    return hashlib.sha256(b"asyncstore-encrypt key id\x00" + key).digest()[:KEY_ID_SIZE]


def _decode_key(text: str | bytes, what: str) -> bytes:
    """Decode a master key given as hex or base64 text (or 32 raw bytes from a key file)."""
    if isinstance(text, bytes):
        if len(text) == 32:
            return text
        decoded = _ascii(text)
        if decoded is None:
            raise ConfigError(f"{what} is neither 32 raw bytes nor hex or base64 text")
        text = decoded
    value = text.strip()
    # Never echo the value: error messages say what is wrong, not what was given.
    for prefix, decoder in (("hex:", bytes.fromhex), ("base64:", _b64)):
        if value.startswith(prefix):
            try:
                key = decoder(value[len(prefix) :])
            except (ValueError, binascii.Error):
                raise ConfigError(f"{what} is not valid {prefix[:-1]}") from None
            break
    else:
        if _HEX_KEY.fullmatch(value):
            key = bytes.fromhex(value)
        else:
            try:
                key = _b64(value)
            except (ValueError, binascii.Error):
                raise ConfigError(f"{what} must be 32 bytes as hex or base64 text") from None
    if len(key) != 32:
        raise ConfigError(f"{what} must be 32 bytes (AES-256); it decodes to {len(key)}")
    return key


def _ascii(data: bytes) -> str | None:
    # The decoding error holds the bytes (a key): it must not become an error's context.
    try:
        return data.decode("ascii")
    except UnicodeDecodeError:
        return None


def _b64(text: str) -> bytes:
    text = text.replace("-", "+").replace("_", "/")
    return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)


class Keyring:
    """The master keys: the current one for writing, and every one for reading."""

    __slots__ = ("_current", "_keys")

    def __init__(self, current: bytes, old: Sequence[bytes]) -> None:
        self._current = key_id(current)
        self._keys = {key_id(key): key for key in (*old, current)}

    @property
    def current_id(self) -> bytes:
        return self._current

    def get(self, kid: bytes) -> bytes | None:
        return self._keys.get(kid)

    def __len__(self) -> int:
        return len(self._keys)

    def __repr__(self) -> str:
        return f"<keyring current={self._current.hex()} keys={len(self._keys)}>"


def load_keyring(
    *, key: str | None, key_file: str | None, old_keys: str | list[str] | None
) -> Keyring:
    """Build the keyring from the encrypt module's options.

    Raises:
        ConfigError: If not exactly one of ``key`` and ``key_file`` is given, the key file
            cannot be read, or a key is malformed.
    """
    if (key is None) == (key_file is None):
        raise ConfigError("the encrypt module needs exactly one of 'key' and 'key_file'")
    if key_file is not None:
        try:
            master = _decode_key(Path(key_file).read_bytes(), "the key file's key")
        except OSError as exc:
            raise ConfigError(f"cannot read key_file {key_file!r}: {exc.strerror}") from None
    else:
        assert key is not None
        master = _decode_key(key, "the 'key' option")
    if old_keys is None:
        old_texts: list[str] = []
    elif isinstance(old_keys, str):
        old_texts = [part for part in old_keys.split(",") if part.strip()]
    else:
        old_texts = list(old_keys)
    old = [_decode_key(text, f"old_keys[{i}]") for i, text in enumerate(old_texts)]
    return Keyring(master, old)
