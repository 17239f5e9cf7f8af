"""Secrets: credentials and keys never show in logs, reprs, error messages or CLI output.

What counts as secret here: S3 secret access keys (the right one and a wrong one), an S3
session token, an SSE-C customer key, encrypt master keys (current, previous, wrong and
malformed ones; as given and as the hex and base64 forms of their bytes) and a password given
to a memory store. Not secret: the S3 access key id (it names the credential, and AWS sends
it in every request's Authorization header by design, so botocore's request logs show it)
and an encrypt key id (8 bytes of a hash of the key).

Every logger logs at DEBUG (the root and, explicitly, botocore, aiobotocore, aiohttp,
urllib3 and asyncstore's own) into a handler that keeps each record's formatted message, its
arguments and its exception text. Every error raised is checked with its whole chain
(``__cause__`` and ``__context__``) and its formatted traceback; every module, options,
config and store object with its repr and str; every CLI command (``--debug`` included)
with its stdout and stderr. S3 runs against its own moto server with authentication on, so a
wrong secret is really refused.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import re
import secrets
import subprocess
import sys
import traceback
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest

import asyncstore
from asyncstore.config import Config
from asyncstore.errors import (
    ConfigError,
    IntegrityError,
    NotFoundError,
    PermissionDeniedError,
    StorageError,
)
from asyncstore_s3 import S3Module
from tests.reliability.harness import Figures
from tests.s3server import Endpoint, moto_server

pytestmark = pytest.mark.anyio

SECTION = "Secrets"
LOGGERS = ("", "botocore", "aiobotocore", "aiohttp", "urllib3", "asyncio", "asyncstore")
"""The root logger and the ones set to DEBUG explicitly (in case a library set a level)."""


# ---- the audit ------------------------------------------------------------------------------


def forms(value: str | bytes) -> set[str]:
    """Return the text forms a secret may take: as given, and hex and base64 of key bytes."""
    if isinstance(value, str):
        return {value}
    encoded = base64.b64encode(value).decode()
    urlsafe = base64.urlsafe_b64encode(value).decode()
    return {
        value.hex(),
        value.hex().upper(),
        encoded,
        encoded.rstrip("="),
        urlsafe,
        urlsafe.rstrip("="),
        repr(value)[2:-1],
    }


@dataclass
class Audit:
    """The secrets of one part, the places looked at, and what leaked where."""

    part: str
    secrets: dict[str, set[str]] = field(default_factory=dict, repr=False)
    places: int = 0
    leaks: list[str] = field(default_factory=list)

    def assert_clean(self) -> None:
        """Fail, listing each distinct leak once, if anything leaked."""
        assert self.places > 0
        if self.leaks:
            pytest.fail("secrets leaked:\n" + "\n".join(sorted(set(self.leaks))))

    def secret(self, name: str, value: str | bytes) -> str | bytes:
        """Register a secret (all its forms) and return it."""
        found = forms(value)
        assert all(len(form) >= 12 for form in found), f"{name} is too short to search for"
        self.secrets[name] = found
        return value

    def text(self, place: str, text: str) -> None:
        """Check one piece of text."""
        self.places += 1
        for name, found in self.secrets.items():
            if any(form in text for form in found):
                self.leaks.append(f"{name} in {place}")

    def obj(self, place: str, value: object) -> None:
        """Check an object's repr and str."""
        self.text(f"repr({place})", repr(value))
        self.text(f"str({place})", str(value))

    def error(self, place: str, exc: BaseException) -> None:
        """Check an error, every error it chains to, and its formatted traceback."""
        seen: set[int] = set()
        current: BaseException | None = exc
        depth = 0
        while current is not None and id(current) not in seen:
            seen.add(id(current))
            self.obj(f"{place} error {depth} ({type(current).__name__})", current)
            self.text(f"{place} error {depth} args", repr(current.args))
            current = current.__cause__ or current.__context__
            depth += 1
        self.text(f"{place} traceback", "".join(traceback.format_exception(exc)))

    def records(self, place: str, records: list[Captured]) -> None:
        """Check captured log records."""
        assert records, f"no log records were captured at {place}"
        for record in records:
            self.text(f"{place} log {record.logger}", record.message)
            self.text(f"{place} log {record.logger} args", record.args)
            if record.exception:
                self.text(f"{place} log {record.logger} exception", record.exception)

    def cli(self, place: str, result: subprocess.CompletedProcess[str]) -> None:
        """Check a command's standard output and error."""
        self.text(f"{place} stdout", result.stdout)
        self.text(f"{place} stderr", result.stderr)


