"""Writing exported records: JSONL or CSV, off the event loop, with an optional progress line.

Where the bytes go (a file replaced atomically, a device or pipe written through) is decided
by :mod:`._output`; this module formats records and feeds them to a writer thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import json
import queue
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from types import TracebackType
from typing import IO, Any

import attrs

from ._jsonable import to_jsonable
from ._output import CLEAR_LINE, Output

__all__ = ["BackgroundWriter", "Progress", "RecordFormatter", "drain", "record_fields"]

def record_fields(model: type[Any]) -> list[str]:
    """The column names of a model: its attribute names, in declaration order."""
    return [field.name for field in attrs.fields(model)]


class RecordFormatter:
    """Turns models into JSON lines or CSV rows; the per-class work is done once."""

    def __init__(self, model: type[Any], fmt: str) -> None:
        self._names = record_fields(model)
        self._csv = fmt == "csv"
        self._buffer = io.StringIO()
        self._writer = csv.writer(self._buffer, lineterminator="\n")

    def header(self) -> str:
        """What goes before the first record: the CSV column names, or nothing for JSONL."""
        return self._rows([self._names]) if self._csv else ""

    def format(self, records: Sequence[object]) -> str:
        """The text of ``records``, one line (JSONL) or row (CSV) each, newline-terminated."""
        names = self._names
        if not self._csv:
            return "".join(json.dumps(to_jsonable(record), ensure_ascii=False,
                                      separators=(",", ":")) + "\n" for record in records)
        rows = []
        for record in records:
            fields = to_jsonable(record)
            assert isinstance(fields, dict)
            rows.append([_cell(fields[name]) for name in names])
        return self._rows(rows)

    def _rows(self, rows: list[list[str]]) -> str:
        buffer = self._buffer
        buffer.seek(0)
        buffer.truncate()
        self._writer.writerows(rows)
        return buffer.getvalue()


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return str(value)


_FINISH = object()
_STOP = object()


class BackgroundWriter:
    """Formats and writes batches of records on a daemon thread, off the event loop.

    ``async with BackgroundWriter(output, formatter) as writer:`` opens the output on the
    thread (a FIFO may wait there for its reader), ``await writer.put(batch)`` hands over a
    batch, and leaving the block without an error waits until everything is written and
    committed (for a file: fsynced and renamed onto its name). Leaving it with an error or a
    cancellation discards the output at once (no temporary file, nothing under the final
    name) and does not wait for the thread.

    ``put`` waits, without blocking the loop, only while ``max_batches`` batches wait
    already: a slow reader slows the export down instead of growing memory, and a reader
    that stops reading never keeps the loop from handling a signal. A write error surfaces
    from the next ``put`` or from the end of the block. The thread is never joined after a
    failure: one blocked on a stalled pipe dies with the process.
    """

    def __init__(self, output: Output, formatter: RecordFormatter, *,
                 max_batches: int = 4) -> None:
        self._output = output
        self._formatter = formatter
        self._loop = asyncio.get_running_loop()
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._room = asyncio.Semaphore(max_batches)
        self._opened: asyncio.Future[None] = self._loop.create_future()
        self._finished: asyncio.Future[None] = self._loop.create_future()
        self._error: BaseException | None = None
        self._aborted = False
        self._thread = threading.Thread(target=self._run, name="yeastar-csss-writer",
                                        daemon=True)

    async def __aenter__(self) -> BackgroundWriter:
        self._thread.start()
        try:
            await self._opened
            self._raise_if_failed()
        except BaseException:
            self.abort()
            raise
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        if exc_type is not None:
            self.abort()
            return
        try:
            self._raise_if_failed()
            self._queue.put(_FINISH)
            await self._finished
            self._raise_if_failed()
        except BaseException:
            self.abort()
            raise

    async def put(self, records: Sequence[object]) -> None:
        """Hand ``records`` to the writer; wait while the writer is ``max_batches`` behind."""
        self._raise_if_failed()
        await self._room.acquire()
        self._raise_if_failed()
        self._queue.put(records)

    def abort(self) -> None:
        """Stop writing and discard the output; never blocks."""
        self._aborted = True
        self._queue.put(_STOP)
        self._output.discard()

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise self._error

    # --- on the writer thread ----------------------------------------------------------------

    def _run(self) -> None:
        output = self._output
        try:
            output.open()
            self._signal(_set_done, self._opened)
            if self._aborted:
                return
            header = self._formatter.header()
            if header:
                output.write(header.encode("utf-8"))
            while True:
                item = self._queue.get()
                if item is _STOP or self._aborted:
                    return
                if item is _FINISH:
                    output.commit()
                    self._signal(_set_done, self._finished)
                    return
                assert isinstance(item, Sequence)
                output.write(self._formatter.format(item).encode("utf-8"))
                self._signal(self._room.release)
        except BaseException as error:  # handed over to the loop, which raises it
            self._error = error
            self._signal(_set_done, self._opened)
            self._signal(_set_done, self._finished)
            self._signal(self._room.release)
        finally:
            output.close()

    def _signal(self, callback: Callable[..., object], *args: object) -> None:
        # The loop may be closed already: a writer abandoned on a stalled pipe, unblocked late.
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(callback, *args)


def _set_done(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


async def drain(records: AsyncIterator[Any], writer: BackgroundWriter,
                on_record: Callable[[int], None], *, batch_size: int = 256) -> int:
    """Hand every record of ``records`` to ``writer`` in batches of ``batch_size``, calling
    ``on_record(count)`` after each record. Return the count."""
    count = 0
    batch: list[Any] = []
    async for record in records:
        batch.append(record)
        count += 1
        on_record(count)
        if len(batch) >= batch_size:
            await writer.put(batch)
            batch = []
    if batch:
        await writer.put(batch)
    return count


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
            self._stream.write(CLEAR_LINE)
            self._stream.flush()
