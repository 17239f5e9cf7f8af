"""Fixtures of the reliability harness (see `tests.reliability.harness`)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.reliability.harness import Figures


@pytest.fixture(scope="session")
def figures() -> Iterator[Figures]:
    """Where tests record what they measured; saved when ASYNCSTORE_RELIABILITY_FIGURES is set."""
    collected = Figures()
    yield collected
    target = os.environ.get("ASYNCSTORE_RELIABILITY_FIGURES")
    if target:
        collected.save(Path(target))
