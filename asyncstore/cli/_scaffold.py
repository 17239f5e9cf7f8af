"""new-plugin: scaffold a backend distribution with its entry point and conformance test."""

from __future__ import annotations

import re
from pathlib import Path

import click

_PYPROJECT = """\
[build-system]
requires = ["setuptools>=77"]
build-backend = "setuptools.build_meta"

[project]
name = "asyncstore-{dash}"
version = "0.1.0"
description = "The {name} storage module for asyncstore."
readme = "README.md"
requires-python = ">=3.10"
dependencies = ["asyncstore"]

[project.optional-dependencies]
# The suite runs on anyio's pytest plugin; pytest-asyncio is listed so that the option below
# is known (it silences pytest-asyncio's warning about it when installed).
test = ["pytest", "pytest-asyncio", "trio"]

[project.entry-points."asyncstore.modules"]
{name} = "{package}:{cls}"

[tool.setuptools.package-data]
{package} = ["py.typed"]

[tool.pytest.ini_options]
asyncio_default_fixture_loop_scope = "function"
"""

# A store with a blocking client (a file, a database driver): hooks run in worker threads.
_BLOCKING = '''\
"""The {name} storage module for asyncstore."""

from __future__ import annotations

from collections.abc import Iterable

from asyncstore.kv import BlockingKeyValueModule, Expected


class {cls}(BlockingKeyValueModule):
    """Stores objects in {name}.

    Args:
        path: Where the objects live (replace with your module's real options).
    """

    name = "{name}"
    url_path = "path"  # {name}:///some/where means path="/some/where"

    def __init__(self, *, path: str) -> None:
        self.path = path  # no I/O here: connect in _open()

    def _open(self) -> None:
        """Connect; runs once, in a worker thread, before the first hook."""
        raise NotImplementedError("TODO: connect to the store")

    def _close(self) -> None:
        """Disconnect; runs once, on aclose(), if _open() ran."""

    def _get(self, key: str, start: int, end: int) -> tuple[str, bytes] | None:
        """Return (record, value[start:end]) of the key, or None if it has none."""
        raise NotImplementedError("TODO: read the record and a range of the value")

    def _set(self, key: str, value: bytes, record: str, expected: Expected | None = None) -> bool:
        """Store the value and its record under the key, in one atomic step.

        With ``expected``, compare the record stored now with ``expected.record`` (None: no
        object) in that same step, and return False without writing if they differ. If your
        store cannot, remove the parameter: the module then declares no conditions.
        """
        raise NotImplementedError("TODO: write the value and its record atomically")

    def _delete(self, key: str, expected: Expected | None = None) -> bool:
        """Delete the key (a missing one is fine); ``expected`` as for _set."""
        raise NotImplementedError("TODO: delete the value and its record")

    def _scan(self, prefix: str) -> Iterable[tuple[str, str]]:
        """Return (key, record) of every key starting with prefix, in code-point order."""
        raise NotImplementedError("TODO: list the keys and records under prefix, sorted")
'''

# A store with an async client: the same hooks, awaited.
_ASYNC = '''\
"""The {name} storage module for asyncstore."""

from __future__ import annotations

from collections.abc import AsyncIterator

from asyncstore.kv import Expected, KeyValueModule


class {cls}(KeyValueModule):
    """Stores objects in {name}.

    Args:
        path: Where the objects live (replace with your module's real options).
    """

    name = "{name}"
    url_path = "path"  # {name}:///some/where means path="/some/where"

    def __init__(self, *, path: str) -> None:
        self.path = path  # no I/O here: connect in _open()

    async def _open(self) -> None:
        """Connect; runs once, before the first hook."""
        raise NotImplementedError("TODO: connect to the store")

    async def _close(self) -> None:
        """Disconnect; runs once, on aclose(), if _open() ran."""

    async def _get(self, key: str, start: int, end: int) -> tuple[str, bytes] | None:
        """Return (record, value[start:end]) of the key, or None if it has none."""
        raise NotImplementedError("TODO: read the record and a range of the value")

    async def _set(
        self, key: str, value: bytes, record: str, expected: Expected | None = None
    ) -> bool:
        """Store the value and its record under the key, in one atomic step.

        With ``expected``, compare the record stored now with ``expected.record`` (None: no
        object) in that same step, and return False without writing if they differ. If your
        store cannot, remove the parameter: the module then declares no conditions.
        """
        raise NotImplementedError("TODO: write the value and its record atomically")

    async def _delete(self, key: str, expected: Expected | None = None) -> bool:
        """Delete the key (a missing one is fine); ``expected`` as for _set."""
        raise NotImplementedError("TODO: delete the value and its record")

    async def _scan(self, prefix: str) -> AsyncIterator[tuple[str, str]]:
        """Yield (key, record) of every key starting with prefix, in code-point order."""
        raise NotImplementedError("TODO: list the keys and records under prefix, sorted")
        yield  # makes this an async generator
'''

