"""``asyncstore cp -r`` between two mounts of one mount store, with its progress bar."""

from __future__ import annotations

import os
import re
import select
import subprocess
import sys
from pathlib import Path

import pytest

CONFIG = """
[stores.media]
module = "fs"
root = "media"
fsync = false

[stores.cache]
module = "fs"
root = "cache"
fsync = false

[stores.rest]
module = "fs"
root = "rest"
fsync = false

[stores.app]
module = "mount"
mounts = { "media/" = "media", "cache/" = "cache", "" = "rest" }
"""

SCRIPT = str(Path(sys.executable).parent / "asyncstore")
SIZES = [300_000, 200_000, 100_000]
_ESCAPES = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def run(workdir: Path, *args: str, data: bytes | None = None) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "COLUMNS": "200"}
    environment.pop("ASYNCSTORE_CONFIG", None)
    return subprocess.run(
        [SCRIPT, *args],
        cwd=workdir,
        input=data.decode("latin-1") if data is not None else None,
        capture_output=True,
        text=True,
        encoding="latin-1",
        env=environment,
        timeout=120,
    )


def run_in_terminal(workdir: Path, *args: str) -> tuple[int, str]:
    """Run the command with a terminal as its output, as a user at a shell would."""
    import pty

    parent, child = pty.openpty()
    environment = {**os.environ, "COLUMNS": "120", "TERM": "xterm"}
    environment.pop("ASYNCSTORE_CONFIG", None)
    process = subprocess.Popen(
        [SCRIPT, *args], cwd=workdir, stdin=child, stdout=child, stderr=child, env=environment
    )
    os.close(child)
    output = bytearray()
    try:
        while select.select([parent], [], [], 120)[0]:
            try:
                chunk = os.read(parent, 65536)
            except OSError:  # the terminal closed with the process (EIO on Linux)
                break
            if not chunk:
                break
            output += chunk
    finally:
        os.close(parent)
    return process.wait(timeout=120), _ESCAPES.sub("", output.decode("utf-8", "replace"))


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "asyncstore.toml").write_text(CONFIG)
    for index, size in enumerate(SIZES):
        data = bytes([index]) * size
        put = run(tmp_path, "put", "-", f"app:media/photos/{index}.jpg", data=data)
        assert put.returncode == 0, put.stderr
    return tmp_path


@pytest.mark.skipif(sys.platform == "win32", reason="needs a pseudo-terminal")
def test_cp_between_two_mounts_shows_progress(workdir: Path) -> None:
    status, output = run_in_terminal(workdir, "cp", "-r", "app:media/photos/", "app:cache/thumbs/")
    assert status == 0, output
    total = sum(SIZES) / 1024
    assert f"{total:.1f}/{total:.1f} KiB" in output, output  # the bar reached the total
    assert f"copied 3 object(s), {sum(SIZES)} bytes" in output
    for index, size in enumerate(SIZES):
        copied = workdir / "cache" / "thumbs" / f"{index}.jpg"
        assert copied.read_bytes() == bytes([index]) * size
    assert run(workdir, "ls", "app:").stdout.split() == [
        *(f"cache/thumbs/{index}.jpg" for index in range(3)),
        *(f"media/photos/{index}.jpg" for index in range(3)),
    ]


def test_cp_between_two_mounts_resumes(workdir: Path) -> None:
    first = run(workdir, "cp", "-r", "app:media/", "app:cache/")
    assert first.returncode == 0 and "copied 3 object(s)" in first.stderr, first.stderr
    (workdir / "cache" / "photos" / "1.jpg").unlink()
    again = run(workdir, "sync", "app:media/", "app:cache/")
    assert "copied 1 object(s)" in again.stderr and "skipped 2" in again.stderr, again.stderr
    cat = run(workdir, "cat", "app:cache/photos/1.jpg")
    assert cat.stdout == "\x01" * SIZES[1]
    assert not (workdir / "rest").exists() or not list((workdir / "rest").rglob("*.jpg"))
