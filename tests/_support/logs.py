"""Log records as text, to look for secrets in them (the ``debug_log`` fixture)."""

from __future__ import annotations

import logging


class ListHandler(logging.Handler):
    """Collects every formatted record, with its arguments and exception text."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.texts: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        text = self.format(record)
        self.texts.append(text + " " + repr(record.__dict__))
