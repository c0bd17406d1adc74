"""``--format xlsx``: records as an Excel workbook, streamed through openpyxl's write-only mode.

Rows go to openpyxl's temporary files as they come (memory stays flat whatever the count); the
workbook is zipped onto the export's output at the end, so it takes the same path as every
format (a file is written beside its name and renamed only when complete). Columns follow
:mod:`._columns`; the cells are typed:

* ids, codes and other text are text cells (a 19-digit ``plan_id`` stays text), in columns
  formatted as text (``@``); text starting with ``=`` or spelling an error (``#N/A``) stays
  text, never a formula; characters XML cannot hold become U+FFFD; text past Excel's 32,767
  characters per cell is cut, with a warning;
* times are date cells (UTC times without their zone: the header says ``(UTC)``); a time
  before 1900, which Excel cannot show, is ISO 8601 text;
* money is a number written with exactly its digits (not through a float), shown with as
  many decimals as sent; money with more than 15 significant digits, which no spreadsheet
  number holds, is text (with a warning);
* whole numbers are numbers (text past 15 digits, like money); JSON lists are JSON text.

A sheet holds at most 1,048,576 rows; a longer list goes on in ``NAME (2)``, ``NAME (3)``...

openpyxl is imported when this module is: the CLI imports it only for ``--format xlsx`` and
reports its ``ImportError`` (which names the extra) as a usage error.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

try:
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.cell.cell import ERROR_CODES, ILLEGAL_CHARACTERS_RE
    from openpyxl.utils import get_column_letter
    from openpyxl.worksheet._write_only import WriteOnlyWorksheet
except ImportError as error:  # the [xlsx] extra is not installed
    raise ImportError(
        "--format xlsx needs openpyxl: pip install 'yeastar-csss-async[xlsx]'"
    ) from error

from .._jsonable import to_jsonable
from ._cells import json_text
from ._columns import CellKind, Column, Table, table_of
from ._files import Output

__all__ = ["MAX_ROWS", "XlsxEncoder"]

MAX_ROWS = 1_048_576
"""Rows in one Excel sheet, the header included."""
MAX_TEXT = 32_767
"""Characters in one Excel cell."""
MAX_DIGITS = 15
"""Significant digits a spreadsheet number keeps; money with more is written as text."""

_logger = logging.getLogger("yeastar_csss_async.cli")


class _Sheet:
    """A table written to one sheet after another as each fills up."""

    def __init__(
        self, workbook: Workbook, title: str, columns: Sequence[Column], max_rows: int
    ) -> None:
        self._workbook = workbook
        self._title = title
        self._headers = [column.header for column in columns]
        self._text_columns = [
            index for index, column in enumerate(columns, 1) if column.kind in ("text", "json")
        ]
        self._max_rows = max_rows
        self._count = 0
        self._rows = max_rows  # no sheet yet
        self._sheet: WriteOnlyWorksheet | None = None

    def append(self, row: list[Any]) -> None:
        if self._rows >= self._max_rows:
            self._start_sheet()
        assert self._sheet is not None
        self._sheet.append(row)
        self._rows += 1

    def ensure_started(self) -> None:
        """Make the first sheet, so that even an empty list has its header row."""
        if self._sheet is None:
            self._start_sheet()

    @property
    def current(self) -> WriteOnlyWorksheet:
        """The sheet rows go to now."""
        assert self._sheet is not None
        return self._sheet

    def _start_sheet(self) -> None:
        self._count += 1
        title = self._title if self._count == 1 else f"{self._title} ({self._count})"
        sheet = self._workbook.create_sheet(title)
        assert isinstance(sheet, WriteOnlyWorksheet)
        sheet.freeze_panes = "A2"
        columns = sheet.column_dimensions  # type: ignore[attr-defined]  # the stubs miss it
        for index in self._text_columns:  # typed over by hand stays text
            columns[get_column_letter(index)].number_format = "@"
        sheet.append(self._headers)
        self._sheet = sheet
        self._rows = 1


class XlsxEncoder:
    """The records of one list as a workbook: the list's sheet, and a sheet per list of
    models in each record (``services``: one row per service, keyed by ``product_no``)."""

    max_rows = MAX_ROWS

    def __init__(self, model: type[Any], sheet: str) -> None:
        self._table: Table = table_of(model, sheet, child_tables=True)
        self._workbook: Workbook | None = None
        self._warned: set[str] = set()
        self._cells = self._converters(self._table.columns)
        self._children = [
            (child.attribute, child.key.get, self._converters(child.table.columns))
            for child in self._table.children
        ]
        self._sheets: list[_Sheet] = []

    def _converters(
        self, columns: Sequence[Column]
    ) -> list[tuple[Callable[[Any], object], Callable[[Any], object]]]:
        return [(column.get, self._cell_maker(column)) for column in columns]

    def begin(self, output: Output) -> None:
        workbook = Workbook(write_only=True)
        self._workbook = workbook
        table = self._table
        self._sheets = [_Sheet(workbook, table.name[:31], table.columns, self.max_rows)]
        for child in table.children:
            self._sheets.append(
                _Sheet(
                    workbook,
                    child.table.name[:31],
                    (child.key, *child.table.columns),
                    self.max_rows,
                )
            )
        for sheet in self._sheets:  # headers first, even for a list with no records
            sheet.ensure_started()

    def encode(self, records: Sequence[object], output: Output) -> None:
        main, *children = self._sheets
        cells = self._cells
        for record in records:
            main.append(
                [None if (value := get(record)) is None else cell(value) for get, cell in cells]
            )
            for sheet, (attribute, key, item_cells) in zip(children, self._children, strict=True):
                items = getattr(record, attribute)
                if items:
                    key_value = key(record)
                    for item in items:  # a cell object per row: openpyxl reuses what it gets
                        sheet.append(
                            [
                                None if key_value is None else cells[0][1](key_value),
                                *(
                                    None if (value := get(item)) is None else cell(value)
                                    for get, cell in item_cells
                                ),
                            ]
                        )

    def end(self, output: Output) -> None:
        assert self._workbook is not None
        self._workbook.save(
            _ZipTarget(output) if not output.seekable else _SeekableZipTarget(output)
        )

    def close(self) -> None:
        """Remove openpyxl's temporary sheet files (after a save they are gone already)."""
        workbook, self._workbook = self._workbook, None
        if workbook is None:
            return
        for sheet in workbook.worksheets:  # openpyxl's private parts: best effort
            rows = getattr(sheet, "_rows", None)
            if rows is not None:  # end the row generator while its file is open, or it
                with contextlib.suppress(Exception):  # writes to a closed one when collected
                    rows.close()
            writer = getattr(sheet, "_writer", None)
            if writer is not None:
                with contextlib.suppress(Exception):
                    writer.close()
                    writer.cleanup()

    # --- cells -------------------------------------------------------------------------------

    def _cell_maker(self, column: Column) -> Callable[[Any], object]:
        kind: CellKind = column.kind
        if kind == "text":
            return lambda value: self._text(column.header, value)
        if kind == "json":
            return lambda value: self._text(column.header, json_text(value))
        if kind == "decimal":
            return lambda value: self._money(column.header, value)
        if kind in ("utc_time", "time"):
            return _excel_time
        return lambda value: self._whole(column.header, value)

    def _text(self, header: str, value: object) -> object:
        text = value if type(value) is str else str(to_jsonable(value))
        if ILLEGAL_CHARACTERS_RE.search(text):
            text = ILLEGAL_CHARACTERS_RE.sub("\ufffd", text)
        if len(text) > MAX_TEXT:
            if header not in self._warned:
                self._warned.add(header)
                _logger.warning(
                    "xlsx: %s holds a value of %d characters; a cell keeps %d: cut",
                    header,
                    len(text),
                    MAX_TEXT,
                )
            text = text[:MAX_TEXT]
        if (text[:1] == "=" and len(text) > 1) or text in ERROR_CODES:
            cell = WriteOnlyCell(self._sheets[0].current, value=text)
            cell.data_type = "s"  # written as text: never a formula or an error value
            # A styled cell: openpyxl then takes a fresh cell for the next value of the row
            # (an unstyled one it would reuse, and overwrite).
            cell.number_format = "@"
            return cell
        return text

    def _whole(self, header: str, value: int) -> object:
        if -(10**MAX_DIGITS) < value < 10**MAX_DIGITS:
            return value
        return self._money(header, Decimal(value))

    def _money(self, header: str, value: Decimal) -> object:
        digits = value.as_tuple()
        if len(digits.digits) > MAX_DIGITS or not -300 <= value.adjusted() <= 300:
            # More digits than a spreadsheet number holds: text keeps every one of them.
            if header not in self._warned:
                self._warned.add(header)
                _logger.warning(
                    "xlsx: %s holds %s, more digits than a spreadsheet number "
                    "keeps: written as text",
                    header,
                    str(value)[:80],
                )
            return self._text(header, str(value))
        cell = WriteOnlyCell(self._sheets[0].current, value=value)  # type: ignore[arg-type]
        # openpyxl would write the Decimal through a float ("%.16g"); the value's own
        # text keeps exactly the digits sent (a number cell, data type "n").
        cell._value = str(value)  # type: ignore[attr-defined]  # private, not in the stubs
        exponent = digits.exponent
        if isinstance(exponent, int) and -10 <= exponent < 0:
            cell.number_format = "0." + "0" * -exponent  # as many decimals as sent
        return cell


def _excel_time(value: datetime) -> object:
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    if value.year < 1900:  # before Excel's first day: text that says what it is
        return value.isoformat(sep=" ")
    return value


class _ZipTarget:
    """The export's output as the write-only file object ``zipfile`` streams to."""

    def __init__(self, output: Output) -> None:
        self._output = output

    def write(self, data: bytes) -> int:
        self._output.write(bytes(data))
        return len(data)

    def flush(self) -> None:
        """Nothing buffered here."""


class _SeekableZipTarget(_ZipTarget):
    """A file being replaced: ``zipfile`` writes sizes into each entry's header in place."""

    def tell(self) -> int:
        return self._output.tell()

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._output.seek(offset, whence)

    def seekable(self) -> bool:
        return True
