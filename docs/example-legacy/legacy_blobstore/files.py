"""A module written to the original SDK's guide: each object is a file of one directory."""

import json
import os
import shutil
import tempfile
import uuid


class FileModule:
    """Keeps each object in a file of one directory.

    Args:
        root: The directory (created if missing).
    """

    def __init__(self, **kwargs):
        self.root = kwargs["root"]
        os.makedirs(self.root, exist_ok=True)

    def _path(self, module_data):
        object_id = json.loads(module_data)["id"]
        if not (isinstance(object_id, str) and len(object_id) == 32 and object_id.isalnum()):
            raise ValueError("not a FileModule module_data")
        return os.path.join(self.root, object_id)

    def available(self, context, module_data):
        return os.path.isfile(self._path(module_data))

    def put(self, context, stream):
        module_data = json.dumps({"id": uuid.uuid4().hex})
        fd, temporary = tempfile.mkstemp(dir=self.root, prefix=".part-")
        try:
            with os.fdopen(fd, "wb") as file:
                while data := stream.read(1 << 16):
                    file.write(data)
            os.replace(temporary, self._path(module_data))
        except BaseException:
            os.unlink(temporary)
            raise
        return module_data

    def get_read_stream(self, context, module_data):
        return open(self._path(module_data), "rb")

    def delete(self, context, module_data):
        try:
            os.unlink(self._path(module_data))
        except FileNotFoundError:
            pass

    def statistics(self, context):
        usage = shutil.disk_usage(self.root)
        objects = sum(not name.startswith(".") for name in os.listdir(self.root))
        capacity = {"total": usage.total, "used": usage.used, "free": usage.free}
        return json.dumps({"capacity": capacity, "objects": objects})

    def capabilities(self, context):
        return json.dumps({"cdmi_encryption": []})