@dataclass(frozen=True)
class Captured:
    """A log record, formatted when it was emitted."""

    logger: str
    message: str
    args: str
    exception: str


class Capture(logging.Handler):
    """Keeps every record's formatted message, arguments and exception text."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[Captured] = []

    def emit(self, record: logging.LogRecord) -> None:
        exception = ""
        if record.exc_info:
            exception = "".join(traceback.format_exception(*record.exc_info))
        self.records.append(
            Captured(record.name, record.getMessage(), repr(record.args), exception)
        )

    def take(self) -> list[Captured]:
        taken, self.records = self.records, []
        return taken


@pytest.fixture
def debug_logs() -> Iterator[Capture]:
    """Every logger at DEBUG into one capturing handler."""
    capture = Capture()
    loggers = [logging.getLogger(name) for name in LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.DEBUG)
    root = logging.getLogger()
    root.addHandler(capture)
    try:
        yield capture
    finally:
        root.removeHandler(capture)
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


@pytest.fixture(scope="module")
def audits(figures: Figures) -> Iterator[dict[str, Audit]]:
    """The audits of this module's tests, recorded as figures at the end."""
    collected: dict[str, Audit] = {}
    yield collected
    for audit in collected.values():
        figures.add(
            SECTION,
            part=audit.part,
            secrets=len(audit.secrets),
            places_checked=audit.places,
            leaks=len(audit.leaks),
        )


def new_audit(audits: dict[str, Audit], part: str) -> Audit:
    audit = audits[part] = Audit(part)
    return audit


async def raises(audit: Audit, place: str, expected: type[BaseException], call: Any) -> None:
    """Await ``call()``, which must raise ``expected``, and check the error."""
    with pytest.raises(expected) as caught:
        await call()
    audit.error(place, caught.value)


def check_raises(audit: Audit, place: str, expected: type[BaseException], call: Any) -> None:
    """Call ``call()``, which must raise ``expected``, and check the error."""
    with pytest.raises(expected) as caught:
        call()
    audit.error(place, caught.value)


# ---- an S3 server that checks signatures ------------------------------------------------------


@dataclass(frozen=True)
class AuthS3:
    url: str
    access_key_id: str
    secret_access_key: str
    bucket: str
    region: str = "us-east-1"


@pytest.fixture(scope="module")
def auth_s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthS3]:
    """A moto server of its own with an IAM user allowed s3:*, then authentication switched on."""
    with moto_server(tmp_path_factory.mktemp("moto-auth"), "setup", "setup") as url:
        setup = {
            "endpoint_url": url,
            "aws_access_key_id": "setup",
            "aws_secret_access_key": "setup",
            "region_name": "us-east-1",
        }
        iam = boto3.client("iam", **setup)
        iam.create_user(UserName="app")
        key = iam.create_access_key(UserName="app")["AccessKey"]
        policy = {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}],
        }
        iam.put_user_policy(UserName="app", PolicyName="s3", PolicyDocument=json.dumps(policy))
        bucket = f"secrets-{uuid.uuid4().hex[:16]}"
        boto3.client("s3", **setup).create_bucket(Bucket=bucket)
        # From here on every request must be signed by a known IAM user's secret.
        request = urllib.request.Request(
            url + "/moto-api/reset-auth",
            data=b"0",
            method="POST",
            headers={"Content-Type": "text/plain"},
        )
        with urllib.request.urlopen(request, timeout=10):
            pass
        yield AuthS3(url, key["AccessKeyId"], key["SecretAccessKey"], bucket)


