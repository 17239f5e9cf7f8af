"""Options and what they turn into for botocore (no server needed)."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

import asyncstore
from asyncstore.errors import ConfigError
from asyncstore_s3 import S3Options
from asyncstore_s3._client import parse_timestamp


def test_prefix_gets_a_trailing_slash() -> None:
    assert S3Options(bucket="b", prefix="a/b").prefix == "a/b/"
    assert S3Options(bucket="b", prefix="").prefix == ""


@pytest.mark.parametrize(
    ("endpoint", "checksum", "sign_payload", "expected"),
    [
        (None, "crc32", None, False),  # AWS over TLS: our checksum protects the body
        ("https://minio:9000", "md5", None, False),
        ("http://127.0.0.1:9000", "crc32", None, True),  # plain HTTP: signed by default
        ("https://minio:9000", "none", None, True),  # no checksum: signed
        ("http://127.0.0.1:9000", "crc32", False, False),
        ("https://minio:9000", "crc32", True, True),
    ],
)
def test_payload_signing(
    endpoint: str | None, checksum: str, sign_payload: bool | None, expected: bool
) -> None:
    options = S3Options(
        bucket="b", endpoint_url=endpoint, checksum=checksum, sign_payload=sign_payload
    )
    assert options.signs_payload() is expected
    config = options.client_kwargs()["config"]
    assert config.s3["payload_signing_enabled"] is expected


def test_client_kwargs() -> None:
    options = S3Options(
        bucket="b",
        endpoint_url="http://127.0.0.1:9000",
        access_key_id="id",
        secret_access_key="secret",
        max_attempts=2,
        verify_tls=False,
    )
    kwargs = options.client_kwargs()
    assert kwargs["region_name"] == "us-east-1"
    assert kwargs["verify"] is False
    config = kwargs["config"]
    assert config.retries == {"mode": "standard", "total_max_attempts": 2}
    assert config.user_agent.startswith("asyncstore-s3/")
    assert config.request_checksum_calculation == "when_required"
    assert config.response_checksum_validation == "when_required"  # the store checks reads
    bundle = S3Options(bucket="b", ca_bundle="/etc/ca.pem").client_kwargs()
    assert bundle["verify"] == "/etc/ca.pem"
    assert "verify" not in S3Options(bucket="b").client_kwargs()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Tue, 24 Nov 2026 18:23:11 GMT", datetime(2026, 11, 24, 18, 23, 11, tzinfo=timezone.utc)),
        ("2026-11-24T18:23:11.000Z", datetime(2026, 11, 24, 18, 23, 11, tzinfo=timezone.utc)),
        (
            "2026-11-24T18:23:11.123456Z",
            datetime(2026, 11, 24, 18, 23, 11, 123456, tzinfo=timezone.utc),
        ),
        ("1700000000", datetime(2023, 11, 14, 22, 13, 20, tzinfo=timezone.utc)),
        ("2026-11-24T18:23:11+02:00", datetime(2026, 11, 24, 16, 23, 11, tzinfo=timezone.utc)),
    ],
)
def test_parse_timestamp(text: str, expected: datetime) -> None:
    assert parse_timestamp(text) == expected


@pytest.mark.parametrize(
    ("endpoint", "problem"),
    [
        ("http://127.0.0.1:9000//docs/notes.txt", "has a path ('//docs/notes.txt')"),
        ("http://127.0.0.1:9000/docs/notes.txt", "has a path"),
        ("http://127.0.0.1:9000?region=x", "query or fragment"),
        ("http://127.0.0.1:9000#x", "query or fragment"),
        ("127.0.0.1:9000", "http:// or https://"),
        ("ftp://127.0.0.1", "http:// or https://"),
        ("http://", "names no host"),
        ("http://127.0.0.1:99999", "port"),
        ("http://user:hunter2@127.0.0.1:9000", "credentials do not belong"),
    ],
)
def test_an_endpoint_url_that_cannot_be_one_is_refused(endpoint: str, problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        S3Options(bucket="b", endpoint_url=endpoint)
    message = str(caught.value)
    assert problem in message
    assert "s3://bucket/prefix?endpoint_url=http://host:port" in message  # the expected form
    assert "hunter2" not in message


@pytest.mark.parametrize(
    "endpoint", ["http://127.0.0.1:9000", "https://s3.example.com/", "HTTPS://[::1]:8333"]
)
def test_endpoint_urls_that_are_accepted(endpoint: str) -> None:
    assert S3Options(bucket="b", endpoint_url=endpoint).endpoint_url == endpoint


def test_a_key_placed_after_the_query_of_a_url_is_refused() -> None:
    # The key meant for URL//KEY lands in endpoint_url; the server would then say the
    # bucket does not exist.
    with pytest.raises(ConfigError, match=r"has a path \('//docs/notes.txt'\)"):
        asyncstore.open_store("s3://bucket/app?endpoint_url=http://127.0.0.1:9000//docs/notes.txt")


def test_engine_and_write_timeout_options() -> None:
    assert S3Options(bucket="b").engine == "aws"
    assert S3Options(bucket="b", engine="seaweedfs").engine == "seaweedfs"
    with pytest.raises(ConfigError, match="engine must be one of aws, seaweedfs"):
        S3Options(bucket="b", engine="minio")
    assert S3Options(bucket="b").write_timeout == 30.0
    with pytest.raises(ConfigError, match="write_timeout"):
        S3Options(bucket="b", write_timeout=0)


def test_presigned_urls_are_sigv4() -> None:
    # botocore presigns S3 URLs with SigV2 unless told otherwise.
    assert S3Options(bucket="b").client_kwargs()["config"].signature_version == "s3v4"
