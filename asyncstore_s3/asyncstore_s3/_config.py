"""The options of an S3 store, checked once, and what they turn into for botocore."""

from __future__ import annotations

import base64
import hashlib
import platform
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import aiobotocore
import botocore
from aiobotocore.config import AioConfig

from asyncstore.errors import ConfigError
from asyncstore.keys import validate_prefix
from asyncstore_s3._version import __version__

__all__ = [
    "ENGINES",
    "MAX_PARTS",
    "MAX_PART_SIZE",
    "MIN_PART_SIZE",
    "S3Options",
    "check_endpoint_url",
    "options_from_url",
]

MiB = 1 << 20
MIN_PART_SIZE = 5 * MiB
"""S3's smallest part (every part but the last)."""
MAX_PART_SIZE = 5 << 30
"""S3's largest part, and its largest single PUT or CopyObject."""
MAX_PARTS = 10_000
"""S3's most parts in one multipart upload."""

_ADDRESSING = ("auto", "path", "virtual")
_RETRY_MODES = ("standard", "adaptive", "legacy")
_CHECKSUMS = ("crc32", "md5", "none")
_SSE = ("AES256", "aws:kms", "aws:kms:dsse")
ENGINES = ("aws", "seaweedfs", "moto")
"""The S3 engines whose differences from AWS S3 a store knows (see `S3Options.engine`)."""
# Options that `reconfigure` may change on a live store: the credentials and where they come
# from. Everything else shapes requests already in flight, so it is fixed for the instance.
_USER_AGENT = (
    f"asyncstore-s3/{__version__} aiobotocore/{aiobotocore.__version__} "
    f"botocore/{botocore.__version__} Python/{platform.python_version()}"
)
RECONFIGURABLE = ("access_key_id", "secret_access_key", "session_token", "profile")


