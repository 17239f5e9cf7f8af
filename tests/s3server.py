"""S3 fixtures shared by every test directory: one real S3 server per run (moto's, on loopback),
a bucket per test.

Set ``ASYNCSTORE_TEST_S3_ENDPOINT`` (with ``ASYNCSTORE_TEST_S3_ACCESS_KEY_ID``,
``ASYNCSTORE_TEST_S3_SECRET_ACCESS_KEY`` and optionally ``ASYNCSTORE_TEST_S3_REGION``) to run
the same tests against another S3-compatible endpoint; each test then creates and removes its
own bucket there.
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from asyncstore_s3 import S3Module


@dataclass(frozen=True)
class Endpoint:
    url: str
    access_key_id: str
    secret_access_key: str
    region: str

    def module_options(self) -> dict[str, Any]:
        return {
            "endpoint_url": self.url,
            "access_key_id": self.access_key_id,
            "secret_access_key": self.secret_access_key,
            "region": self.region,
        }


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

    Its output goes to ``server.log`` in ``log_dir``; the credentials are the environment's.
    """
    port = free_loopback_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": access_key_id,
        "AWS_SECRET_ACCESS_KEY": secret_access_key,
    }
    with open(log_dir / "server.log", "wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
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


@pytest.fixture(scope="session")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Endpoint]:
    """The S3 endpoint of this run: ASYNCSTORE_TEST_S3_ENDPOINT, else a moto server process."""
    external = os.environ.get("ASYNCSTORE_TEST_S3_ENDPOINT")
    if external:
        yield Endpoint(
            url=external,
            access_key_id=os.environ.get("ASYNCSTORE_TEST_S3_ACCESS_KEY_ID", ""),
            secret_access_key=os.environ.get("ASYNCSTORE_TEST_S3_SECRET_ACCESS_KEY", ""),
            region=os.environ.get("ASYNCSTORE_TEST_S3_REGION", "us-east-1"),
        )
        return
    with moto_server(tmp_path_factory.mktemp("moto"), "testing", "testing") as url:
        yield Endpoint(url, "testing", "testing", "us-east-1")


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


def _empty_and_delete(client: Any, bucket: str) -> None:
    with contextlib.suppress(Exception):
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
        client.delete_bucket(Bucket=bucket)


@pytest.fixture
def bucket(boto3_client: Any, s3_endpoint: Endpoint) -> Iterator[str]:
    """A fresh, empty bucket, removed after the test."""
    name = f"asyncstore-test-{uuid.uuid4().hex[:20]}"
    if s3_endpoint.region == "us-east-1":
        boto3_client.create_bucket(Bucket=name)
    else:
        boto3_client.create_bucket(
            Bucket=name,
            CreateBucketConfiguration={"LocationConstraint": s3_endpoint.region},
        )
    yield name
    _empty_and_delete(boto3_client, name)


@pytest.fixture
def module_options(s3_endpoint: Endpoint, bucket: str) -> dict[str, Any]:
    """The keyword options of an `S3Module` on the test's bucket."""
    return {"bucket": bucket, **s3_endpoint.module_options()}


@pytest.fixture
async def s3_module(module_options: dict[str, Any]) -> AsyncIterator[S3Module]:
    """An open `S3Module` on the test's fresh bucket."""
    async with S3Module(**module_options) as module:
        yield module