def test_the_auth_server_refuses_a_wrong_secret(auth_s3: AuthS3) -> None:
    client = boto3.client(
        "s3",
        endpoint_url=auth_s3.url,
        aws_access_key_id=auth_s3.access_key_id,
        aws_secret_access_key="0" * 40,
        region_name=auth_s3.region,
    )
    with pytest.raises(client.exceptions.ClientError) as caught:
        client.list_objects_v2(Bucket=auth_s3.bucket)
    assert caught.value.response["Error"]["Code"] == "SignatureDoesNotMatch"


# ---- the parts --------------------------------------------------------------------------------


@dataclass
class Setup:
    """A config file with S3, encrypt and memory stores, and the environment it expands from."""

    path: Path
    env: dict[str, str]
    master: bytes
    wrong_master: bytes


def write_setup(tmp_path: Path, auth_s3: AuthS3, audit: Audit) -> Setup:
    master = audit.secret("master key", os.urandom(32))
    old_master = audit.secret("previous master key", os.urandom(32))
    wrong_master = audit.secret("wrong master key", os.urandom(32))
    file_master = audit.secret("key-file master key", os.urandom(32))
    text_file_master = audit.secret("key-file master key (text)", os.urandom(32))
    assert isinstance(master, bytes) and isinstance(old_master, bytes)
    assert isinstance(wrong_master, bytes) and isinstance(file_master, bytes)
    assert isinstance(text_file_master, bytes)
    (tmp_path / "master.key").write_bytes(file_master)
    bad_file_master = audit.secret("malformed key-file key", os.urandom(31))
    assert isinstance(bad_file_master, bytes)
    (tmp_path / "bad.key").write_bytes(bad_file_master)
    (tmp_path / "master.txt").write_text(
        "base64:" + base64.b64encode(text_file_master).decode() + "\n"
    )
    env = {
        "T_KEY_ID": auth_s3.access_key_id,
        "T_SECRET": str(audit.secret("S3 secret access key", auth_s3.secret_access_key)),
        "T_WRONG_SECRET": str(audit.secret("wrong S3 secret", secrets.token_urlsafe(30))),
        "T_TOKEN": str(audit.secret("S3 session token", secrets.token_urlsafe(48))),
        "T_SSEC": str(audit.secret("SSE-C key", base64.b64encode(os.urandom(32)).decode())),
        "T_MASTER": master.hex(),
        "T_OLD_MASTER": base64.b64encode(old_master).decode(),
        "T_WRONG_MASTER": wrong_master.hex(),
        "T_PASSWORD": str(audit.secret("memory store password", secrets.token_urlsafe(18))),
    }
    # The SSE-C key is registered as text; its bytes' other forms are secret too.
    audit.secrets["SSE-C key"] |= forms(base64.b64decode(env["T_SSEC"]))
    s3 = (
        f'endpoint_url = "{auth_s3.url}"\nregion = "{auth_s3.region}"\n'
        'access_key_id = "${T_KEY_ID}"\nmax_attempts = 2\n'
    )
    bucket = f'bucket = "{auth_s3.bucket}"\n'
    config = f"""
[stores.cloud]
module = "s3"
{bucket}prefix = "plain/"
{s3}secret_access_key = "${{T_SECRET}}"

[stores.cloud-wrong]
module = "s3"
{bucket}{s3}secret_access_key = "${{T_WRONG_SECRET}}"

[stores.cloud-token]
module = "s3"
{bucket}{s3}secret_access_key = "${{T_SECRET}}"
session_token = "${{T_TOKEN}}"

[stores.cloud-missing]
module = "s3"
bucket = "no-such-bucket-{uuid.uuid4().hex[:8]}"
{s3}secret_access_key = "${{T_SECRET}}"

[stores.cloud-ssec]
module = "s3"
{bucket}prefix = "ssec/"
{s3}secret_access_key = "${{T_SECRET}}"
sse_customer_key = "${{T_SSEC}}"

[stores.blobs]
module = "fs"
root = "{tmp_path / "blobs"}"
fsync = false

[stores.secure]
module = "encrypt"
inner = "blobs"
key = "${{T_MASTER}}"
old_keys = "${{T_OLD_MASTER}}"

[stores.secure-wrong]
module = "encrypt"
inner = "blobs"
key = "${{T_WRONG_MASTER}}"

[stores.secure-file]
module = "encrypt"
inner = "blobs"
key_file = "{tmp_path / "master.key"}"

[stores.secure-bad-file]
module = "encrypt"
inner = "blobs"
key_file = "{tmp_path / "bad.key"}"

[stores.secure-text-file]
module = "encrypt"
inner = "blobs"
key_file = "{tmp_path / "master.txt"}"

[stores.cloud-encrypted]
module = "s3"
{bucket}prefix = "encrypted/"
{s3}secret_access_key = "${{T_SECRET}}"

[stores.secure-cloud]
module = "encrypt"
inner = "cloud-encrypted"
key = "${{T_MASTER}}"

[stores.vault]
module = "memory"
password = "${{T_PASSWORD}}"
"""
    path = tmp_path / "asyncstore.toml"
    path.write_text(config)
    return Setup(path, env, master, wrong_master)


