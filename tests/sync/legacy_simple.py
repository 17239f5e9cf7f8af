"""Legacy modules written the old way: synchronous classes with ``context`` first.

`SimpleModule` keeps each object in a file of its directory; its ``module_data`` is a JSON
string naming the file, as the original SDK's modules did. `XorModule` is a wrapper that
scrambles the bytes and keeps them in an inner store found through
``context["func"].getModule(name)``.
"""

import json
import os
import shutil
import tempfile
import uuid


class SimpleModule:
    """Keeps objects as files of one directory.

    Args:
        root: The directory.
        chunk_size: How many bytes to read from a stream at a time.
    """

    def __init__(self, root: str, chunk_size: int = 65536):
        self.root = root
        self.chunk_size = chunk_size
        os.makedirs(root, exist_ok=True)

    def _path(self, module_data):
        object_id = json.loads(module_data)["id"]
        if not (isinstance(object_id, str) and len(object_id) == 32 and object_id.isalnum()):
            raise ValueError("bad module_data")
        return os.path.join(self.root, object_id)

    def new_data(self, context):
        return json.dumps({"id": uuid.uuid4().hex})

    def put(self, context, stream):
        module_data = self.new_data(context)
        self.assign(context, module_data, stream)
        return module_data

    def assign(self, context, module_data, stream):
        path = self._path(module_data)
        fd, temporary = tempfile.mkstemp(dir=self.root, prefix=".part-")
        try:
            with os.fdopen(fd, "wb") as file:
                while True:
                    data = stream.read(self.chunk_size)
                    if not data:
                        break
                    file.write(data)
            os.replace(temporary, path)
        except BaseException:
            os.unlink(temporary)
            raise

    def available(self, context, module_data):
        return os.path.isfile(self._path(module_data))

    def get_read_stream(self, context, module_data):
        return open(self._path(module_data), "rb")

    def get_size(self, context, module_data):
        return os.path.getsize(self._path(module_data))

    def delete(self, context, module_data):
        try:
            os.unlink(self._path(module_data))
        except FileNotFoundError:
            pass

    def statistics(self, context):
        usage = shutil.disk_usage(self.root)
        return json.dumps({"capacity": usage.total, "files": len(os.listdir(self.root))})

    def capabilities(self, context):
        return json.dumps({"cdmi_encryption": []})


class _XorStream:
    def __init__(self, inner, key):
        self.inner = inner
        self.key = key

    def read(self, n=-1):
        return bytes(b ^ self.key for b in self.inner.read(n))

    def seek(self, offset, whence=0):
        return self.inner.seek(offset, whence)

    def close(self):
        self.inner.close()


class XorModule:
    """Scrambles bytes with a one-byte key and stores them in another module.

    Args:
        inner: The store that keeps the scrambled bytes.
        key: The byte to XOR with.
    """

    def __init__(self, inner: str, key: int = 0x5A):
        self.inner = inner
        self.key = key

    def _inner(self, context):
        return context["func"].getModule(self.inner)

    def put(self, context, stream):
        return self._inner(context).put(context, _XorStream(stream, self.key))

    def get_read_stream(self, context, module_data):
        return _XorStream(self._inner(context).get_read_stream(context, module_data), self.key)

    def get_size(self, context, module_data):
        return self._inner(context).get_size(context, module_data)

    def available(self, context, module_data):
        return self._inner(context).available(context, module_data)

    def delete(self, context, module_data):
        self._inner(context).delete(context, module_data)
