"""The yeastar-csss command: bulk exports, and the sandbox to try them on.

Run ``yeastar-csss --help`` for the commands; the README has examples. :func:`main` is the
console script's entry point (``yeastar_csss_async.cli:main``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from .._errors import YeastarCSSSError
from ._commands import run
from ._messages import OneLineLog, detach_stdout, say
from ._parser import build_parser
from ._usage import UsageError

__all__ = ["build_parser", "main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; return its exit code (the console script exits with it).

    Whatever happens, stderr gets one line per problem, never a traceback.
    """
    handler = OneLineLog(logging.WARNING)
    logging.getLogger().addHandler(handler)
    library = logging.getLogger("yeastar_csss_async")
    level = library.level
    try:
        return _main(argv, handler)
    finally:
        logging.getLogger().removeHandler(handler)
        library.setLevel(level)


def _main(argv: Sequence[str] | None, handler: logging.Handler) -> int:
    try:
        args = build_parser().parse_args(argv)
        if getattr(args, "verbose", False):  # retries are logged at DEBUG
            handler.setLevel(logging.DEBUG)
            logging.getLogger("yeastar_csss_async").setLevel(logging.DEBUG)
        code = asyncio.run(run(args))
    except KeyboardInterrupt:
        code = 130
    except UsageError as error:
        say(f"yeastar-csss: {error}")
        code = 2
    except YeastarCSSSError as error:
        details = [
            f"{key}={value}"
            for key, value in (
                ("status", getattr(error, "status", None)),
                ("code", getattr(error, "code", None)),
                ("request_id", getattr(error, "request_id", None)),
            )
            if value is not None
        ]
        suffix = f" ({', '.join(details)})" if details else ""
        say(f"error: {type(error).__name__}: {getattr(error, 'message', error)}{suffix}")
        code = 1
    except BrokenPipeError:  # the reader went away (`| head`): stop quietly, as Unix tools do
        code = 141
    except OSError as error:  # disk full, I/O error, an output that cannot be written
        reason = error.strerror or str(error) or type(error).__name__
        say(
            f"yeastar-csss: {error.filename}: {reason}"
            if error.filename is not None
            else f"yeastar-csss: {reason}"
        )
        code = 1
    except Exception as error:  # a bug: still one line, with what a report needs
        say(f"yeastar-csss: unexpected {type(error).__name__}: {error}")
        code = 1
    if code == 130:
        say("interrupted")
    elif code == 143:
        say("terminated")
    if code in (130, 141, 143):
        detach_stdout()
    return code