@dataclass(frozen=True)
class S3Options:
    """The checked options of one S3 store; secrets are left out of the repr."""

    bucket: str
    """The bucket holding the objects."""
    prefix: str = ""
    """A key prefix ending in ``/`` (or empty) under which the store keeps its objects."""
    region: str | None = None
    """The region; None asks botocore's chain (environment, profile)."""
    endpoint_url: str | None = None
    """The endpoint of an S3-compatible service; None for AWS."""
    addressing_style: str = "auto"
    """``auto``, ``path`` or ``virtual`` bucket addressing."""
    profile: str | None = None
    """A named profile of the shared AWS configuration files."""
    access_key_id: str | None = None
    """An explicit access key id; None uses botocore's credential chain."""
    secret_access_key: str | None = field(default=None, repr=False)
    """The secret key matching ``access_key_id``."""
    session_token: str | None = field(default=None, repr=False)
    """A session token for temporary credentials."""
    server_side_encryption: str | None = None
    """``AES256`` (SSE-S3), ``aws:kms`` or ``aws:kms:dsse`` (SSE-KMS), or None."""
    sse_kms_key_id: str | None = None
    """The KMS key for SSE-KMS; None uses the bucket's default key."""
    sse_customer_key: str | None = field(default=None, repr=False)
    """A base64 encoded 256-bit key for SSE-C."""
    retry_mode: str = "standard"
    """botocore's retry mode: ``standard``, ``adaptive`` or ``legacy``."""
    max_attempts: int = 5
    """How many times a request is tried in all before `TransientError`."""
    connect_timeout: float = 10.0
    """Seconds to wait for a connection."""
    read_timeout: float = 60.0
    """Seconds to wait for data on an open connection."""
    write_timeout: float = 30.0
    """Seconds a write waits for the server's first byte once its request is sent."""
    max_pool_connections: int = 64
    """The most connections kept open to the endpoint."""
    part_size: int = 8 * MiB
    """The first part size of multipart uploads (it grows so 10,000 parts hold 5 TiB)."""
    upload_concurrency: int = 4
    """How many parts of one upload are sent at once (memory: this times the part size)."""
    checksum: str = "crc32"
    """``crc32`` (x-amz-checksum-crc32), ``md5`` (Content-MD5) or ``none`` on uploads."""
    sign_payload: bool | None = None
    """Whether SigV4 signs each body's SHA-256; None: only over plain HTTP or without checksum."""
    verify_tls: bool = True
    """Whether TLS certificates are verified."""
    ca_bundle: str | None = None
    """A CA bundle file to verify TLS certificates with."""
    engine: str = "aws"
    """The S3 engine behind the endpoint: ``aws`` (AWS S3 semantics), ``seaweedfs`` or ``moto``."""

    def __post_init__(self) -> None:
        if not isinstance(self.bucket, str) or not self.bucket:
            raise ConfigError("bucket must be a non-empty str")
        prefix = self.prefix
        if prefix and not prefix.endswith("/"):
            object.__setattr__(self, "prefix", prefix + "/")
        validate_prefix(self.prefix)
        _choice("addressing_style", self.addressing_style, _ADDRESSING)
        _choice("retry_mode", self.retry_mode, _RETRY_MODES)
        _choice("checksum", self.checksum, _CHECKSUMS)
        _choice("engine", self.engine, ENGINES)
        if self.endpoint_url is not None:
            check_endpoint_url(self.endpoint_url)
        if self.server_side_encryption is not None:
            _choice("server_side_encryption", self.server_side_encryption, _SSE)
            if self.sse_customer_key is not None:
                raise ConfigError("server_side_encryption and sse_customer_key exclude each other")
        if self.sse_kms_key_id is not None and not (self.server_side_encryption or "").startswith(
            "aws:kms"
        ):
            raise ConfigError("sse_kms_key_id needs server_side_encryption='aws:kms'")
        if self.sse_customer_key is not None:
            try:
                key = base64.b64decode(self.sse_customer_key, validate=True)
            except ValueError:
                key = b""
            if len(key) != 32:
                # Never echo the value: it is a secret.
                raise ConfigError("sse_customer_key must be a base64 encoded 256-bit key")
        if (self.access_key_id is None) != (self.secret_access_key is None):
            raise ConfigError("access_key_id and secret_access_key go together")
        _positive("max_attempts", self.max_attempts, int)
        _positive("connect_timeout", self.connect_timeout, (int, float))
        _positive("read_timeout", self.read_timeout, (int, float))
        _positive("write_timeout", self.write_timeout, (int, float))
        _positive("max_pool_connections", self.max_pool_connections, int)
        _positive("upload_concurrency", self.upload_concurrency, int)
        _positive("part_size", self.part_size, int)
        if not MIN_PART_SIZE <= self.part_size <= MAX_PART_SIZE:
            raise ConfigError(
                f"part_size must be between {MIN_PART_SIZE} and {MAX_PART_SIZE} bytes, "
                f"not {self.part_size}"
            )

    def client_kwargs(self) -> dict[str, Any]:
        """Return the keyword arguments of ``AioSession.create_client("s3", ...)``."""
        region = self.region
        if region is None and self.endpoint_url is not None:
            # S3-compatible services ignore the region but SigV4 needs one.
            region = "us-east-1"
        config = AioConfig(
            region_name=region,
            retries={"mode": self.retry_mode, "total_max_attempts": self.max_attempts},
            connect_timeout=self.connect_timeout,
            read_timeout=self.read_timeout,
            max_pool_connections=self.max_pool_connections,
            # SigV4 for presigned URLs too (botocore presigns S3 with SigV2 otherwise, which
            # signs the Content-Type: a URL then fails for a client that sends one).
            signature_version="s3v4",
            s3={
                "addressing_style": self.addressing_style,
                "payload_signing_enabled": self.signs_payload(),
            },
            # We compute each upload checksum once while streaming and pass it ourselves, and
            # check whole reads ourselves (see _events.ask_for_the_checksum).
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            # A fixed user agent skips botocore's per-request rebuild of it, and our callers'
            # parameters are checked before any I/O, so botocore's second check is dropped.
            user_agent=_USER_AGENT,
            parameter_validation=False,
        )
        kwargs: dict[str, Any] = {"config": config, "region_name": region}
        if self.ca_bundle is not None:
            kwargs["verify"] = self.ca_bundle
        elif not self.verify_tls:
            kwargs["verify"] = False
        if self.endpoint_url is not None:
            kwargs["endpoint_url"] = self.endpoint_url
        if self.access_key_id is not None:
            kwargs["aws_access_key_id"] = self.access_key_id
            kwargs["aws_secret_access_key"] = self.secret_access_key
            if self.session_token is not None:
                kwargs["aws_session_token"] = self.session_token
        return kwargs

    def signs_payload(self) -> bool:
        """Return whether SigV4 signs the SHA-256 of request bodies.

        Each PUT and part carries our checksum, which S3 verifies; over TLS that protects the
        bytes as well as the SHA-256 would, for a fraction of the CPU (botocore's own rule, which
        does not see a checksum passed as a parameter). Over plain HTTP, or without a checksum,
        the body is signed unless ``sign_payload`` says otherwise.
        """
        if self.sign_payload is not None:
            return self.sign_payload
        https = self.endpoint_url is None or self.endpoint_url.lower().startswith("https:")
        return not https or self.checksum == "none"

    def write_params(self) -> dict[str, Any]:
        """Return the encryption parameters of PutObject and CreateMultipartUpload."""
        params = self.sse_customer_params()
        if self.server_side_encryption is not None:
            params["ServerSideEncryption"] = self.server_side_encryption
            if self.sse_kms_key_id is not None:
                params["SSEKMSKeyId"] = self.sse_kms_key_id
        return params

    def sse_customer_params(self, *, source: bool = False) -> dict[str, Any]:
        """Return the SSE-C parameters every request on an object needs (none without SSE-C).

        Args:
            source: Name them for the source of a copy (``CopySourceSSECustomer…``).
        """
        if self.sse_customer_key is None:
            return {}
        key = base64.b64decode(self.sse_customer_key)
        digest = base64.b64encode(hashlib.md5(key, usedforsecurity=False).digest()).decode()
        prefix = "CopySourceSSECustomer" if source else "SSECustomer"
        # With the MD5 given, botocore sends the key as we pass it: already base64 encoded.
        return {
            f"{prefix}Algorithm": "AES256",
            f"{prefix}Key": base64.b64encode(key).decode(),
            f"{prefix}KeyMD5": digest,
        }

    def encryption_names(self) -> list[str]:
        """Return the CDMI names of the encryption the store asks S3 for."""
        if self.server_side_encryption is not None or self.sse_customer_key is not None:
            return ["AES_256"]
        return []


