"""asyncstore-s3 on a SeaweedFS cluster: a master, two volume servers keeping every object
twice (replication ``001``), a filer and an S3 gateway, each a process of its own.

The conformance suite passes there, and with a volume server stopped every object stays
readable (from its replica) while writes, which the cluster can no longer place twice, fail
with `TransientError` within the bound their options set instead of hanging.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
import pytest

from asyncstore.errors import TransientError
from asyncstore.testing import StorageModuleTests
from asyncstore_s3 import S3Module
from tests.s3server import SERVERS, Endpoint, scratch_bucket, seaweedfs_endpoint_of
from tests.seaweedfs import Cluster, seaweedfs_cluster

from ._helpers import MiB, pattern

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif("seaweedfs" not in SERVERS, reason="SeaweedFS is not among the servers"),
]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with seaweedfs_cluster(tmp_path_factory.mktemp("cluster"), volumes=2, replication="001") as c:
        yield c


@pytest.fixture(scope="module")
def cluster_endpoint(cluster: Cluster) -> Endpoint:
    return seaweedfs_endpoint_of(cluster.url)


@pytest.fixture
def cluster_bucket(cluster: Cluster, cluster_endpoint: Endpoint) -> Iterator[str]:
    with scratch_bucket(cluster.client(), cluster_endpoint) as name:
        yield name


class TestClusterConformance(StorageModuleTests):
    """The whole contract on the cluster."""

    list_page_objects = 0  # pagination is checked on the single-node server

    @pytest.fixture
    async def module(
        self, cluster_endpoint: Endpoint, cluster_bucket: str
    ) -> AsyncIterator[S3Module]:
        async with S3Module(bucket=cluster_bucket, **cluster_endpoint.module_options()) as store:
            yield store


@pytest.mark.anyio
async def test_a_stopped_volume_server_loses_no_object_and_bounds_writes(
    cluster: Cluster, cluster_endpoint: Endpoint, cluster_bucket: str
) -> None:
    # Runs after the suite above: the cluster stays degraded.
    options: dict[str, Any] = {
        **cluster_endpoint.module_options(),
        "bucket": cluster_bucket,
        "part_size": 5 * MiB,
        "max_attempts": 2,
        "connect_timeout": 1,
        "write_timeout": 2,
    }
    objects = {f"obj/{index}": pattern(index * 4099 + 1, seed=index) for index in range(12)}
    objects["large"] = pattern(11 * MiB + 5, seed=99)  # a multipart upload, three parts
    async with S3Module(**options) as store:
        for key, data in objects.items():
            await store.put(data, key=key)
        cluster.stop_volume(1)
        for key, data in objects.items():
            async with await store.get_read_stream(key) as stream:
                assert await stream.read() == data, key
        async with await store.get_read_stream("large", start=6 * MiB, end=6 * MiB + 10) as s:
            assert await s.read() == objects["large"][6 * MiB : 6 * MiB + 10]
        listed = [info.handle async for info in store.list()]
        assert listed == sorted(objects, key=lambda key: key.split("/"))
        # Two attempts of at most connect + write timeout each, and the backoff between them.
        bound = options["max_attempts"] * (options["connect_timeout"] + options["write_timeout"])
        started = anyio.current_time()
        with pytest.raises(TransientError) as caught:
            await store.put(b"new", key="obj/0")
        assert anyio.current_time() - started < bound + 2
        message = str(caught.value)
        assert "PutObject" in message and "write_timeout=2 s" in message
        async with await store.get_read_stream("obj/0") as stream:
            assert await stream.read() == objects["obj/0"]  # the old object is intact