# The whole contract, for stores that stream (object stores, filesystems).
_MODULE = '''\
"""The {name} storage module for asyncstore."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping

from asyncstore import ObjectInfo, ReadStream, StorageModule
from asyncstore.keys import validate_content_type, validate_key, validate_metadata, validate_prefix
from asyncstore.streams import ByteSource, check_range, iter_source


class {cls}(StorageModule):
    """Stores objects in {name}.

    Args:
        path: Where the objects live (replace with your module's real options).
    """

    name = "{name}"
    url_path = "path"  # {name}:///some/where means path="/some/where"

    def __init__(self, *, path: str) -> None:
        self.path = path

    async def assign(
        self,
        handle: str,
        source: ByteSource,
        *,
        metadata: Mapping[str, str] | None = None,
        content_type: str | None = None,
        overwrite: bool = True,
        if_match: str | None = None,
    ) -> str | None:
        """Store the bytes of ``source`` under ``handle``, atomically; return the new etag."""
        validate_key(handle, store=self.name)
        # Refuses conditions unless CAPABILITIES declares conditional_create/_replace.
        self._write_conditions(overwrite, if_match)
        validate_metadata(metadata, store=self.name)
        validate_content_type(content_type, store=self.name)
        async for chunk in iter_source(source):
            del chunk  # TODO: write the chunk to a temporary place
        raise NotImplementedError("TODO: publish the object atomically")

    async def get_read_stream(
        self, handle: str, *, start: int = 0, end: int | None = None, if_match: str | None = None
    ) -> ReadStream:
        """Open a stream of the object's bytes in ``[start, end)``."""
        check_range(start, end, store=self.name)
        validate_key(handle, store=self.name)
        self._check_read_condition(if_match)
        raise NotImplementedError("TODO: return a ReadStream subclass implementing _read_at")

    async def stat(self, handle: str) -> ObjectInfo:
        """Describe the object; raise NotFoundError (self._not_found) if it is absent."""
        validate_key(handle, store=self.name)
        raise NotImplementedError("TODO: return ObjectInfo(handle, size, ...)")

    async def list(self, prefix: str = "") -> AsyncIterator[ObjectInfo]:
        """Yield the objects whose keys start with ``prefix``, in code-point order."""
        validate_prefix(prefix, store=self.name)
        raise NotImplementedError("TODO: list in key order")
        yield  # makes this an async generator

    async def delete(self, handle: str, *, if_match: str | None = None) -> None:
        """Delete the object; a missing one is not an error."""
        validate_key(handle, store=self.name)
        self._check_delete_condition(if_match)
        raise NotImplementedError("TODO: delete")
'''

_TEMPLATES = {"blocking": _BLOCKING, "async": _ASYNC, "module": _MODULE}

_TEST = """\
import pytest

from asyncstore.testing import StorageModuleTests
from {package} import {cls}


class Test{cls}(StorageModuleTests):
    @pytest.fixture(params=["asyncio", "trio"])
    def anyio_backend(self, request):
        return request.param

    @pytest.fixture
    async def module(self, tmp_path):
        # A fresh, empty store for every check, in pytest's temporary directory.
        async with {cls}(path=str(tmp_path / "store")) as module:
            yield module
"""

_README = """\
# asyncstore-{dash}

The `{name}` storage module for [asyncstore](https://pypi.org/project/asyncstore/).

```sh
pip install -e '.[test]'
python -m pytest tests                      # the asyncstore conformance suite
asyncstore check '{name}:///tmp/try-{dash}'   # the same checks, through the installed plugin
```

Then `asyncstore plugins` lists `{name}`, and `asyncstore.open_store("{name}:///some/where")`
opens it. Fill in the methods of `{package}/__init__.py` until the conformance suite passes;
see asyncstore's "Writing a backend" guide.
"""


def scaffold(name: str, directory: Path, base: str = "blocking") -> Path:
    """Write a backend distribution for ``name`` under ``directory``; return its root.

    ``base`` picks the module skeleton: ``"blocking"`` (`asyncstore.kv.BlockingKeyValueModule`,
    for a store with a blocking client), ``"async"`` (`asyncstore.kv.KeyValueModule`, for an
    async client) or ``"module"`` (the whole `asyncstore.StorageModule` contract).

    Raises:
        click.BadParameter: If the name is not a valid plugin name.
        click.ClickException: If the target folder already exists.
    """
    if not re.fullmatch(r"[a-z][a-z0-9_]*", name):
        raise click.BadParameter(
            f"{name!r}: use lower-case letters, digits and '_', starting with a letter",
            param_hint="NAME",
        )
    dash = name.replace("_", "-")
    package = f"asyncstore_{name}"
    cls = "".join(part.capitalize() for part in name.split("_")) + "Module"
    root = directory / f"asyncstore-{dash}"
    if root.exists():
        raise click.ClickException(f"{root} already exists")
    values = {"name": name, "dash": dash, "package": package, "cls": cls}
    files = {
        "pyproject.toml": _PYPROJECT,
        f"{package}/__init__.py": _TEMPLATES[base],
        f"{package}/py.typed": "",
        "tests/test_conformance.py": _TEST,
        "README.md": _README,
    }
    for relative, template in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(template.format(**values))
    return root


@click.command(name="new-plugin")
@click.argument("name")
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="Where to create the distribution.",
)
@click.option(
    "--base",
    type=click.Choice(sorted(_TEMPLATES)),
    default="blocking",
    show_default=True,
    help="blocking: four key-value hooks run in threads (a blocking client); async: the same "
    "hooks awaited; module: the whole contract, for stores that stream.",
)
def new_plugin(name: str, directory: Path, base: str) -> None:
    """Scaffold a backend distribution.

    Writes a pyproject with the entry point, a module skeleton, a conformance test and a README.
    """
    root = scaffold(name, directory, base)
    click.echo(f"created {root}")
    click.echo(f"next: fill in {root / ('asyncstore_' + name) / '__init__.py'}, then")
    click.echo(f"      pip install -e '{root}[test]' && python -m pytest {root / 'tests'}")
    click.echo(f"last: asyncstore check '{name}:///a/scratch/place'")
