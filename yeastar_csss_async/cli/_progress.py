"""The progress line an export or a sync draws on a terminal."""

from __future__ import annotations

import time
from typing import IO

from ._messages import CLEAR_LINE

__all__ = ["Progress"]


class Progress:
    """A one-line progress display on a terminal: records, pages, rate, retries and ETA.

    The ETA appears once ``ETA_AFTER_PAGES`` pages and ``ETA_AFTER_SECONDS`` are in: before
    that, the rate is the first page's latency, not the export's pace.
    """

    INTERVAL = 0.1  # seconds between redraws, at most
    ETA_AFTER_PAGES = 3
    ETA_AFTER_SECONDS = 1.0
    WIDTH = len(CLEAR_LINE) - 4  # CLEAR_LINE blanks 80 columns: room for an echoed ^C

    def __init__(self, stream: IO[str] | None, label: str) -> None:
        self._stream = stream
        self._label = label
        self._started = time.monotonic()
        self._next_draw = 0.0

    def tick(self, records: int, pages: int, total: int | None, retries: int = 0) -> None:
        """Redraw if a terminal is attached and the last redraw is old enough."""
        now = time.monotonic()
        if self._stream is None or now < self._next_draw:
            return
        self._next_draw = now + self.INTERVAL
        elapsed = max(now - self._started, 1e-9)
        rate = records / elapsed
        line = f"{self._label}: {records:,}"
        line += f" of {total:,} records" if total else " records"
        line += f", {pages:,} pages, {rate:,.0f}/s"
        if retries:
            line += f", {retries:,} retries"
        if (
            total
            and rate > 0
            and total > records
            and pages >= self.ETA_AFTER_PAGES
            and elapsed >= self.ETA_AFTER_SECONDS
        ):
            line += f", ETA {(total - records) / rate:,.0f}s"
        self._stream.write("\r" + line[: self.WIDTH].ljust(self.WIDTH))
        self._stream.flush()

    def done(self) -> None:
        """Clear the progress line."""
        if self._stream is not None:
            self._stream.write(CLEAR_LINE)
            self._stream.flush()
