"""The examples of docs/coordination.md run as written, on memory and on a filesystem store."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "coordination.md"
EXAMPLES = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)
EXPECTED = [
    "the first holder knows it lost the lease",
    "committed versions [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]",
    "members ['ana', 'bo', 'cy', 'dee', 'eli']",
]


def test_the_page_has_its_examples() -> None:
    assert len(EXAMPLES) == len(EXPECTED)


@pytest.mark.parametrize("index", range(len(EXPECTED)), ids=["lease", "commit", "cas"])
@pytest.mark.parametrize("store", ["memory", "fs"])
def test_example_runs(tmp_path: Path, index: int, store: str) -> None:
    code = EXAMPLES[index]
    assert '"memory://"' in code
    if store == "fs":
        code = code.replace('"memory://"', repr(f"fs://{tmp_path}?fsync=false"))
    script = tmp_path / "example.py"
    script.write_text(code)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == EXPECTED[index]
