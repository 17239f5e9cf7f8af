"""Every built-in transform passes the transform checks of `asyncstore.testing.transforms`."""

from __future__ import annotations

import gzip
import hashlib
from collections.abc import Mapping
from typing import ClassVar

import pytest

from asyncstore.testing.transforms import Sample, TransformTests
from asyncstore.transforms import Transform

TEXT = b"".join(b"2026-01-%02d,%d,item %d\n" % (i % 28 + 1, i, i * 7) for i in range(20000))
CSV = b"day,count,label\n" + TEXT


class BothBackends:
    @pytest.fixture(params=["asyncio", "trio"])
    def anyio_backend(self, request: pytest.FixtureRequest) -> str:
        return str(request.param)


class TestIdentity(BothBackends, TransformTests):
    sample_inputs = (Sample(TEXT, content_type="text/plain", metadata={"owner": "ann"}),)
    other_samples = ((b"",), (b"x" * 100_000,))

    @pytest.fixture
    def transform(self) -> str:
        return "identity"


class TestGzipCompress(BothBackends, TransformTests):
    other_samples = ((b"",), (TEXT[:1000],))
    bad_params = ({"level": "0"}, {"level": "fast"}, {"mode": "squeeze"})

    @pytest.fixture
    def transform(self) -> str:
        return "gzip"


class TestGzipDecompress(BothBackends, TransformTests):
    sample_inputs = (gzip.compress(TEXT),)
    params: ClassVar[Mapping[str, str]] = {"mode": "decompress"}
    other_samples = ((gzip.compress(b"a") + gzip.compress(b"b"),),)
    bad_inputs = ((b"not gzip at all",), (gzip.compress(TEXT)[:-100],))

    @pytest.fixture
    def transform(self) -> str:
        return "gzip"


class TestChecksumVerified(BothBackends, TransformTests):
    sample_inputs = (TEXT,)
    params: ClassVar[Mapping[str, str]] = {"verify": hashlib.sha256(TEXT).hexdigest()}
    bad_params = ({"algorithm": "crc1"}, {"verify": "abc"})
    bad_inputs = ((TEXT[:-1],),)

    @pytest.fixture
    def transform(self) -> str:
        return "checksum"


class TestChecksum(BothBackends, TransformTests):
    sample_inputs = (Sample(TEXT, metadata={"owner": "ann"}),)
    other_samples = ((b"",), (b"x" * (9 << 20),))  # past the in-memory spool

    @pytest.fixture
    def transform(self) -> str:
        return "checksum"


class TestCsvSelect(BothBackends, TransformTests):
    sample_inputs = (Sample(CSV, content_type="text/csv"),)
    params: ClassVar[Mapping[str, str]] = {"columns": "label,day", "where": "count >= 100"}
    other_samples = ((b"",), (b"day,count,label\n",))
    bad_params = ({"where": "count ~ 3"}, {"columns": ","}, {"delimiter": ";;"})
    bad_inputs = ((b"a,b,c\n1,2,3\n",),)  # no such columns

    @pytest.fixture
    def transform(self) -> Transform | str:
        return "csv-select"
