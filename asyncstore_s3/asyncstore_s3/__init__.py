"""asyncstore-s3: the S3 backend for asyncstore, on aiobotocore.

The object under key ``a/b.txt`` is the S3 object ``<prefix>a/b.txt`` in the configured bucket,
readable and writable by any other S3 tool. Installed as the ``s3`` plugin
(``s3://bucket/prefix?endpoint_url=…&region=…``).
"""

from __future__ import annotations

from asyncstore_s3._config import S3Options
from asyncstore_s3._errors import map_s3_errors
from asyncstore_s3._module import S3Module
from asyncstore_s3._read import S3ReadStream
from asyncstore_s3._stale import StaleUpload
from asyncstore_s3._version import __version__ as __version__

__all__ = [
    "S3Module",
    "S3Options",
    "S3ReadStream",
    "StaleUpload",
    "map_s3_errors",
]
