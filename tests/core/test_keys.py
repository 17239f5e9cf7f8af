import pytest

from asyncstore.errors import InvalidKeyError, InvalidMetadataError
from asyncstore.keys import (
    validate_content_type,
    validate_key,
    validate_metadata,
    validate_prefix,
)
from asyncstore.testing import INVALID_KEYS


@pytest.mark.parametrize(
    "key",
    ["a", "a/b/c.txt", "ünïcode/☃", "with space/and+plus", "x" * 1024, "é" * 512, "...", "a/.b"],
)
def test_valid_keys_pass_unchanged(key: str) -> None:
    assert validate_key(key) == key


@pytest.mark.parametrize("key", INVALID_KEYS, ids=lambda k: repr(k)[:24])
def test_invalid_keys_raise(key: object) -> None:
    with pytest.raises(InvalidKeyError):
        validate_key(key)


def test_error_names_the_rule_and_the_store() -> None:
    with pytest.raises(InvalidKeyError, match=r"'\.\.' segment") as caught:
        validate_key("a/../b", store="local")
    assert caught.value.store == "local"
    assert "store 'local'" in str(caught.value)


def test_too_long_key_reports_its_length() -> None:
    with pytest.raises(InvalidKeyError, match="1025 bytes"):
        validate_key("k" * 1025)


def test_nul_key_error_does_not_echo_the_nul() -> None:
    with pytest.raises(InvalidKeyError) as caught:
        validate_key("a\x00b")
    assert "\x00" not in str(caught.value).replace("'\\x00'", "")


@pytest.mark.parametrize("prefix", ["", "a", "a/", "a/b", "a/..x", "a/."])
def test_valid_prefixes(prefix: str) -> None:
    assert validate_prefix(prefix) == prefix


@pytest.mark.parametrize("prefix", ["/a", "a//", "../", "a/../b", "x\ny", 5])
def test_invalid_prefixes(prefix: object) -> None:
    with pytest.raises(InvalidKeyError):
        validate_prefix(prefix)


def test_metadata_rules() -> None:
    assert validate_metadata(None) == {}
    assert validate_metadata({"a-b.c_d": "printable value!"}) == {"a-b.c_d": "printable value!"}
    for bad in ({"A": "x"}, {"a": "é"}, {"a": 1}, {"a" * 129: "x"}, {"a": "x" * 2048}):
        with pytest.raises(InvalidMetadataError):
            validate_metadata(bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidMetadataError):
        validate_metadata([("a", "b")])  # type: ignore[arg-type]


def test_content_type_rules() -> None:
    assert validate_content_type(None) is None
    assert validate_content_type("text/plain; charset=utf-8") == "text/plain; charset=utf-8"
    for bad in ("text", "text/plain\r\nX: y", "", "a b/c"):
        with pytest.raises(InvalidMetadataError):
            validate_content_type(bad)


def test_metadata_values_keep_no_surrounding_spaces() -> None:
    assert validate_metadata({"k": "a  b"}) == {"k": "a  b"}
    for bad in (" a", "a ", " "):
        with pytest.raises(InvalidMetadataError, match="leading or trailing spaces"):
            validate_metadata({"k": bad})
