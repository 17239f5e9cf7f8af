"""new-transform: scaffold a transform distribution with its entry point and tests."""

from __future__ import annotations

import re
from pathlib import Path

import click

_PYPROJECT = """\
[build-system]
requires = ["setuptools>=77"]
build-backend = "setuptools.build_meta"

[project]
name = "asyncstore-transform-{dash}"
version = "0.1.0"
description = "The {name} stream transform for asyncstore."
readme = "README.md"
requires-python = ">=3.10"
dependencies = ["asyncstore"]

[project.optional-dependencies]
test = ["pytest", "trio"]

[project.entry-points."asyncstore.transforms"]
{name} = "{package}:{cls}"

[tool.setuptools.package-data]
{package} = ["py.typed"]
"""

_MODULE = '''\
"""The {name} stream transform for asyncstore."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import ClassVar

from asyncstore.transforms import InputStream, OutputStream, Transform


class {cls}(Transform):
    """Passes its input through, recording ``tag`` in the output's metadata.

    Replace the body of ``__call__`` with your transform; keep its three steps.
    """

    PARAMS: ClassVar[Mapping[str, str] | None] = {{
        "tag": "a value recorded as the output's '{name}-tag' metadata",
    }}

    def check_params(self, params: Mapping[str, str]) -> None:
        """Refuse bad parameters before any I/O (raise ValueError)."""
        super().check_params(params)
        if len(params.get("tag", "")) > 100:
            raise ValueError("tag must be at most 100 characters")

    async def __call__(
        self,
        inputs: Sequence[InputStream],
        outputs: Sequence[OutputStream],
        params: Mapping[str, str],
    ) -> None:
        """Stream the input to the output."""
        (source,) = inputs
        (target,) = outputs
        # 1. Metadata and content type first: they are fixed by the first write.
        metadata = dict(source.info.metadata)
        if "tag" in params:
            metadata["{name}-tag"] = params["tag"]
        target.set_metadata(metadata, content_type=source.info.content_type)
        # 2. The bytes, a chunk at a time (each write waits while the consumer is busy).
        async for chunk in source:
            await target.write(chunk)  # TODO: transform the chunk
        # 3. The host closes the output when this returns; raise to fail (nothing is stored).
'''

_TEST = """\
import pytest

from asyncstore.testing.transforms import Sample, TransformTests, run_on_bytes
from {package} import {cls}


class Test{cls}(TransformTests):
    \"\"\"The checks every transform passes.\"\"\"

    sample_inputs = (Sample(b"some bytes\\n" * 1000, metadata={{"owner": "ann"}}),)
    bad_params = ({{"tag": "x" * 101}},)

    @pytest.fixture
    def transform(self):
        return {cls}()


@pytest.mark.anyio
async def test_the_tag_is_recorded():
    (out,) = await run_on_bytes({cls}(), [b"abc"], params={{"tag": "t1"}})
    assert out.data == b"abc"
    assert out.metadata == {{"{name}-tag": "t1"}}
"""

_README = """\
# asyncstore-transform-{dash}

The `{name}` stream transform for [asyncstore](https://pypi.org/project/asyncstore/).

```sh
pip install -e '.[test]'
python -m pytest tests      # the checks every transform passes, and its own tests
```

Then `asyncstore plugins` lists `{name}` as a transform, and it runs on stored objects:

```sh
asyncstore run {name} local:in.txt -o local:out.txt -p tag=hello
```

Fill in `{package}/__init__.py`; see asyncstore's guide to transforms (docs/transforms.md).
"""


def scaffold_transform(name: str, directory: Path) -> Path:
    """Write a transform distribution for ``name`` under ``directory``; return its root.

    Raises:
        click.BadParameter: If the name is not a valid transform name.
        click.ClickException: If the target folder already exists.
    """
    if not re.fullmatch(r"[a-z][a-z0-9]*(?:[-_][a-z0-9]+)*", name):
        raise click.BadParameter(
            f"{name!r}: use lower-case letters and digits, words joined by '-' or '_', "
            "starting with a letter",
            param_hint="NAME",
        )
    words = re.split(r"[-_]", name)
    dash = "-".join(words)
    package = "asyncstore_transform_" + "_".join(words)
    cls = "".join(word.capitalize() for word in words) + "Transform"
    root = directory / f"asyncstore-transform-{dash}"
    if root.exists():
        raise click.ClickException(f"{root} already exists")
    values = {"name": name, "dash": dash, "package": package, "cls": cls}
    files = {
        "pyproject.toml": _PYPROJECT,
        f"{package}/__init__.py": _MODULE,
        f"{package}/py.typed": "",
        "tests/test_transform.py": _TEST,
        "README.md": _README,
    }
    for relative, template in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(template.format(**values))
    return root


@click.command(name="new-transform")
@click.argument("name")
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="Where to create the distribution.",
)
def new_transform(name: str, directory: Path) -> None:
    """Scaffold a transform distribution.

    Writes a pyproject with the entry point, a working transform to change, its tests (the
    checks every transform passes) and a README.
    """
    root = scaffold_transform(name, directory)
    package = "asyncstore_transform_" + "_".join(re.split(r"[-_]", name))
    click.echo(f"created {root}")
    click.echo(f"next: change {root / package / '__init__.py'}, then")
    click.echo(f"      pip install -e '{root}[test]' && python -m pytest {root / 'tests'}")
