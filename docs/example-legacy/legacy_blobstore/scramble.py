"""A wrapper written to the original SDK's guide: it transforms the bytes of another module.

It finds its inner store with ``context["func"].getModule(name)`` on every call, as the
original SDK's wrappers did, and intercepts the streams in both directions.
"""

import json


class ScrambleModule:
    """Scrambles bytes with a repeating key and keeps them in another store.

    Obfuscation, not encryption: it shows how a wrapper intercepts streams.

    Args:
        inner: The store that keeps the scrambled bytes (a store name or URL).
        key: The scrambling key.
    """

    def __init__(self, **kwargs):
        self.inner = kwargs["inner"]
        self.key = kwargs.get("key", "scramble").encode()
        if not self.key:
            raise ValueError("key must not be empty")

    def _inner(self, context):
        return context["func"].getModule(self.inner)

    def available(self, context, module_data):
        return self._inner(context).available(context, module_data)

    def put(self, context, stream):
        return self._inner(context).put(context, Scrambled(stream, self.key))

    def get_read_stream(self, context, module_data):
        inner = self._inner(context).get_read_stream(context, module_data)
        return Scrambled(inner, self.key)

    def delete(self, context, module_data):
        self._inner(context).delete(context, module_data)

    def statistics(self, context):
        inner = self._inner(context).statistics(context)
        if isinstance(inner, str):
            inner = json.loads(inner)
        return {"capacity": inner.get("capacity"), "inner": inner}

    def capabilities(self, context):
        return {"cdmi_encryption": []}


class Scrambled:
    """A stream (read, seek, close) that XORs another stream's bytes with a repeating key."""

    def __init__(self, stream, key):
        self.stream = stream
        self.key = key
        self.position = 0

    def read(self, size=-1):
        data = self.stream.read(size)
        start = self.position % len(self.key)
        pad = (self.key * (len(data) // len(self.key) + 2))[start : start + len(data)]
        self.position += len(data)
        scrambled = int.from_bytes(data, "little") ^ int.from_bytes(pad, "little")
        return scrambled.to_bytes(len(data), "little")

    def seek(self, offset, whence=0):
        self.position = self.stream.seek(offset, whence)
        return self.position

    def close(self):
        self.stream.close()
