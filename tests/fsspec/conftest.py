"""Fixtures of the fsspec bridge tests: store specs for memory, fs and the loopback S3 server
(moto's: the bridge's S3 side is asyncstore-s3 or s3fs, whose engines are tested elsewhere),
and `AsyncStoreFileSystem` instances over them that close their stores afterwards."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from asyncstore.fsspec import AsyncStoreFileSystem
from tests.s3server import Endpoint, scratch_bucket


def s3_spec(endpoint: Endpoint, bucket: str) -> str:
    """The URL of an S3 store on the test bucket (credentials in the query, as tests may)."""
    query = urlencode(
        {
            "endpoint_url": endpoint.url,
            "access_key_id": endpoint.access_key_id,
            "secret_access_key": endpoint.secret_access_key,
            "region": endpoint.region,
        }
    )
    return f"s3://{bucket}?{query}"


@pytest.fixture(scope="session")
def moto_client(moto_endpoint: Endpoint) -> Any:
    """A boto3 client of the moto server."""
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=moto_endpoint.url,
        aws_access_key_id=moto_endpoint.access_key_id,
        aws_secret_access_key=moto_endpoint.secret_access_key,
        region_name=moto_endpoint.region,
    )


@pytest.fixture
def moto_bucket(moto_client: Any, moto_endpoint: Endpoint) -> Iterator[str]:
    """An empty bucket of the moto server, emptied after the test."""
    with scratch_bucket(moto_client, moto_endpoint) as name:
        yield name


@pytest.fixture(params=["memory", "fs", "s3"])
def store_spec(request: pytest.FixtureRequest, tmp_path: Any) -> str:
    """A store spec of each kind the bridge is tested over."""
    if request.param == "memory":
        return "memory://"
    if request.param == "fs":
        return f"fs://{tmp_path / 'store'}"
    endpoint = request.getfixturevalue("moto_endpoint")
    return s3_spec(endpoint, request.getfixturevalue("moto_bucket"))


@pytest.fixture
def make_fs() -> Iterator[Callable[..., AsyncStoreFileSystem]]:
    """Create blocking filesystems (never cached) and close their stores after the test."""
    made: list[AsyncStoreFileSystem] = []

    def make(store: Any, **options: Any) -> AsyncStoreFileSystem:
        fs = AsyncStoreFileSystem(store=store, skip_instance_cache=True, **options)
        made.append(fs)
        return fs

    yield make
    for fs in made:
        fs.close()


@pytest.fixture
def sfs(store_spec: str, make_fs: Callable[..., AsyncStoreFileSystem]) -> AsyncStoreFileSystem:
    """A blocking filesystem over each kind of store."""
    return make_fs(store_spec)


@pytest.fixture
def configured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A config file naming an fs store ``local``, found through $ASYNCSTORE_CONFIG."""
    config = tmp_path / "asyncstore.toml"
    root = tmp_path / "blobs"
    config.write_text(f'[stores.local]\nmodule = "fs"\nroot = "{root}"\n')
    monkeypatch.setenv("ASYNCSTORE_CONFIG", str(config))
    yield root
    for fs in list(AsyncStoreFileSystem._cache.values()):
        fs.close()
    AsyncStoreFileSystem.clear_instance_cache()
