"""The ``csv-select`` transform: choose columns and filter rows of a CSV object, streaming.

The classic analytics use of storage-side compute: only the rows and columns asked for leave
the store. ``columns=name,age`` keeps those columns, in that order; ``where="age >= 30"``
keeps the rows where the condition holds (``==``, ``!=``, ``<``, ``<=``, ``>``, ``>=``;
numbers compare as numbers when both sides are numbers, anything else as text; quote a
name or value that has spaces or operators: ``where='"last name" == "O''Brien, J"'``). The
header row is kept (with the chosen columns).

A worked example of a streaming text transform: bytes are decoded incrementally, cut into
whole records (a quoted field may span lines), parsed and written a batch at a time, so
memory holds one input chunk whatever the object's size.
"""

from __future__ import annotations

import codecs
import csv
import io
import operator
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from asyncstore.transforms._contract import Transform
from asyncstore.transforms._streams import InputStream, OutputStream

__all__ = ["Condition", "CsvSelectTransform", "parse_condition"]

_OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<=": operator.le,
    ">=": operator.ge,
    "<": operator.lt,
    ">": operator.gt,
}
_TERM = r'"(?:[^"]|"")*"|[^\s=!<>"]+'
_CONDITION = re.compile(
    rf"^\s*(?P<column>{_TERM})\s*(?P<op>==|!=|<=|>=|<|>)\s*(?P<value>{_TERM}|)\s*$"
)


def _unquote(term: str) -> str:
    if len(term) >= 2 and term[0] == term[-1] == '"':
        return term[1:-1].replace('""', '"')
    return term


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


@dataclass(frozen=True)
class Condition:
    """A parsed ``column op value`` row filter."""

    column: str
    """The column compared."""
    op: str
    """The operator: ``==``, ``!=``, ``<``, ``<=``, ``>`` or ``>=``."""
    value: str
    """The value compared with."""

    def holds(self, cell: str) -> bool:
        """Whether the condition holds for a cell: numerically if both are numbers."""
        compare = _OPERATORS[self.op]
        left, right = _number(cell), _number(self.value)
        if left is not None and right is not None:
            return compare(left, right)
        return compare(cell, self.value)


def parse_condition(text: str) -> Condition:
    """Parse ``column op value``.

    Raises:
        ValueError: If the text is not of that form.
    """
    match = _CONDITION.match(text)
    if match is None:
        raise ValueError(
            f"where must be 'column op value' with op one of == != < <= > >=, not {text!r}"
        )
    return Condition(
        _unquote(match.group("column")), match.group("op"), _unquote(match.group("value"))
    )


def _columns(text: str | None) -> list[str] | None:
    if text is None:
        return None
    names = next(csv.reader([text]))
    names = [name.strip() for name in names]
    if not names or any(not name for name in names):
        raise ValueError(f"columns must be a comma-separated list of names, not {text!r}")
    return names


class _Records:
    """Cuts decoded text into whole CSV records: a record ends at a line end outside quotes."""

    def __init__(self) -> None:
        self._partial = ""  # an unfinished line, or the lines of a record with an open quote

    def feed(self, text: str, final: bool = False) -> list[str]:
        """Return the records that ``text`` completes; keep the rest for the next call."""
        # Only \n, \r and \r\n end lines (str.splitlines would also cut at \x0c and others).
        lines = io.StringIO(self._partial + text, newline="").readlines()
        self._partial = ""
        records: list[str] = []
        pending: list[str] = []
        quotes = 0
        for index, line in enumerate(lines):
            if not final and index == len(lines) - 1 and not line.endswith("\n"):
                # Unfinished, or ending in \r that a \n in the next chunk may complete.
                pending.append(line)
                break
            pending.append(line)
            quotes += line.count('"')
            if quotes % 2 == 0:
                records.append("".join(pending))
                pending, quotes = [], 0
        self._partial = "".join(pending)
        return records


class CsvSelectTransform(Transform):
    """Keeps chosen columns (``columns``) and the rows matching ``where`` of a CSV object."""

    PARAMS: ClassVar[Mapping[str, str] | None] = {
        "columns": "comma-separated column names to keep, in order (all by default)",
        "where": "a row filter 'column op value' (op: == != < <= > >=)",
        "delimiter": "the field separator (',' by default)",
        "encoding": "the text encoding (utf-8 by default)",
    }

    def check_params(self, params: Mapping[str, str]) -> None:
        """Parse every parameter, so that a bad one fails before any I/O."""
        super().check_params(params)
        _columns(params.get("columns"))
        if "where" in params:
            parse_condition(params["where"])
        if len(params.get("delimiter", ",")) != 1:
            raise ValueError("delimiter must be one character")
        try:
            codecs.lookup(params.get("encoding", "utf-8"))
        except LookupError:
            raise ValueError(f"unknown encoding {params['encoding']!r}") from None

    async def __call__(
        self,
        inputs: Sequence[InputStream],
        outputs: Sequence[OutputStream],
        params: Mapping[str, str],
    ) -> None:
        """Stream the selected columns of the matching rows, header first."""
        (source,) = inputs
        (target,) = outputs
        target.set_metadata(
            source.info.metadata, content_type=source.info.content_type or "text/csv"
        )
        encoding = params.get("encoding", "utf-8")
        delimiter = params.get("delimiter", ",")
        wanted = _columns(params.get("columns"))
        condition = parse_condition(params["where"]) if "where" in params else None
        decoder = codecs.getincrementaldecoder(encoding)()
        records = _Records()
        selection: _Selection | None = None
        final = False
        while not final:
            chunk = await source.read(source.chunk_size)
            final = not chunk
            batch = records.feed(decoder.decode(chunk, final=final), final=final)
            if not batch:
                continue
            for row in csv.reader(batch, delimiter=delimiter):
                if not row:
                    continue  # a blank line is no row
                if selection is None:
                    selection = _Selection(row, wanted, condition, delimiter, batch[0])
                    selection.write_row(row, force=True)
                else:
                    selection.write_row(row)
            if selection is not None and (text := selection.take()):
                await target.write(text.encode(encoding))


class _Selection:
    """The columns and filter resolved against the header, and the output being built."""

    def __init__(
        self,
        header: list[str],
        wanted: list[str] | None,
        condition: Condition | None,
        delimiter: str,
        first_record: str,
    ) -> None:
        positions = {name: index for index, name in enumerate(header)}
        missing = [name for name in (wanted or []) if name not in positions]
        if condition is not None and condition.column not in positions:
            missing.append(condition.column)
        if missing:
            raise ValueError(
                f"no column(s) {', '.join(map(repr, missing))} in the header "
                f"(columns: {', '.join(header)})"
            )
        self._keep = [positions[name] for name in wanted] if wanted else None
        self._test = None if condition is None else (positions[condition.column], condition)
        newline = "\r\n" if first_record.endswith("\r\n") else "\n"
        self._buffer = io.StringIO()
        self._writer = csv.writer(self._buffer, delimiter=delimiter, lineterminator=newline)

    def write_row(self, row: list[str], *, force: bool = False) -> None:
        if not force and self._test is not None:
            index, condition = self._test
            if index >= len(row) or not condition.holds(row[index]):
                return
        if self._keep is not None:
            row = [row[i] if i < len(row) else "" for i in self._keep]
        self._writer.writerow(row)

    def take(self) -> str:
        text = self._buffer.getvalue()
        self._buffer.seek(0)
        self._buffer.truncate()
        return text
