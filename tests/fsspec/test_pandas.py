"""pandas and pyarrow read and write through ``asyncstore://`` URLs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
import pytest

from asyncstore.fsspec import AsyncStoreFileSystem
from tests.fsspec.conftest import s3_spec


@pytest.fixture
def frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": range(1000),
            "name": [f"row {i}" for i in range(1000)],
            "x": [i / 7 for i in range(1000)],
        }
    )


@pytest.fixture
def s3_options(moto_endpoint: Any, moto_bucket: str) -> Any:
    yield {"store": s3_spec(moto_endpoint, moto_bucket)}
    for fs in list(AsyncStoreFileSystem._cache.values()):
        fs.close()
    AsyncStoreFileSystem.clear_instance_cache()


def test_csv_through_a_configured_store(frame: pd.DataFrame, configured: Path) -> None:
    frame.to_csv("asyncstore://local/csv/frame.csv", index=False)
    assert (configured / "csv" / "frame.csv").read_text().startswith("id,name,x\n")
    pd.testing.assert_frame_equal(pd.read_csv("asyncstore://local/csv/frame.csv"), frame)


def test_parquet_through_a_configured_store(frame: pd.DataFrame, configured: Path) -> None:
    frame.to_parquet("asyncstore://local/pq/frame.parquet")
    pd.testing.assert_frame_equal(pd.read_parquet("asyncstore://local/pq/frame.parquet"), frame)


def test_csv_and_parquet_on_s3(frame: pd.DataFrame, s3_options: Any) -> None:
    frame.to_csv("asyncstore:///data/frame.csv", index=False, storage_options=s3_options)
    read = pd.read_csv("asyncstore:///data/frame.csv", storage_options=s3_options)
    pd.testing.assert_frame_equal(read, frame)
    frame.to_parquet("asyncstore:///data/frame.parquet", storage_options=s3_options)
    read = pd.read_parquet("asyncstore:///data/frame.parquet", storage_options=s3_options)
    pd.testing.assert_frame_equal(read, frame)


def test_pyarrow_reads_a_dataset_through_the_filesystem(frame: pd.DataFrame, make_fs: Any) -> None:
    fs = make_fs("memory://")
    for part in range(3):
        frame.iloc[part::3].to_parquet(f"ds/part-{part}.parquet", filesystem=fs)
    table = pq.read_table("ds", filesystem=fs)
    assert table.num_rows == len(frame)
    assert sorted(table.column("id").to_pylist()) == list(range(1000))