def _choice(name: str, value: object, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(f"{name} must be one of {', '.join(allowed)}, not {value!r}")


def _positive(name: str, value: object, kind: type | tuple[type, ...]) -> None:
    if isinstance(value, bool) or not isinstance(value, kind) or value <= 0:  # type: ignore[operator]
        raise ConfigError(f"{name} must be a positive number, not {value!r}")


_URL_FORM = "s3://bucket/prefix?endpoint_url=http://host:port (a key goes before the '?')"


def check_endpoint_url(url: object) -> None:
    """Check that ``url`` can be the base URL of an S3 service: ``scheme://host[:port]``.

    A path, query or fragment is refused: an S3 endpoint is the root of its host, and a path
    there is most often an object key placed after the query of an ``s3://`` URL, which would
    otherwise surface later as a missing bucket.

    Raises:
        ConfigError: Naming what is wrong and the expected form.
    """
    if not isinstance(url, str):
        raise ConfigError(f"endpoint_url must be a str such as http://host:port, not {url!r}")
    parts = urlsplit(url)
    problem = None
    if parts.scheme.lower() not in ("http", "https"):
        problem = "it must start with http:// or https://"
    elif not parts.hostname:
        problem = "it names no host"
    elif parts.username is not None or parts.password is not None:
        problem = "credentials do not belong in it (use access_key_id and secret_access_key)"
    elif parts.path not in ("", "/"):
        problem = f"it has a path ({parts.path!r}); an endpoint is scheme://host[:port]"
    elif parts.query or parts.fragment or url.endswith(("?", "#")):
        problem = "it has a query or fragment; an endpoint is scheme://host[:port]"
    else:
        try:
            parts.port  # noqa: B018 - raises ValueError for a port out of range
        except ValueError:
            problem = "its port is not a number from 0 to 65535"
    if problem is not None:
        # Only the scheme and host are shown: whatever follows may be a mistyped secret.
        shown = f"{parts.scheme}://{parts.hostname}" if parts.hostname else "the value given"
        raise ConfigError(
            f"endpoint_url {shown}... cannot be an S3 endpoint: {problem}. "
            f"Expected form: {_URL_FORM}"
        )


def options_from_url(url: str) -> dict[str, Any]:
    """Turn ``s3://bucket/prefix?option=value`` into constructor options (values as text).

    Raises:
        ConfigError: If the URL names no bucket.
    """
    parts = urlsplit(url)
    if not parts.netloc:
        raise ConfigError(f"an s3:// URL names a bucket: s3://bucket/prefix, not {url!r}")
    options: dict[str, Any] = dict(parse_qsl(parts.query, keep_blank_values=True))
    options["bucket"] = unquote(parts.netloc)
    prefix = unquote(parts.path).lstrip("/")
    if prefix:
        options["prefix"] = prefix
    return options
