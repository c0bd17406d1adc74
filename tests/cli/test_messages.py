"""The command's one-line messages on stderr (``cli/_messages``)."""

from __future__ import annotations

import logging

import pytest

from yeastar_csss_async.cli._messages import OneLineLog

ORDERS = 500  # the sandbox's default order list


# --- messages ------------------------------------------------------------------------------


def test_log_records_are_one_line_each_with_the_error_named(
    capfd: pytest.CaptureFixture[str],
) -> None:
    handler = OneLineLog(logging.WARNING)

    def record(name: str, message: str, error: BaseException | None) -> logging.LogRecord:
        exc_info = (type(error), error, None) if error is not None else None
        return logging.LogRecord(name, logging.ERROR, __file__, 1, message, (), exc_info)

    handler.handle(record("aiohttp.server", "Error handling request", KeyError("x")))
    handler.handle(record("yeastar_csss_async", "two\nlines", None))
    assert capfd.readouterr().err == (
        "yeastar-csss: error: Error handling request: KeyError: 'x'\n"
        "yeastar-csss: error: two lines\n"
    )
