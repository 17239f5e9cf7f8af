"""Benchmark the ``asyncstore://`` fsspec filesystem against s3fs, on one loopback S3 server.

    pip install -e ".[dev]" -e ./asyncstore_s3        # fsspec, s3fs, pandas, pyarrow, moto
    python bench/fsspec_bridge.py                     # every phase, 5 runs (a few minutes)
    python bench/fsspec_bridge.py --runs 3 --csv-mb 20 --objects 1000 --rss-gib 0.25   # quick

Starts moto's S3 server on 127.0.0.1 and, in one run, measures both ways of reaching it:
``asyncstore:///key`` with ``store="s3://bucket?..."`` (asyncstore-s3 under the bridge) and
``s3://bucket/key`` (s3fs), each with its defaults:
  * pandas ``read_csv`` of a ~--csv-mb MB CSV file, and ``read_parquet`` of the same frame;
  * fsspec ``cat`` of --objects objects of 4 KiB in one call;
  * the peak RSS growth of a separate process reading --rss-gib GiB through ``fs.open`` in
    1 MiB reads (peak RSS reset with /proc/self/clear_refs once the file is open).
Each timing is the median of --runs runs after an untimed warm-up, the two sides alternating; a ratio is s3fs's time
over the bridge's (above 1.0: the bridge is faster). Bytes are checked after every run.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlencode

KEY, SECRET, REGION = "bench", "bench-secret", "us-east-1"
BUCKET = "fsspec-bridge"


@contextmanager
def moto_server() -> Iterator[str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "AWS_ACCESS_KEY_ID": KEY, "AWS_SECRET_ACCESS_KEY": SECRET}
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                with urllib.request.urlopen(url + "/moto-api/", timeout=1):
                    break
            except OSError:
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(10)


def store_spec(url: str) -> str:
    query = {"endpoint_url": url, "access_key_id": KEY, "secret_access_key": SECRET}
    return f"s3://{BUCKET}?{urlencode({**query, 'region': REGION})}"


def s3fs_options(url: str) -> dict[str, Any]:
    return {
        "key": KEY,
        "secret": SECRET,
        "client_kwargs": {"endpoint_url": url, "region_name": REGION},
    }


def boto3_client(url: str) -> Any:
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=url,
        aws_access_key_id=KEY,
        aws_secret_access_key=SECRET,
        region_name=REGION,
    )


def median_pair(
    runs: int,
    bridge: Callable[[], Any],
    peer: Callable[[], Any],
    check: Callable[[Any], None],
    warm: tuple[Callable[[], Any], Callable[[], Any]] | None = None,
) -> tuple[float, float]:
    times: dict[str, list[float]] = {"bridge": [], "peer": []}
    # Warm both (clients, connections and imports are not what is measured).
    for function in warm or (bridge, peer):
        function()
    for _ in range(runs):
        for side, function in (("bridge", bridge), ("peer", peer)):
            started = time.perf_counter()
            result = function()
            times[side].append(time.perf_counter() - started)
            check(result)
    return statistics.median(times["bridge"]), statistics.median(times["peer"])


def report(name: str, bridge: float, peer: float, unit: str = "s") -> float:
    ratio = peer / bridge
    print(
        f"{name:<34} asyncstore:// {bridge:8.3f} {unit}   s3fs {peer:8.3f} {unit}   ratio {ratio:5.2f}x"
    )
    return ratio


def bench_pandas(url: str, runs: int, csv_mb: int) -> list[float]:
    import numpy as np
    import pandas as pd

    rows = csv_mb * 1_000_000 // 59  # about 59 bytes a row
    rng = np.random.default_rng(7)
    frame = pd.DataFrame(
        {
            "id": np.arange(rows),
            "value": rng.random(rows),
            "count": rng.integers(0, 1_000_000, rows),
            "label": rng.choice(["alpha", "beta", "gamma", "delta"], rows),
            "when": pd.Timestamp("2024-01-01") + pd.to_timedelta(np.arange(rows), unit="s"),
        }
    )
    client = boto3_client(url)
    csv = frame.to_csv(index=False).encode()
    client.put_object(Bucket=BUCKET, Key="data/frame.csv", Body=csv)
    client.put_object(Bucket=BUCKET, Key="data/frame.parquet", Body=frame.to_parquet())
    print(f"CSV {len(csv) / 1e6:.0f} MB, {rows:,} rows; parquet of the same frame")
    ours = {"store": store_spec(url)}
    theirs = s3fs_options(url)

    def check(result: Any) -> None:
        assert len(result) == rows and result["id"].iloc[-1] == rows - 1

    ratios = []
    bridge, peer = median_pair(
        runs,
        lambda: pd.read_csv("asyncstore:///data/frame.csv", storage_options=ours),
        lambda: pd.read_csv(f"s3://{BUCKET}/data/frame.csv", storage_options=theirs),
        check,
    )
    ratios.append(report("pandas read_csv", bridge, peer))
    bridge, peer = median_pair(
        runs,
        lambda: pd.read_parquet("asyncstore:///data/frame.parquet", storage_options=ours),
        lambda: pd.read_parquet(f"s3://{BUCKET}/data/frame.parquet", storage_options=theirs),
        check,
    )
    ratios.append(report("pandas read_parquet", bridge, peer))
    return ratios


def bench_cat(url: str, runs: int, count: int) -> float:
    import fsspec

    client = boto3_client(url)
    body = os.urandom(4096)
    keys = [f"small/{index:06d}" for index in range(count)]
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda key: client.put_object(Bucket=BUCKET, Key=key, Body=body), keys))
    ours = fsspec.filesystem("asyncstore", store=store_spec(url))
    theirs = fsspec.filesystem("s3", **s3fs_options(url))

    def check(result: Any) -> None:
        assert len(result) == count and all(value == body for value in result.values())

    bridge, peer = median_pair(
        runs,
        lambda: ours.cat(keys),
        lambda: theirs.cat([f"{BUCKET}/{key}" for key in keys]),
        check,
        warm=(
            lambda: ours.cat(keys[:200]),
            lambda: theirs.cat([f"{BUCKET}/{k}" for k in keys[:200]]),
        ),
    )
    return report(f"fsspec cat of {count:,} x 4 KiB", bridge, peer)


RSS_CHILD = r"""
import sys, fsspec
spec, size = sys.argv[1], int(sys.argv[2])
def rss(field):
    for line in open("/proc/self/status"):
        if line.startswith(field):
            return int(line.split()[1]) * 1024
