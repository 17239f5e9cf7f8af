"""Middleware over the S3 module, on the S3 tests' server (moto's unless one is configured)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

import asyncstore_s3 as s3
from asyncstore.middleware.compress import CompressionModule
from asyncstore.middleware.dedup import DedupModule
from asyncstore.middleware.encrypt import EncryptionModule
from asyncstore.testing import StorageModuleTests

from .helpers import new_key

# Over a minute against moto: deselect with -m "not slow" for a quick run.
pytestmark = pytest.mark.slow


class TestDedupOverS3(StorageModuleTests):
    """dedup -> s3."""

    list_page_objects = 0  # pagination is checked over memory and by the S3 suite itself

    @pytest.fixture
    async def module(self, module_options: dict[str, Any]) -> AsyncIterator[DedupModule]:
        async with DedupModule(inner=s3.S3Module(**module_options)) as store:
            yield store


class TestCompressEncryptOverS3(StorageModuleTests):
    """compress -> encrypt -> s3."""

    list_page_objects = 0

    @pytest.fixture
    async def module(self, module_options: dict[str, Any]) -> AsyncIterator[CompressionModule]:
        sealed = EncryptionModule(inner=s3.S3Module(**module_options), key=new_key())
        async with CompressionModule(inner=sealed) as store:
            yield store