async def exercise(audit: Audit, module: asyncstore.StorageModule, place: str) -> None:
    """Run every operation once on a working store, checking what it shows."""
    handle = await module.put(b"some bytes" * 100, key="docs/a.txt", metadata={"k": "v"})
    async with await module.get_read_stream(handle, start=3, end=40) as stream:
        assert await stream.read() == (b"some bytes" * 100)[3:40]
        audit.obj(f"{place} stream", stream)
    audit.obj(f"{place} info", await module.stat(handle))
    assert [info.handle async for info in module.list("docs/")] == ["docs/a.txt"]
    await module.copy(handle, key="docs/b.txt")
    audit.text(f"{place} statistics", json.dumps(await module.statistics(), default=str))
    audit.text(f"{place} capabilities", json.dumps(module.capabilities(), default=str))
    await raises(audit, f"{place} missing", NotFoundError, lambda: module.stat("docs/none"))
    await module.delete("docs/b.txt")
    audit.obj(place, module)


async def test_s3_credentials_stay_secret(
    tmp_path: Path, auth_s3: AuthS3, audits: dict[str, Audit], debug_logs: Capture
) -> None:
    audit = new_audit(audits, "S3 credentials")
    setup = write_setup(tmp_path, auth_s3, audit)
    config = Config.from_file(setup.path)
    audit.obj("config", config)
    for name, store in config.stores.items():
        audit.obj(f"store config {name}", store)

    def open_store(name: str, **options: Any) -> asyncstore.StorageModule:
        return asyncstore.open_store(name, config=config, environ=setup.env, **options)

    # Through the config file, ${ENV} expanded.
    async with open_store("cloud") as cloud:
        await exercise(audit, cloud, "cloud")
        assert isinstance(cloud, S3Module)
        audit.obj("cloud options", cloud.options)
        # Credentials rotation to a wrong secret is refused by the server, and back again.
        await cloud.reconfigure(secret_access_key=setup.env["T_WRONG_SECRET"])
        await raises(audit, "rotated", PermissionDeniedError, lambda: cloud.put(b"x", key="docs/c"))
        audit.obj("rotated options", cloud.options)
        await cloud.reconfigure(secret_access_key=setup.env["T_SECRET"])
        await cloud.put(b"x", key="docs/c")
    async with open_store("cloud-ssec") as ssec:
        await exercise(audit, ssec, "cloud-ssec")
    for name, expected in (
        ("cloud-wrong", PermissionDeniedError),
        ("cloud-token", PermissionDeniedError),
        ("cloud-missing", ConfigError),
    ):
        async with open_store(name) as failing:
            await raises(audit, name, expected, lambda m=failing: m.put(b"x", key="k"))
            await raises(audit, f"{name} read", StorageError, lambda m=failing: m.stat("k"))
            audit.obj(name, failing)
    # Direct options, in code and in a URL's query string.
    direct = {
        "bucket": auth_s3.bucket,
        "endpoint_url": auth_s3.url,
        "access_key_id": auth_s3.access_key_id,
        "secret_access_key": auth_s3.secret_access_key,
        "max_attempts": 2,
    }
    async with S3Module(**direct) as module:
        await exercise(audit, module, "direct")
    url = (
        f"s3://{auth_s3.bucket}?endpoint_url={auth_s3.url}&access_key_id={auth_s3.access_key_id}"
        f"&secret_access_key={setup.env['T_WRONG_SECRET']}&max_attempts=2"
    )
    async with open_store(url) as by_url:
        await raises(audit, "url", PermissionDeniedError, lambda: by_url.put(b"x", key="k"))
        audit.obj("url store", by_url)
    # Bad options fail before any I/O, without echoing what was given.
    check_raises(
        audit,
        "secret without key id",
        ConfigError,
        lambda: S3Module(bucket="b", secret_access_key=auth_s3.secret_access_key),
    )
    bad_ssec = audit.secret("malformed SSE-C key", base64.b64encode(os.urandom(31)).decode())
    check_raises(
        audit,
        "malformed SSE-C key",
        ConfigError,
        lambda: S3Module(**direct, sse_customer_key=bad_ssec),
    )
    check_raises(
        audit,
        "misspelt option",
        ConfigError,
        lambda: open_store("cloud", secret_key=setup.env["T_SECRET"]),
    )
    check_raises(
        audit,
        "unknown option in a URL",
        ConfigError,
        lambda: open_store(url + "&session=" + setup.env["T_TOKEN"]),
    )
    audit.records("S3", debug_logs.take())
    audit.assert_clean()