fs = fsspec.filesystem("asyncstore", store=spec)
with fs.open("big/object.bin", "rb") as file:
    file.read(1)
    file.seek(0)
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")  # resets the peak RSS (VmHWM) to the current RSS
    base = rss("VmRSS:")
    total = 0
    while chunk := file.read(1 << 20):
        total += len(chunk)
peak = rss("VmHWM:")
assert total == size, total
print(base, peak)
"""


def bench_rss(url: str, gib: float) -> float:
    size = int(gib * (1 << 30))
    client = boto3_client(url)
    upload = client.create_multipart_upload(Bucket=BUCKET, Key="big/object.bin")
    part_size = 256 << 20  # few parts: moto assembles them in memory on completion
    block = os.urandom(1 << 20) * 256
    parts = []
    for number, offset in enumerate(range(0, size, part_size), start=1):
        body = block[: min(part_size, size - offset)]
        answer = client.upload_part(
            Bucket=BUCKET,
            Key="big/object.bin",
            UploadId=upload["UploadId"],
            PartNumber=number,
            Body=body,
        )
        parts.append({"PartNumber": number, "ETag": answer["ETag"]})
    client.complete_multipart_upload(
        Bucket=BUCKET,
        Key="big/object.bin",
        UploadId=upload["UploadId"],
        MultipartUpload={"Parts": parts},
    )
    started = time.perf_counter()
    output = subprocess.run(
        [sys.executable, "-c", RSS_CHILD, store_spec(url), str(size)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    elapsed = time.perf_counter() - started
    base, peak = int(output[0]), int(output[1])
    growth = (peak - base) / (1 << 20)
    print(
        f"fs.open read of {gib:g} GiB: peak RSS {peak / (1 << 20):.0f} MiB, "
        f"{growth:.1f} MiB above the {base / (1 << 20):.0f} MiB before reading "
        f"({size / elapsed / (1 << 20):.0f} MiB/s)"
    )
    return growth


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--csv-mb", type=int, default=100)
    parser.add_argument("--objects", type=int, default=10_000)
    parser.add_argument("--cat-runs", type=int, default=3, help="runs of the cat phase")
    parser.add_argument("--rss-gib", type=float, default=2.0)
    args = parser.parse_args()
    with moto_server() as url:
        boto3_client(url).create_bucket(Bucket=BUCKET)
        if args.csv_mb:
            bench_pandas(url, args.runs, args.csv_mb)
        if args.objects:
            bench_cat(url, args.cat_runs, args.objects)
        if args.rss_gib:
            bench_rss(url, args.rss_gib)


if __name__ == "__main__":
    main()
