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
test = ["pytest", "trio"]

[project.entry-points."asyncstore.modules"]
{name} = "{package}:{cls}"

[tool.setuptools.package-data]
{package} = ["py.typed"]
"""

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
        location: Where the objects live (replace with your module's real options).
    """

    name = "{name}"

    def __init__(self, *, location: str = "") -> None:
        self.location = location

    async def assign(
        self,
        handle: str,
        source: ByteSource,
        *,
        metadata: Mapping[str, str] | None = None,
        content_type: str | None = None,
    ) -> None:
        """Store the bytes of ``source`` under ``handle``, atomically."""
        validate_key(handle, store=self.name)
        validate_metadata(metadata, store=self.name)
        validate_content_type(content_type, store=self.name)
        async for chunk in iter_source(source):
            del chunk  # TODO: write the chunk to a temporary place
        raise NotImplementedError("TODO: publish the object atomically")

    async def get_read_stream(
        self, handle: str, *, start: int = 0, end: int | None = None
    ) -> ReadStream:
        """Open a stream of the object's bytes in ``[start, end)``."""
        check_range(start, end, store=self.name)
        validate_key(handle, store=self.name)
        raise NotImplementedError("TODO: return a ReadStream subclass implementing _read_at")

    async def stat(self, handle: str) -> ObjectInfo:
        """Describe the object; raise NotFoundError if it is absent."""
        validate_key(handle, store=self.name)
        raise NotImplementedError("TODO: return ObjectInfo(handle, size, ...)")

    async def list(self, prefix: str = "") -> AsyncIterator[ObjectInfo]:
        """Yield the objects whose keys start with ``prefix``, in key order."""
        validate_prefix(prefix, store=self.name)
        raise NotImplementedError("TODO: list in key order")
        yield  # makes this an async generator

    async def delete(self, handle: str) -> None:
        """Delete the object; a missing one is not an error."""
        validate_key(handle, store=self.name)
        raise NotImplementedError("TODO: delete")
'''

_TEST = """\
import pytest

from asyncstore.testing import StorageModuleTests
from {package} import {cls}


class Test{cls}(StorageModuleTests):
    @pytest.fixture
    async def module(self):
        async with {cls}() as module:
            yield module
"""

_README = """\
# asyncstore-{dash}

The `{name}` storage module for [asyncstore](https://pypi.org/project/asyncstore/).

```sh
pip install -e '.[test]'
python -m pytest tests      # the asyncstore conformance suite
```

Then `asyncstore plugins` lists `{name}`, and `asyncstore.open_store("{name}://")` opens it.
Fill in the methods of `{package}/__init__.py` until the conformance suite passes; see
asyncstore's "Writing a backend" guide.
"""


def scaffold(name: str, directory: Path) -> Path:
    """Write a backend distribution for ``name`` under ``directory``; return its root.

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
        f"{package}/__init__.py": _MODULE,
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
def new_plugin(name: str, directory: Path) -> None:
    """Scaffold a backend distribution.

    Writes a pyproject with the entry point, a module skeleton, a conformance test and a README.
    """
    root = scaffold(name, directory)
    click.echo(f"created {root}")
    click.echo(f"next: fill in {root / ('asyncstore_' + name) / '__init__.py'}, then")
    click.echo(f"      pip install -e '{root}[test]' && python -m pytest {root / 'tests'}")
