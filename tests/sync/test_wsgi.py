"""The WSGI example of docs/sync.md, run under a threaded wsgiref server."""

from __future__ import annotations

import os
import re
import runpy
import socketserver
import threading
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest

DOCS = Path(__file__).resolve().parents[2] / "docs" / "sync.md"


def _example(name: str) -> str:
    text = DOCS.read_text()
    match = re.search(rf"<!-- example: {re.escape(name)} -->\n```python\n(.*?)```", text, re.S)
    assert match, f"no example {name!r} in {DOCS}"
    return match.group(1)


class _ThreadingServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args):
        pass


@pytest.fixture
def server(tmp_path, monkeypatch):
    config = tmp_path / "asyncstore.toml"
    config.write_text('[stores.media]\nmodule = "memory"\n')
    monkeypatch.setenv("ASYNCSTORE_CONFIG", str(config))
    script = tmp_path / "wsgi_app.py"
    script.write_text(_example("wsgi_app.py"))
    namespace = runpy.run_path(str(script))
    httpd = make_server(
        "127.0.0.1", 0, namespace["app"], server_class=_ThreadingServer, handler_class=_QuietHandler
    )
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield namespace["store"], f"http://127.0.0.1:{httpd.server_port}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(10)
        namespace["store"].close()


def _get(url: str, range_header: str | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url)
    if range_header:
        request.add_header("Range", range_header)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def test_downloads_with_ranges_from_many_threads(server):
    store, base = server
    data = os.urandom(300_000)
    store.put(data, key="videos/clip.bin")
    url = f"{base}/videos/clip.bin"
    cases = [
        (None, 200, data, None),
        ("bytes=100-199", 206, data[100:200], "bytes 100-199/300000"),
        ("bytes=299990-", 206, data[299990:], "bytes 299990-299999/300000"),
        ("bytes=-50", 206, data[-50:], "bytes 299950-299999/300000"),
        ("bytes=250000-999999", 206, data[250000:], "bytes 250000-299999/300000"),
        ("bytes=300000-", 416, b"", None),
    ]

    def check(case):
        range_header, status, body, content_range = case
        got_status, headers, got_body = _get(url, range_header)
        assert got_status == status, (range_header, got_status)
        assert got_body == body
        if content_range:
            assert headers["Content-Range"] == content_range
        if status != 416:
            assert int(headers["Content-Length"]) == len(body)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(check, cases * 8))
    assert _get(f"{base}/missing")[0] == 404
    assert _get(f"{base}/bad//key")[0] == 404
