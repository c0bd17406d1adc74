"""The progress line a terminal shows (``cli/_progress``)."""

from __future__ import annotations

import io

import pytest

from yeastar_csss_async.cli import _progress

# --- the progress line ----------------------------------------------------------------------


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def progress_line(
    monkeypatch: pytest.MonkeyPatch,
    at: float,
    *,
    records: int,
    pages: int,
    total: int | None,
    retries: int = 0,
) -> str:
    """What a Progress started at t=0 draws at ``at`` seconds."""
    clock = [0.0]
    monkeypatch.setattr("yeastar_csss_async.cli._progress.time.monotonic", lambda: clock[0])
    stream = FakeTerminal()
    progress = _progress.Progress(stream, "orders")
    clock[0] = at
    progress.tick(records, pages, total, retries)
    return stream.getvalue().strip("\r").rstrip()


def test_progress_shows_retries_only_when_there_are_some(monkeypatch: pytest.MonkeyPatch) -> None:
    line = progress_line(monkeypatch, 2.0, records=200, pages=2, total=1000, retries=3)
    assert line == "orders: 200 of 1,000 records, 2 pages, 100/s, 3 retries"
    line = progress_line(monkeypatch, 2.0, records=200, pages=2, total=1000)
    assert "retries" not in line


def test_progress_shows_no_eta_until_a_few_pages_and_a_second_are_in(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    after = _progress.Progress.ETA_AFTER_PAGES
    assert after >= 3
    # one slow first page: its latency is no pace to predict from
    assert "ETA" not in progress_line(monkeypatch, 60.0, records=100, pages=after - 1, total=10_000)
    # many pages in a flash (read-ahead landing together): too soon to tell
    assert "ETA" not in progress_line(monkeypatch, 0.5, records=800, pages=8, total=10_000)
    line = progress_line(monkeypatch, 2.0, records=300, pages=after, total=1_500)
    assert line.endswith(", ETA 8s")  # 1,200 left at 150/s
    assert "ETA" not in progress_line(monkeypatch, 2.0, records=300, pages=after, total=None)


def test_progress_draws_nothing_without_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    progress = _progress.Progress(None, "orders")
    progress.tick(10, 1, 100, 1)
    progress.done()  # no stream: nothing to write to, nothing raised
