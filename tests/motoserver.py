"""moto's S3 server, with each object request decided in one step, as a real S3 engine does.

moto's server answers requests in threads, and checks a request's conditions (``If-None-Match``,
``If-Match``) and then acts on its in-memory store in two steps that another thread can split:
two create-only PUTs of one key can both succeed, and a compare-and-swap can lose an update
(seen here: a counter of 200 compare-and-swap increments ended at 199). Real engines decide a
condition atomically. This runs moto's own server with one lock around each object request's
handling; the request body is read before it and the response sent after it, so slow clients
never hold it.

    python -m tests.motoserver -H 127.0.0.1 -p PORT
"""

from __future__ import annotations

import threading
from typing import Any

from moto.s3.responses import S3Response
from moto.server import main

_LOCK = threading.Lock()
_handle = S3Response._key_response


def _key_response(self: S3Response, request: Any, full_url: str) -> Any:
    with _LOCK:
        return _handle(self, request, full_url)


S3Response._key_response = _key_response  # type: ignore[method-assign]

if __name__ == "__main__":
    main()
