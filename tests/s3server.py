"""S3 fixtures shared by every test directory: real S3 servers on loopback, a bucket per test.

Two servers run per session, each started on first use: moto's (a model of S3 that checks no
signatures) and SeaweedFS (a distributed object store, in one ``weed server`` process; see
`tests.seaweedfs`). ``s3_endpoint`` is parametrised over both, so every test that uses it runs
on each: select one with ``-k moto`` or ``-k seaweedfs``, or for the whole run with
``ASYNCSTORE_TEST_S3_SERVERS=moto`` (a comma-separated list).

Set ``ASYNCSTORE_TEST_S3_ENDPOINT`` (with ``ASYNCSTORE_TEST_S3_ACCESS_KEY_ID``,
``ASYNCSTORE_TEST_S3_SECRET_ACCESS_KEY`` and optionally ``ASYNCSTORE_TEST_S3_REGION``) to run
the same tests against another S3-compatible endpoint instead; each test then creates and
removes its own bucket there.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest

from asyncstore_s3 import S3Module
from tests import seaweedfs


@dataclass(frozen=True)
class Endpoint:
    """An S3 endpoint the tests run against, and the facts about it tests must not assume."""

    url: str
    access_key_id: str
    secret_access_key: str
    region: str
    name: str = "external"
    """``moto``, ``seaweedfs`` or ``external``."""
    options: dict[str, Any] = field(default_factory=dict)
    """S3Module options this server needs beyond the endpoint and credentials."""
    read_only: tuple[str, str] | None = None
    """The access key id and secret of a user who may only read and list, if there is one."""
    checks_signatures: bool = True
    """Whether requests with a wrong signature or unknown credentials are refused."""
    kms: bool = False
    """Whether the server offers SSE-KMS with keys created through `create_kms_key`."""
    sts: bool = False
    """Whether the server answers STS AssumeRole at its endpoint for any role."""

    def module_options(self) -> dict[str, Any]:
        return {
            "endpoint_url": self.url,
            "access_key_id": self.access_key_id,
            "secret_access_key": self.secret_access_key,
            "region": self.region,
            **self.options,
        }

    def create_kms_key(self) -> str:
        """Create a KMS key for SSE-KMS (moto serves KMS at its S3 endpoint too)."""
        assert self.kms, f"{self.name} offers no KMS"
        client = boto3.client(
            "kms",
            endpoint_url=self.url,
            aws_access_key_id=self.access_key_id,
            aws_secret_access_key=self.secret_access_key,
            region_name=self.region,
        )
        return str(client.create_key()["KeyMetadata"]["KeyId"])


def free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_until_ready(url: str, process: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the moto server exited with status {process.returncode}")
        try:
            with urllib.request.urlopen(url + "/moto-api/", timeout=2):
                return
        except urllib.error.HTTPError:
            return  # it answers: good enough
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"the moto server did not answer at {url} within {timeout} s")


@contextlib.contextmanager
def moto_server(log_dir: Path, access_key_id: str, secret_access_key: str) -> Iterator[str]:
    """Run a moto server process on a free loopback port; yield its URL, stop it at the end.

    The server is `tests.motoserver`: moto's own, deciding each object request in one step.

    Its output goes to ``server.log`` in ``log_dir``; the credentials are the environment's.
    """
    port = free_loopback_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": access_key_id,
        "AWS_SECRET_ACCESS_KEY": secret_access_key,
        "PYTHONPATH": os.pathsep.join(
            [str(Path(__file__).resolve().parents[1]), os.environ.get("PYTHONPATH", "")]
        ),
    }
    with open(log_dir / "server.log", "wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "tests.motoserver", "-H", "127.0.0.1", "-p", str(port)],
            stdout=output,
            stderr=subprocess.STDOUT,
            env=env,
        )
    try:
        _wait_until_ready(url, process)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _servers() -> list[str]:
    if os.environ.get("ASYNCSTORE_TEST_S3_ENDPOINT"):
        return ["external"]
    chosen = os.environ.get("ASYNCSTORE_TEST_S3_SERVERS", "moto,seaweedfs")
    return [name.strip() for name in chosen.split(",") if name.strip()]


SERVERS = _servers()
"""The S3 servers `s3_endpoint` runs each test against."""


@pytest.fixture(scope="session")
def moto_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Endpoint]:
    """moto's S3 server, in a process of its own (it accepts any credentials)."""
    with moto_server(tmp_path_factory.mktemp("moto"), "testing", "testing") as url:
        yield Endpoint(
            url,
            "testing",
            "testing",
            "us-east-1",
            name="moto",
            options={"engine": "moto"},
            checks_signatures=False,
            kms=True,
            sts=True,
        )


