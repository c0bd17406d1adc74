"""Writing exported records: JSONL or CSV, atomically, with an optional progress line."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import datetime
from decimal import Decimal
from enum import Enum
from pathlib import Path
from typing import IO, Any, TextIO

import attrs
import cattrs

__all__ = ["Progress", "RecordWriter", "atomic_output", "record_fields"]

_converter = cattrs.Converter()
_converter.register_unstructure_hook(datetime, lambda value: value.isoformat())
_converter.register_unstructure_hook(Decimal, str)
_converter.register_unstructure_hook_func(
    lambda tp: isinstance(tp, type) and issubclass(tp, Enum), lambda value: value.value
)


def _plain(value: object) -> object:
    """JSON-ready form of a model value: money as a decimal string, times in ISO 8601."""
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return _converter.unstructure(value)


def record_fields(model: type[Any]) -> list[str]:
    """The column names of a model: its attribute names, in declaration order."""
    return [field.name for field in attrs.fields(model)]


class RecordWriter:
    """Writes models as JSON lines or CSV rows; the per-class work is done once."""

    def __init__(self, stream: TextIO, model: type[Any], fmt: str) -> None:
        self._stream = stream
        self._names = record_fields(model)
        self._fmt = fmt
        self._csv = csv.writer(stream, lineterminator="\n") if fmt == "csv" else None
        if self._csv is not None:
            self._csv.writerow(self._names)

    def write(self, record: object) -> None:
        """Write one record."""
        values = [_plain(getattr(record, name)) for name in self._names]
        if self._csv is None:
            self._stream.write(json.dumps(dict(zip(self._names, values, strict=True)),
                                          ensure_ascii=False, separators=(",", ":")))
            self._stream.write("\n")
        else:
            self._csv.writerow([_cell(value) for value in values])


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return str(value)


@contextlib.contextmanager
def atomic_output(target: str) -> Iterator[TextIO]:
    """A text stream for ``target`` (``-`` is stdout).

    A file is written to a temporary file beside the target and renamed onto it only when
    the block ends without an exception, so an interrupted or failed export never leaves a
    partial file under the final name (and the temporary file is removed).
    """
    if target == "-":
        yield sys.stdout
        sys.stdout.flush()
        return
    path = Path(target)
    handle, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp",
                                         dir=path.parent if str(path.parent) else ".")
    try:
        with open(handle, "w", encoding="utf-8", newline="") as stream:
            yield stream
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp_name)
        raise


class Progress:
    """A one-line progress display on a terminal: records, pages, rate and ETA."""

    INTERVAL = 0.1  # seconds between redraws, at most

    def __init__(self, stream: IO[str] | None, label: str) -> None:
        self._stream = stream
        self._label = label
        self._started = time.monotonic()
        self._next_draw = 0.0
        self.records = 0

    def tick(self, records: int, pages: int, total: int | None) -> None:
        """Redraw if a terminal is attached and the last redraw is old enough."""
        now = time.monotonic()
        if self._stream is None or now < self._next_draw:
            return
        self._next_draw = now + self.INTERVAL
        elapsed = max(now - self._started, 1e-9)
        rate = records / elapsed
        line = f"{self._label}: {records:,} records, {pages:,} pages, {rate:,.0f}/s"
        if total and rate > 0 and total > records:
            line += f", ETA {(total - records) / rate:,.0f}s"
        elif total:
            line += f" of {total:,}"
        self._stream.write("\r" + line.ljust(78)[:120])
        self._stream.flush()

    def done(self) -> None:
        """Clear the progress line."""
        if self._stream is not None:
            self._stream.write("\r" + " " * 80 + "\r")
            self._stream.flush()


async def drain(records: AsyncIterator[Any], writer: RecordWriter,
                on_record: Callable[[int], None]) -> int:
    """Write every record of ``records``; call ``on_record(count)`` for each. Return count."""
    count = 0
    write = writer.write
    async for record in records:
        write(record)
        count += 1
        on_record(count)
    return count


def utf8_stdout() -> None:
    """Make stdout UTF-8 for exports to '-' whatever the locale says."""
    if isinstance(sys.stdout, io.TextIOWrapper) and sys.stdout.encoding.lower() != "utf-8":
        sys.stdout.reconfigure(encoding="utf-8")
