"""Fixtures of every test directory; the S3 server fixtures come from `tests.s3server`."""

import pytest

pytest_plugins = ["tests.s3server"]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