@pytest.fixture(scope="session")
def seaweedfs_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Endpoint]:
    """A SeaweedFS server (master, volume server, filer, S3 gateway in one process)."""
    with seaweedfs.seaweedfs_server(tmp_path_factory.mktemp("seaweedfs")) as server:
        yield seaweedfs_endpoint_of(server.url)


def seaweedfs_endpoint_of(url: str) -> Endpoint:
    """The `Endpoint` of a SeaweedFS S3 gateway started by `tests.seaweedfs`."""
    return Endpoint(
        url,
        *seaweedfs.READ_WRITE,
        "us-east-1",
        name="seaweedfs",
        options={"engine": "seaweedfs"},
        read_only=seaweedfs.READ_ONLY,
    )


@pytest.fixture(scope="session")
def external_endpoint() -> Endpoint:
    """The endpoint ASYNCSTORE_TEST_S3_ENDPOINT names."""
    return Endpoint(
        url=os.environ["ASYNCSTORE_TEST_S3_ENDPOINT"],
        access_key_id=os.environ.get("ASYNCSTORE_TEST_S3_ACCESS_KEY_ID", ""),
        secret_access_key=os.environ.get("ASYNCSTORE_TEST_S3_SECRET_ACCESS_KEY", ""),
        region=os.environ.get("ASYNCSTORE_TEST_S3_REGION", "us-east-1"),
    )


@pytest.fixture(scope="session", params=SERVERS)
def s3_endpoint(request: pytest.FixtureRequest) -> Endpoint:
    """The S3 endpoint of the test: each of `SERVERS` in turn."""
    endpoint: Endpoint = request.getfixturevalue(f"{request.param}_endpoint")
    return endpoint


@pytest.fixture(scope="session")
def boto3_client(s3_endpoint: Endpoint) -> Any:
    """A plain synchronous boto3 client of the endpoint (for setup and interop checks)."""
    return boto3.client(
        "s3",
        endpoint_url=s3_endpoint.url,
        aws_access_key_id=s3_endpoint.access_key_id,
        aws_secret_access_key=s3_endpoint.secret_access_key,
        region_name=s3_endpoint.region,
    )


def _empty(client: Any, bucket: str) -> bool:
    """Remove every object and upload from the bucket; return whether it is now empty."""
    try:
        uploads = client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
        for upload in uploads:
            client.abort_multipart_upload(
                Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"]
            )
        paginator = client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=bucket):
            keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
            if keys:
                client.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
        return client.list_objects_v2(Bucket=bucket).get(
            "KeyCount", 0
        ) == 0 and not client.list_multipart_uploads(Bucket=bucket).get("Uploads")
    except Exception:
        return False


def _empty_and_delete(client: Any, bucket: str) -> None:
    with contextlib.suppress(Exception):
        _empty(client, bucket)
        client.delete_bucket(Bucket=bucket)


_EMPTIED_BUCKETS: dict[str, list[str]] = {}
"""Emptied buckets of the tests that ended, by endpoint URL, for the next tests to reuse."""


@contextlib.contextmanager
def scratch_bucket(client: Any, endpoint: Endpoint) -> Iterator[str]:
    """Yield an empty bucket of ``endpoint``; empty it afterwards for the next test.

    Buckets of the servers the tests start are reused once emptied: a new bucket costs
    SeaweedFS a new volume on its first write (a fifth of a second). Buckets of an external
    endpoint are removed.
    """
    pool = _EMPTIED_BUCKETS.setdefault(endpoint.url, [])
    if pool:
        name = pool.pop()
    else:
        name = f"asyncstore-test-{uuid.uuid4().hex[:20]}"
        if endpoint.region == "us-east-1":
            client.create_bucket(Bucket=name)
        else:
            client.create_bucket(
                Bucket=name, CreateBucketConfiguration={"LocationConstraint": endpoint.region}
            )
    try:
        yield name
    finally:
        if endpoint.name != "external" and _empty(client, name):
            pool.append(name)
        else:
            _empty_and_delete(client, name)


@pytest.fixture
def bucket(boto3_client: Any, s3_endpoint: Endpoint) -> Iterator[str]:
    """An empty bucket, removed or emptied after the test."""
    with scratch_bucket(boto3_client, s3_endpoint) as name:
        yield name


@pytest.fixture
def module_options(s3_endpoint: Endpoint, bucket: str) -> dict[str, Any]:
    """The keyword options of an `S3Module` on the test's bucket."""
    return {"bucket": bucket, **s3_endpoint.module_options()}


@pytest.fixture
async def s3_module(module_options: dict[str, Any]) -> AsyncIterator[S3Module]:
    """An open `S3Module` on the test's fresh bucket."""
    async with S3Module(**module_options) as module:
        yield module
