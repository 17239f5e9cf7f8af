"""The command line, driven as a user drives it: a real process, real stores."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.cli.conftest import Run


def test_put_get_round_trip_through_pipes(cli: Run, workdir: Path) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)
    result = cli("put", "-", "local:bin/data.bin", input=data, text=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == b"bin/data.bin"
    assert (workdir / "store" / "bin" / "data.bin").read_bytes() == data
    out = cli("cat", "local:bin/data.bin", text=False)
    assert out.stdout == data
    ranged = cli("get", "local:bin/data.bin", "-", "--range", "10-20", text=False)
    assert ranged.stdout == data[10:20]
    assert cli("get", "local:bin/data.bin", "--range", "3145728-", text=False).returncode == 0
    assert (workdir / "data.bin").read_bytes() == data[3145728:]


def test_put_guesses_content_type_and_takes_metadata(cli: Run, workdir: Path) -> None:
    (workdir / "page.html").write_text("<p>hi</p>")
    assert cli("put", "page.html", "local", "--meta", "a=1", "--meta", "b=x=y").returncode == 0
    info = json.loads(cli("stat", "local:page.html", "--json").stdout)
    assert info["content_type"] == "text/html"
    assert info["metadata"] == {"a": "1", "b": "x=y"}
    assert cli("put", "page.html", "local", "--meta", "novalue").returncode == 2
    assert cli("put", "page.html", "local:site/").stdout.strip() == "site/page.html"


def test_url_addressing(cli: Run, workdir: Path) -> None:
    root = (workdir / "byurl").as_posix()
    (workdir / "f.txt").write_text("via url")
    assert cli("put", "f.txt", f"fs://{root}//dir/f.txt").returncode == 0
    assert cli("cat", f"fs://{root}//dir/f.txt").stdout == "via url"
    ambiguous = cli("cat", f"fs://{root}/dir/f.txt")
    assert ambiguous.returncode == 2
    assert "URL//KEY with '//' between the store's URL and the key" in ambiguous.stderr


def test_errors_are_one_line_with_status_1(cli: Run) -> None:
    result = cli("cat", "local:missing.txt")
    assert result.returncode == 1
    assert result.stderr.startswith("error: ")
    assert len(result.stderr.strip().splitlines()) == 1
    assert "missing.txt" in result.stderr and "Traceback" not in result.stderr
    debug = cli("--debug", "cat", "local:missing.txt")
    assert debug.returncode == 1 and "Traceback" in debug.stderr
    assert cli("cat", "nosuchstore:x").returncode == 1
    bad_key = cli("cat", "local:a/../b")
    assert bad_key.returncode == 1 and "'..' segment" in bad_key.stderr


def test_usage_errors_exit_2(cli: Run) -> None:
    assert cli("get").returncode == 2
    assert cli("frobnicate").returncode == 2
    assert cli("cat", "local:x", "--range", "z-").returncode == 2
    assert cli("cat", "local").returncode == 2


def test_ls_formats(cli: Run, workdir: Path) -> None:
    for key in ("b/2", "a/1", "a/3"):
        cli("put", "-", f"local:{key}", input="x" * len(key))
    assert cli("ls", "local:a/").stdout.split() == ["a/1", "a/3"]
    rows = [json.loads(line) for line in cli("ls", "local", "--json").stdout.splitlines()]
    assert [row["handle"] for row in rows] == ["a/1", "a/3", "b/2"]
    assert all(row["size"] == 3 for row in rows)
    long = cli("ls", "-l", "local:b/").stdout
    assert "3 B" in long and "b/2" in long


def test_rm_by_prefix_asks_first(cli: Run) -> None:
    for key in ("tmp/1", "tmp/2", "keep"):
        cli("put", "-", f"local:{key}", input="x")
    refused = cli("rm", "--prefix", "local:tmp/", input="n\n")
    assert refused.returncode == 1 and "delete 2 object(s) under 'tmp/'?" in refused.stderr
    assert "Aborted" in refused.stderr
    assert cli("ls", "local").stdout.split() == ["keep", "tmp/1", "tmp/2"]
    done = cli("rm", "--prefix", "--yes", "local:tmp/")
    assert done.returncode == 0 and "deleted 2 object(s)" in done.stderr
    assert cli("ls", "local").stdout.split() == ["keep"]
    assert cli("rm", "local:keep", "local:never-existed").returncode == 0


def test_cp_and_resumable_sync(cli: Run, workdir: Path) -> None:
    for index in range(5):
        cli("put", "-", f"local:src/{index}.txt", input=f"object {index}" * 100)
    first = cli("cp", "-r", "local:src/", "other:dst/")
    assert "copied 5 object(s)" in first.stderr, first.stderr
    (workdir / "other" / "dst" / "3.txt").unlink()
    (workdir / "other" / "dst" / "4.txt").write_text("changed")
    second = cli("sync", "local:src", "other:dst")
    assert "copied 2 object(s)" in second.stderr and "skipped 3" in second.stderr
    for index in range(5):
        assert cli("cat", f"other:dst/{index}.txt").stdout == f"object {index}" * 100
    single = cli("cp", "local:src/1.txt", "other:single.txt")
    assert single.returncode == 0
    assert cli("cat", "other:single.txt").stdout == "object 1" * 100


def test_stores_masks_secrets(cli: Run) -> None:
    out = cli("stores").stdout
    assert "hunter2" not in out
    assert "password=***" in out and "token=${SOME_TOKEN}" in out
    data = json.loads(cli("stores", "--json").stdout)
    assert data["stores"]["secret"]["password"] == "***"


def test_stats_and_caps(cli: Run) -> None:
    cli("put", "-", "local:x", input="12345")
    stats = json.loads(cli("stats", "local", "--json").stdout)
    assert set(stats["capacity"]) == {"total", "used", "free"}
    caps = json.loads(cli("caps", "local", "--json").stdout)
    assert caps["list"] is True
    assert "range_read: True" in cli("caps", "memory://").stdout


def test_interrupted_put_stores_nothing(cli: Run, workdir: Path) -> None:
    script = str(Path(sys.executable).parent / "asyncstore")
    process = subprocess.Popen(
        [script, "put", "-", "local:big.bin"],
        cwd=workdir,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdin is not None
    for _ in range(8):
        process.stdin.write(b"x" * (1 << 20))
        process.stdin.flush()
    time.sleep(0.5)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 1, err
    assert b"interrupted" in err
    assert cli("ls", "local").stdout == ""
    leftovers = [p for p in (workdir / "store").rglob("*") if p.is_file()]
    assert leftovers == []


def test_cleanup_removes_what_a_killed_put_left(cli: Run, workdir: Path) -> None:
    script = str(Path(sys.executable).parent / "asyncstore")
    process = subprocess.Popen(
        [script, "put", "-", "local:big.bin"], cwd=workdir, stdin=subprocess.PIPE
    )
    assert process.stdin is not None
    store = workdir / "store"
    deadline = time.monotonic() + 30
    while not [p for p in store.rglob("*") if p.is_file()]:
        assert time.monotonic() < deadline, "the put never started writing"
        process.stdin.write(b"x" * (1 << 20))
        process.stdin.flush()
    process.kill()
    process.wait(timeout=30)
    process.stdin.close()
    assert cli("ls", "local").stdout == ""
    fresh = cli("cleanup", "local", "--json")
    assert fresh.returncode == 0, fresh.stderr
    assert json.loads(fresh.stdout) == {"temporaries": 0}
    assert cli("cleanup", "local", "--older-than", "0").stdout == "1 temporaries\n"
    assert [p for p in store.rglob("*") if p.is_file()] == []
    assert cli("cleanup", "memory://").stdout == "nothing to clean up\n"


def test_repair_fills_replicas(cli: Run, workdir: Path) -> None:
    with (workdir / "asyncstore.toml").open("a") as config:
        config.write(
            '\n[stores.mirrored]\nmodule = "replicate"\nprimary = "local"\nreplicas = ["other"]\n'
        )
    for index in range(3):
        cli("put", "-", f"local:r/{index}", input=f"data {index}")
    first = cli("repair", "mirrored", "--json")
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["copied"] == 3
    assert cli("cat", "other:r/2").stdout == "data 2"
    again = json.loads(cli("repair", "mirrored", "--json").stdout)
    assert again["copied"] == 0 and again["skipped"] == 3
    plain = cli("repair", "local")
    assert plain.returncode == 1 and "nothing to repair" in plain.stderr


def test_recursive_copy_of_a_prefix_without_slash(cli: Run, workdir: Path) -> None:
    cli("put", "-", "local:photos/x.jpg", input="x")
    assert cli("cp", "-r", "local:photos", "other").returncode == 0
    assert cli("ls", "other").stdout.split() == ["photos/x.jpg"]
    again = cli("sync", "local:photos", "other")
    assert "skipped 1 already present" in again.stderr


def test_a_failing_copy_reports_one_line(cli: Run) -> None:
    for index in range(3):
        cli("put", "-", f"local:many/{index}", input="0123456789")
    result = cli("cp", "-r", "local:many/", "memory://?max_bytes=3")
    assert result.returncode == 1
    assert result.stderr.startswith("error: ") and "Traceback" not in result.stderr
    assert "capacity" in result.stderr and "more object(s) failed" in result.stderr


def test_store_urls_without_a_key(cli: Run, workdir: Path) -> None:
    root = (workdir / "plain").as_posix()
    cli("put", "-", f"fs://{root}//k", input="v")
    assert json.loads(cli("stats", f"fs://{root}", "--json").stdout)["capacity"]["total"] > 0
    assert cli("ls", f"fs://{root}").stdout.split() == ["k"]


def test_secrets_in_urls_and_nested_tables_are_masked(cli: Run, workdir: Path) -> None:
    with (workdir / "asyncstore.toml").open("a") as config:
        config.write(
            '\n[stores.leaky]\nmodule = "memory://?secret=LEAK1"\n'
            'endpoint_url = "http://user:LEAK2@127.0.0.1:9/"\n'
            '[stores.leaky.nested]\npassword = "LEAK3"\n'
        )
    out = cli("stores").stdout + cli("stores", "--json").stdout
    for secret in ("LEAK1", "LEAK2", "LEAK3"):
        assert secret not in out
    leaked = cli("cat", "memory://?secret_access_key=LEAK4")
    assert leaked.returncode == 2 and "LEAK4" not in leaked.stderr


def test_get_gives_files_the_usual_mode(cli: Run, workdir: Path) -> None:
    cli("put", "-", "local:f", input="x")
    assert cli("get", "local:f", "out.txt").returncode == 0
    umask = os.umask(0)
    os.umask(umask)
    assert (workdir / "out.txt").stat().st_mode & 0o777 == 0o666 & ~umask
