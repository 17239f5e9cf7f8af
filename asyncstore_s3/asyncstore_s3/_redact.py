"""Masks the secrets of live S3 clients in botocore's DEBUG log records.

At DEBUG level botocore logs every request it signs and sends, headers included. A session
token (``X-Amz-Security-Token``) and an SSE-C key travel in headers, so they would be logged
as they are. Each client the backend creates registers the secrets of its options here until
it is closed, and a filter on botocore's and aiobotocore's loggers replaces them with ``***``
in the formatted message. Credentials botocore finds itself (environment, profile, assumed
role, SSO, instance role), which the backend never sees and which change as botocore
refreshes them, are masked by where they appear: the session token after
``X-Amz-Security-Token`` in every spelling botocore logs, and the secret key and token in the
response bodies of the credential services (STS's XML, SSO's and the container endpoint's
JSON), which botocore logs too. Logger filters run only for records a logger emits, so this
costs nothing unless DEBUG logging is on.
"""

from __future__ import annotations

import logging
import re
import threading
from collections import Counter
from collections.abc import Iterable

from asyncstore_s3._config import S3Options

__all__ = ["SECRETS", "SecretFilter", "secrets_of"]

_LIBRARIES = ("botocore", "aiobotocore")
# The loggers that show request headers and parameters, filtered even before they exist.
_REQUEST_LOGGERS = ("botocore.endpoint", "botocore.auth", "aiobotocore.endpoint")
_MASK = "***"
# The token's header in a headers dict (``'X-Amz-Security-Token': b'…'``), in a canonical
# request (``x-amz-security-token:…``) and in a query string (``X-Amz-Security-Token=…``).
_TOKEN = re.compile(r"""(?i)(x-amz-security-token(?:['"]?:\s*b?['"]|[:=]))[^'"\s&]+""")
# Credentials in the answers of STS (XML) and of SSO and the container endpoint (JSON).
_XML_CREDENTIAL = re.compile(r"(?i)<(SecretAccessKey|SessionToken)>[^<]*</\1>")
_JSON_CREDENTIAL = re.compile(
    r"""(?i)(["'](?:secretAccessKey|sessionToken|token)["']\s*:\s*["'])[^"']*"""
)


def secrets_of(options: S3Options) -> list[str]:
    """Return the secret values of a store's options, in every form botocore may log them."""
    values = [options.secret_access_key, options.session_token, options.sse_customer_key]
    values += [
        value for name, value in options.sse_customer_params().items() if name.endswith("Key")
    ]
    return [value for value in values if value]


class SecretFilter(logging.Filter):
    """A logging filter that replaces the registered secrets in a record's message."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        # Read without the lock by whichever thread logs: replaced, never changed in place.
        self._secrets: tuple[str, ...] = ()

    def register(self, values: Iterable[str]) -> list[str]:
        """Mask ``values`` until they are passed to `forget`; return them.

        Also adds the filter to every botocore and aiobotocore logger that exists by now.
        """
        registered = [value for value in values if value]
        with self._lock:
            self._counts.update(registered)
            self._secrets = tuple(self._counts)
        for name in _REQUEST_LOGGERS:
            logging.getLogger(name).addFilter(self)
        for name, logger in list(logging.Logger.manager.loggerDict.items()):
            if isinstance(logger, logging.Logger) and name.split(".")[0] in _LIBRARIES:
                logger.addFilter(self)
        return registered

    def forget(self, values: Iterable[str]) -> None:
        """Stop masking ``values`` (once for each time they were registered)."""
        with self._lock:
            self._counts.subtract(values)
            self._counts = +self._counts
            self._secrets = tuple(self._counts)

    def filter(self, record: logging.LogRecord) -> bool:
        """Mask registered secrets and session tokens in the record's message; keep it."""
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: the handler reports it, we must not raise
            return True
        masked = _TOKEN.sub(rf"\g<1>{_MASK}", message)
        if "ccessKey" in masked or "oken" in masked:  # skips the regexes for most records
            masked = _XML_CREDENTIAL.sub(rf"<\g<1>>{_MASK}</\g<1>>", masked)
            masked = _JSON_CREDENTIAL.sub(rf"\g<1>{_MASK}", masked)
        for secret in self._secrets:
            masked = masked.replace(secret, _MASK)
        if masked != message:
            record.msg, record.args = masked, None
        return True


SECRETS = SecretFilter()
"""The process's filter, shared by every S3 client."""