async def test_credentials_botocore_finds_itself_stay_secret(
    tmp_path: Path,
    s3_endpoint: Endpoint,
    bucket: str,
    audits: dict[str, Audit],
    debug_logs: Capture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # From the environment and from a shared credentials file: the backend never sees these
    # (and botocore refreshes a role's token), so the token is masked wherever botocore logs it.
    if s3_endpoint.checks_signatures:
        pytest.skip(
            f"made-up credentials only pass a server that checks none, not {s3_endpoint.name}"
        )
    audit = new_audit(audits, "S3 credentials from botocore's chain")
    env_secret = audit.secret("environment secret key", secrets.token_urlsafe(30))
    env_token = audit.secret("environment session token", secrets.token_urlsafe(120))
    file_secret = audit.secret("profile secret key", secrets.token_urlsafe(30))
    file_token = audit.secret("profile session token", secrets.token_urlsafe(120))
    credentials = tmp_path / "credentials"
    credentials.write_text(
        f"[app]\naws_access_key_id = {s3_endpoint.access_key_id}\n"
        f"aws_secret_access_key = {file_secret}\naws_session_token = {file_token}\n"
    )
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_endpoint.access_key_id)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", env_secret)
    monkeypatch.setenv("AWS_SESSION_TOKEN", env_token)
    options = {"bucket": bucket, "endpoint_url": s3_endpoint.url, "region": s3_endpoint.region}
    async with S3Module(**options) as module:
        await exercise(audit, module, "environment")
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name)
    async with S3Module(**options, profile="app") as module:
        await exercise(audit, module, "profile")
    records = debug_logs.take()
    # The tokens were sent (and logged, masked) with every request.
    assert sum("X-Amz-Security-Token': b'***'" in record.message for record in records) >= 16
    audit.records("S3 chain", records)
    audit.assert_clean()


