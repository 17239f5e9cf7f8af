"""Options and what they turn into for botocore (no server needed)."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

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
