"""The command's messages on stderr: one line each, never a traceback.

:func:`say` and :class:`OneLineLog` give up on a stalled stderr after a second;
:func:`detach_stdout` makes sure nothing left at exit blocks on a stalled reader of stdout.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading

__all__ = ["CLEAR_LINE", "OneLineLog", "detach_stdout", "say"]

CLEAR_LINE = "\r" + " " * 80 + "\r"
"""Written to a terminal to blank the current line (a progress line, an echoed ``^C``)."""


class OneLineLog(logging.Handler):
    """Library log records (warnings and worse) as one line each on stderr: no traceback."""

    def emit(self, record: logging.LogRecord) -> None:
        with contextlib.suppress(Exception):  # never logging's own traceback either
            self._emit(record)

    def _emit(self, record: logging.LogRecord) -> None:
        error = record.exc_info[1] if record.exc_info else None
        detail = f": {type(error).__name__}: {error}" if error is not None else ""
        say(f"yeastar-csss: {record.levelname.lower()}: {record.getMessage()}{detail}")


def say(message: str) -> None:
    """Print one line to stderr, on a line of its own even after a progress line or ``^C``.

    Gives up after a second: a reader of stderr that stopped reading (``2>&1 | less``) must
    not keep the process alive. The write goes to the descriptor from a daemon thread, so an
    abandoned one holds no lock that interpreter shutdown needs.
    """
    stream = sys.stderr
    if stream is None:
        return
    text = " ".join(message.split()) + "\n"  # one line, whatever the message holds
    with contextlib.suppress(OSError, ValueError):
        if stream.isatty():
            text = CLEAR_LINE + text
        try:
            fd = stream.fileno()
        except (OSError, ValueError):  # not a file (tests may swap sys.stderr): no stall
            stream.write(text)
            return
        stream.flush()
        writer = threading.Thread(
            target=os.write, args=(fd, text.encode(errors="replace")), daemon=True
        )
        writer.start()
        writer.join(1.0)


def detach_stdout() -> None:
    """Point fd 1 at /dev/null, so that nothing left at exit can block on a stalled reader.

    The records never pass through ``sys.stdout``'s buffer (the writer thread writes to the
    descriptor itself), so this is a second line of defence: a writer still blocked in
    ``write()`` keeps its pipe and dies with the process.
    """
    with contextlib.suppress(OSError, ValueError, AttributeError):
        fd = sys.stdout.fileno()
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, fd)
        os.close(devnull)