async def test_assumed_role_credentials_stay_secret(
    tmp_path: Path,
    s3_endpoint: Endpoint,
    bucket: str,
    debug_logs: Capture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # botocore asks STS (moto's, at the same endpoint) for the role's credentials and logs
    # the answer at DEBUG: the secret key and the token in it are masked, as later in headers.
    if not s3_endpoint.sts:
        pytest.skip(
            f"the role is assumed through the server's STS, and {s3_endpoint.name} has none"
        )
    (tmp_path / "config").write_text(
        "[profile app]\nrole_arn = arn:aws:iam::123456789012:role/app\nsource_profile = base\n"
    )
    (tmp_path / "credentials").write_text(
        f"[base]\naws_access_key_id = {s3_endpoint.access_key_id}\n"
        f"aws_secret_access_key = {s3_endpoint.secret_access_key}\n"
    )
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", s3_endpoint.url)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    options = {"bucket": bucket, "endpoint_url": s3_endpoint.url, "region": s3_endpoint.region}
    async with S3Module(**options, profile="app") as module:
        await module.put(b"bytes", key="role")
        assert (await module.stat("role")).size == 5
    logged = "\n".join(record.message for record in debug_logs.take())
    assert "<SecretAccessKey>***</SecretAccessKey><SessionToken>***</SessionToken>" in logged
    assert "X-Amz-Security-Token': b'***'" in logged
    assert not re.search(r"<(SecretAccessKey|SessionToken)>(?!\*\*\*<)", logged)
    assert not re.search(r"(?i)x-amz-security-token(':\s*b'|[:=])(?!\*\*\*)", logged)


async def test_encryption_keys_stay_secret(
    tmp_path: Path, auth_s3: AuthS3, audits: dict[str, Audit], debug_logs: Capture
) -> None:
    audit = new_audit(audits, "encrypt keys")
    setup = write_setup(tmp_path, auth_s3, audit)
    config = Config.from_file(setup.path)

    def open_store(name: str, **options: Any) -> asyncstore.StorageModule:
        return asyncstore.open_store(name, config=config, environ=setup.env, **options)

    for name in ("secure", "secure-file", "secure-text-file", "secure-cloud"):
        async with open_store(name) as store:
            await exercise(audit, store, name)
            await store.put(b"kept", key=f"kept/{name}")
    # The wrong master key, and a tampered object, are detected without naming a key.
    async with open_store("secure-wrong") as wrong:
        await raises(
            audit, "wrong key", IntegrityError, lambda: wrong.get_read_stream("kept/secure")
        )
        audit.obj("secure-wrong", wrong)
    stored = tmp_path / "blobs" / "kept" / "secure"
    data = bytearray(stored.read_bytes())
    data[-1] ^= 1
    stored.write_bytes(bytes(data))

    async def read_tampered() -> bytes:
        async with open_store("secure") as store, await store.get_read_stream("kept/secure") as s:
            return await s.read()

    await raises(audit, "tampered", IntegrityError, read_tampered)
    # Malformed keys and key files are refused without echoing them.
    short = audit.secret("malformed master key", os.urandom(31))
    assert isinstance(short, bytes)
    for place, options in (
        ("short hex key", {"key": short.hex()}),
        ("short base64 key", {"key": base64.b64encode(short).decode()}),
        ("bad hex key", {"key": "hex:" + short.hex() + "zz"}),
        ("short old key", {"key": setup.master.hex(), "old_keys": short.hex()}),
        ("key and key file", {"key": setup.master.hex(), "key_file": str(tmp_path / "x")}),
        ("missing key file", {"key_file": str(tmp_path / "absent.key")}),
    ):
        check_raises(
            audit,
            place,
            ConfigError,
            lambda o=options: asyncstore.open_store(  # type: ignore[misc]
                "encrypt://?inner=memory://", **o
            ),
        )
    check_raises(audit, "short key file", ConfigError, lambda: open_store("secure-bad-file"))
    audit.records("encrypt", debug_logs.take())
    audit.assert_clean()


async def test_memory_password_stays_secret(
    tmp_path: Path, auth_s3: AuthS3, audits: dict[str, Audit], debug_logs: Capture
) -> None:
    audit = new_audit(audits, "memory password")
    setup = write_setup(tmp_path, auth_s3, audit)
    password = setup.env["T_PASSWORD"]
    config = Config.from_file(setup.path)
    audit.obj("vault config", config.store("vault"))
    audit.text("vault masked options", json.dumps(config.store("vault").masked_options()))
    check_raises(
        audit,
        "vault",
        ConfigError,
        lambda: asyncstore.open_store("vault", config=config, environ=setup.env),
    )
    check_raises(
        audit,
        "password in a URL",
        ConfigError,
        lambda: asyncstore.open_store(f"memory://?password={password}"),
    )
    check_raises(
        audit,
        "password in a URL's user info",
        ConfigError,
        lambda: asyncstore.open_store(f"memory://admin:{password}@host/"),
    )
    check_raises(
        audit,
        "password as an override",
        ConfigError,
        lambda: asyncstore.open_store("memory://", password=password),
    )
    async with asyncstore.open_store("memory://?max_bytes=64") as memory:
        await raises(
            audit, "full", StorageError, lambda: memory.put(password.encode() * 8, key="p")
        )
        audit.obj("memory", memory)
    logging.getLogger("asyncstore").debug("memory store checked")
    audit.records("memory", debug_logs.take())
    audit.assert_clean()


@pytest.mark.slow
def test_cli_output_keeps_secrets(
    tmp_path: Path, auth_s3: AuthS3, audits: dict[str, Audit]
) -> None:
    audit = new_audit(audits, "CLI")
    setup = write_setup(tmp_path, auth_s3, audit)
    script = str(Path(sys.executable).parent / "asyncstore")
    (tmp_path / "note.txt").write_text("a note")
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith("ASYNCSTORE_")},
        **setup.env,
        "COLUMNS": "200",
    }

    def cli(*args: str, status: int) -> None:
        result = subprocess.run(
            [script, "--config", str(setup.path), *args],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            env=environment,
            timeout=120,
        )
        assert result.returncode == status, (args, result.stdout[-2000:], result.stderr[-2000:])
        audit.cli(" ".join(args), result)

    url = (
        f"s3://{auth_s3.bucket}/notes/note.txt?endpoint_url={auth_s3.url}"
        f"&access_key_id={auth_s3.access_key_id}"
        f"&secret_access_key={setup.env['T_WRONG_SECRET']}&max_attempts=2"
    )
    cli("stores", status=0)
    cli("stats", "secure", status=0)
    cli("stats", "cloud-token", "--json", status=0)
    cli("caps", "cloud-ssec", "--json", status=0)
    cli("put", "note.txt", "secure:notes/", status=0)
    cli("cat", "secure:notes/note.txt", status=0)
    cli("put", "note.txt", "cloud-ssec:notes/", "--json", status=0)
    cli("ls", "-l", "cloud-ssec:notes/", status=0)
    cli("stat", "cloud-ssec:notes/note.txt", "--json", status=0)
    cli("cat", "secure:absent", status=1)
    cli("put", "note.txt", "cloud-missing:notes/", status=1)
    # Failures, plain and with --debug (which prints the traceback).
    for debug in ((), ("--debug",)):
        cli(*debug, "stores", "--json", status=0)
        cli(*debug, "cat", "secure-wrong:notes/note.txt", status=1)
        cli(*debug, "cat", "cloud-wrong:notes/note.txt", status=1)
        cli(*debug, "cat", "cloud-token:notes/note.txt", status=1)
        cli(*debug, "cat", url, status=1)
        cli(*debug, "stats", "vault", "--json", status=1)
        cli(*debug, "stats", "secure-bad-file", "--json", status=1)
    audit.assert_clean()


def test_the_audit_finds_leaks(debug_logs: Capture) -> None:
    """Each kind of place the audit looks at reports a secret hidden in it."""
    audit = Audit("self-check")
    key = os.urandom(32)
    audit.secret("key", key)
    audit.secret("password", "correct horse battery staple")
    logging.getLogger("botocore.test").debug("headers: %s", {"x": key.hex()})
    logging.getLogger("asyncstore").debug("no secret here")
    audit.records("logs", debug_logs.take())
    try:
        try:
            raise OSError("opening " + base64.urlsafe_b64encode(key).decode().rstrip("="))
        except OSError as inner:
            raise StorageError("failed") from inner
    except StorageError as outer:
        audit.error("chained", outer)
    audit.obj("object", {"password": "correct horse battery staple"})
    audit.text("bytes", repr(key))
    assert {
        "key in logs log botocore.test",
        "key in logs log botocore.test args",
        "key in str(chained error 1 (OSError))",
        "key in chained traceback",
        "password in repr(object)",
        "password in str(object)",
        "key in bytes",
    } <= set(audit.leaks), audit.leaks
    assert not [leak for leak in audit.leaks if "asyncstore" in leak or "error 0" in leak]
