"""The command line against the loopback S3 server: named S3 stores, URLs, copies to and fro."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli.conftest import Run
from tests.s3server import Endpoint


def s3_config(workdir: Path, endpoint: Endpoint, bucket: str) -> dict[str, str]:
    """Add an S3 store whose secrets come from the environment; return that environment."""
    extra = "".join(f'{name} = "{value}"\n' for name, value in endpoint.options.items())
    with (workdir / "asyncstore.toml").open("a") as config:
        config.write(
            f'\n[stores.cloud]\nmodule = "s3"\nbucket = "{bucket}"\nprefix = "app/"\n'
            f'endpoint_url = "{endpoint.url}"\nregion = "{endpoint.region}"\n'
            'access_key_id = "${TEST_S3_KEY_ID}"\nsecret_access_key = "${TEST_S3_SECRET}"\n'
            f"{extra}"
        )
    return {"TEST_S3_KEY_ID": endpoint.access_key_id, "TEST_S3_SECRET": endpoint.secret_access_key}


def test_cli_on_s3(
    cli: Run, workdir: Path, s3_endpoint: Endpoint, bucket: str, boto3_client
) -> None:
    env = s3_config(workdir, s3_endpoint, bucket)
    (workdir / "notes.txt").write_text("kept in the cloud")
    assert cli("put", "notes.txt", "cloud:docs/", "--meta", "k=v", env=env).returncode == 0
    stored = boto3_client.get_object(Bucket=bucket, Key="app/docs/notes.txt")
    assert stored["Body"].read() == b"kept in the cloud"
    assert stored["ContentType"] == "text/plain"
    assert cli("cat", "cloud:docs/notes.txt", "--range", "8-13", env=env).stdout == "the c"
    assert cli("ls", "cloud:docs/", env=env).stdout.split() == ["docs/notes.txt"]
    info = json.loads(cli("stat", "cloud:docs/notes.txt", "--json", env=env).stdout)
    assert info["metadata"] == {"k": "v"} and info["size"] == 17
    missing = cli("cat", "cloud:docs/absent.txt", env=env)
    assert missing.returncode == 1 and missing.stderr.startswith("error: ")
    assert s3_endpoint.secret_access_key not in missing.stderr


def test_copy_between_fs_and_s3_and_sync(
    cli: Run, workdir: Path, s3_endpoint: Endpoint, bucket: str
) -> None:
    env = s3_config(workdir, s3_endpoint, bucket)
    for index in range(4):
        cli("put", "-", f"local:photos/{index}.jpg", input=f"jpeg {index}" * 1000)
    up = cli("cp", "-r", "local:photos/", "cloud:backup/", env=env)
    assert "copied 4 object(s)" in up.stderr, up.stderr
    again = cli("sync", "local:photos/", "cloud:backup/", env=env)
    assert "copied 0 object(s)" in again.stderr and "skipped 4" in again.stderr
    down = cli("cp", "-r", "cloud:backup/", "other:restored/", env=env)
    assert "copied 4 object(s)" in down.stderr
    assert (workdir / "other" / "restored" / "2.jpg").read_text() == "jpeg 2" * 1000
    stats = json.loads(cli("stats", "cloud", "--json", env=env).stdout)
    assert stats["capacity"] == {"total": None, "used": None, "free": None}


def test_check_passes_on_s3(
    cli: Run, workdir: Path, s3_endpoint: Endpoint, bucket: str, boto3_client
) -> None:
    env = s3_config(workdir, s3_endpoint, bucket)
    result = cli("check", "cloud", "--filter", "range or metadata or unknown", "--json", env=env)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr
    report = json.loads(result.stdout)
    assert report["failed"] == 0
    assert sum(r["outcome"] == "passed" for r in report["results"].values()) > 20
    assert boto3_client.list_objects_v2(Bucket=bucket).get("KeyCount", 0) == 0
    # What the store declares it does not promise: its prefix shortens keys, and SeaweedFS
    # lists in directory-tree order.
    expected = ["max_key_bytes: keys of at most 1020 bytes, not 1024"]
    if s3_endpoint.options.get("engine") == "seaweedfs":
        expected.insert(
            0,
            "list_order: tree (listings come in directory-tree order, 'a/b'"
            " before 'a-b'), not lexicographic",
        )
    assert report["promises_not_made"] == expected
    table = cli("check", "cloud", "--filter", "list_is_in or longest", env=env)
    assert table.returncode == 0, table.stdout[-2000:] + table.stderr
    assert "2 passed, 0 failed, 0 skipped" in table.stdout
    assert "promises this store declares it does not make:" in table.stdout
    assert "max_key_bytes: keys of at most 1020 bytes" in table.stdout
