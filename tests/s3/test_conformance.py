from collections.abc import AsyncIterator
from typing import Any

import pytest

from asyncstore.testing import StorageModuleTests
from asyncstore_s3 import S3Module


class TestS3Conformance(StorageModuleTests):
    """The whole contract against a real S3 server, in a fresh bucket per test."""

    @pytest.fixture
    async def module(self, module_options: dict[str, Any]) -> AsyncIterator[S3Module]:
        async with S3Module(**module_options) as store:
            yield store


class TestS3PrefixedConformance(StorageModuleTests):
    """The same contract with a key prefix shared with other objects in the bucket."""

    list_page_objects = 0  # the pagination check runs once, above

    @pytest.fixture
    async def module(
        self, module_options: dict[str, Any], boto3_client: Any
    ) -> AsyncIterator[S3Module]:
        bucket = module_options["bucket"]
        # Neighbours outside the prefix must never show up.
        boto3_client.put_object(Bucket=bucket, Key="other/x", Body=b"x")
        boto3_client.put_object(Bucket=bucket, Key="store", Body=b"x")
        async with S3Module(prefix="store/", **module_options) as store:
            yield store
