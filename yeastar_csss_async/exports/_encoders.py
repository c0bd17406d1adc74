"""Export formats: records in, bytes out, on the writer thread.

An :class:`Encoder` is driven by :class:`._writer.BackgroundWriter`: ``begin`` once, ``encode``
per batch, ``end`` once after the last batch (only when the export succeeded), and ``close``
always, last. JSONL and CSV are text written as they come; ``--format csv --excel`` is CSV
laid out like the xlsx sheet (see :mod:`._columns`); xlsx lives in :mod:`._xlsx`.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from .._jsonable import to_jsonable
from ._cells import excel_safe_text, excel_time, json_text, record_fields
from ._columns import CellKind, Table, table_of
from ._files import Output

__all__ = [
    "FORMATS",
    "CsvEncoder",
    "Encoder",
    "ExcelCsvEncoder",
    "JsonLinesEncoder",
    "TextEncoder",
    "make_encoder",
]

FORMATS = ("jsonl", "csv", "xlsx")
"""``--format`` choices; the file extension of each is its name."""


class Encoder(Protocol):
    """Turns batches of records into one output format (called on the writer thread)."""

    def begin(self, output: Output) -> None:
        """Write what comes before the first record (a header, a byte order mark)."""

    def encode(self, records: Sequence[object], output: Output) -> None:
        """Write ``records`` (or keep them, for a format that is assembled at the end)."""

    def end(self, output: Output) -> None:
        """Write what comes after the last record; called only when the export succeeded."""

    def close(self) -> None:
        """Release what the encoder holds (temporary files); called last, whatever happened."""


class TextEncoder:
    """A text format: ``header()`` once, then ``format(records)`` per batch, as UTF-8."""

    prefix = b""
    """Bytes before the header (a byte order mark)."""

    def header(self) -> str:
        """What goes before the first record (may be empty)."""
        return ""

    def format(self, records: Sequence[object]) -> str:
        """The text of ``records``, newline-terminated."""
        raise NotImplementedError

    def begin(self, output: Output) -> None:
        text = self.prefix + self.header().encode("utf-8")
        if text:
            output.write(text)

    def encode(self, records: Sequence[object], output: Output) -> None:
        # An unpaired surrogate (a server may send one JSON-escaped) is not UTF-8: it is
        # written as its escape, ``\\ud800``, which is what JSON would have sent.
        output.write(self.format(records).encode("utf-8", "backslashreplace"))

    def end(self, output: Output) -> None:
        """Nothing: a text format is complete after its last record."""

    def close(self) -> None:
        """Nothing to release."""


class JsonLinesEncoder(TextEncoder):
    """One JSON object per line, as :func:`~yeastar_csss_async.to_jsonable` gives it."""

    def __init__(self, model: type[Any]) -> None:
        del model  # every record says what it holds

    def format(self, records: Sequence[object]) -> str:
        return "".join(json_text(record) + "\n" for record in records)


class _CsvText(TextEncoder):
    """The csv module's writer, reused for every batch; rows end with ``newline``.

    The csv module quotes a field holding a character of the line terminator, and no other
    line break: with ``\n`` rows, a lone carriage return in a field would be left bare, and
    readers end the row there. Such rows are written again with ``\r\n`` (which quotes
    it) and given back their ``\n``.
    """

    newline = "\n"

    def __init__(self) -> None:
        self._buffer = io.StringIO()
        self._writer = csv.writer(self._buffer, lineterminator=self.newline)
        self._crlf_writer = csv.writer(self._buffer, lineterminator="\r\n")

    def _rows(self, rows: list[list[str]]) -> str:
        text = self._render(self._writer, rows)
        if self.newline == "\r\n" or "\r" not in text:
            return text
        return "".join(self._render(self._crlf_writer, [row])[:-2] + "\n" for row in rows)

    def _render(self, writer: Any, rows: list[list[str]]) -> str:
        buffer = self._buffer
        buffer.seek(0)
        buffer.truncate()
        writer.writerows(rows)
        return buffer.getvalue()


class CsvEncoder(_CsvText):
    """CSV with one column per attribute; nested values as JSON text, times in ISO 8601."""

    def __init__(self, model: type[Any]) -> None:
        super().__init__()
        self._names = record_fields(model)

    def header(self) -> str:
        return self._rows([self._names])

    def format(self, records: Sequence[object]) -> str:
        names = self._names
        rows = []
        for record in records:
            fields = to_jsonable(record)
            assert isinstance(fields, dict)
            rows.append([_plain_cell(fields[name]) for name in names])
        return self._rows(rows)


def _plain_cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return str(value)


class ExcelCsvEncoder(_CsvText):
    """CSV for spreadsheets (``--excel``): a UTF-8 byte order mark, the xlsx sheet's flattened
    columns, times as ``YYYY-MM-DD HH:MM:SS``, lists of models as JSON text cells, text
    that a spreadsheet would run as a formula prefixed with ``'``, and ``\r\n`` rows."""

    prefix = b"\xef\xbb\xbf"
    newline = "\r\n"  # what Excel writes (RFC 4180)

    def __init__(self, model: type[Any]) -> None:
        super().__init__()
        self._table: Table = table_of(model, "", child_tables=False)
        self._cells = [(column.get, _EXCEL_CELLS[column.kind]) for column in self._table.columns]

    def header(self) -> str:
        return self._rows([self._table.headers])

    def format(self, records: Sequence[object]) -> str:
        cells = self._cells
        return self._rows(
            [
                ["" if (value := get(record)) is None else cell(value) for get, cell in cells]
                for record in records
            ]
        )


_EXCEL_CELLS: dict[CellKind, Callable[[Any], str]] = {
    "text": excel_safe_text,
    "int": str,
    "decimal": str,
    "utc_time": excel_time,
    "time": excel_time,
    "json": json_text,
}


def make_encoder(
    model: type[Any], fmt: str, *, excel: bool = False, sheet: str = "records"
) -> Encoder:
    """The encoder for ``--format fmt`` (``excel``: ``--excel``; ``sheet``: the xlsx sheet).

    xlsx needs openpyxl: an ``ImportError`` naming the extra when it is not installed.
    """
    if fmt == "xlsx":
        from ._xlsx import XlsxEncoder  # openpyxl only when asked for

        return XlsxEncoder(model, sheet)
    if fmt == "csv":
        return ExcelCsvEncoder(model) if excel else CsvEncoder(model)
    return JsonLinesEncoder(model)
