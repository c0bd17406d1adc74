"""A worker's log lines: the running job's task id, account and list on every record logged
while it runs (a :mod:`contextvars` variable, so concurrent jobs keep theirs apart), and the
two line formats of ``yeastar-csss worker --log-format``: ``text`` and ``json``.

Every line has an ISO 8601 UTC time and the level. An exception attached to a record is
written as one line (``APIError: ...``), never as a traceback.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime
import json
import logging
from collections.abc import Iterator

import attrs

from .._redaction import shorten

__all__ = [
    "LOG_FORMATS",
    "JobContext",
    "JobContextFilter",
    "WorkerLogFormatter",
    "current_job",
    "describe_error",
    "job_context",
]

LOG_FORMATS = ("text", "json")
"""The values of ``--log-format``."""
_JOB_FIELDS = ("task_id", "account", "list")


@attrs.frozen
class JobContext:
    """The job a log record belongs to: its taskiq task id, its account and its list."""

    task_id: str
    account: str
    list: str


_current: contextvars.ContextVar[JobContext | None] = contextvars.ContextVar(
    "yeastar_csss_job", default=None
)


def current_job() -> JobContext | None:
    """The job running in this task (None outside a job)."""
    return _current.get()


@contextlib.contextmanager
def job_context(job: JobContext) -> Iterator[None]:
    """Make ``job`` the current job of this asyncio task (and of the tasks it starts) until
    the block ends."""
    token = _current.set(job)
    try:
        yield
    finally:
        _current.reset(token)


class JobContextFilter(logging.Filter):
    """Adds ``task_id``, ``account`` and ``list`` to a record logged during a job (None
    outside one). Never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        job = _current.get()
        record.task_id = job.task_id if job is not None else None
        record.account = job.account if job is not None else None
        record.list = job.list if job is not None else None
        return True


def describe_error(error: BaseException) -> str:
    """The one line a log gives an error: ``TypeName: message``, with the status, code and
    request id of an API error when it has them, whitespace folded, at most a few hundred
    characters (library errors are already free of secrets)."""
    text = getattr(error, "message", None) or str(error) or "(no message)"
    details = [
        f"{key}={value}"
        for key in ("status", "code", "request_id")
        if (value := getattr(error, key, None)) is not None
    ]
    suffix = f" ({', '.join(details)})" if details else ""
    return shorten(" ".join(f"{type(error).__name__}: {text}{suffix}".split()), 400)


class WorkerLogFormatter(logging.Formatter):
    """``text``: ``TIME LEVEL LOGGER [task_id=... account=... list=...] MESSAGE``;
    ``json``: one object with ``time``, ``level``, ``logger``, ``message`` (and ``task_id``,
    ``account``, ``list`` on a job's records). ``TIME`` is UTC with milliseconds and a ``Z``.
    Use with :class:`JobContextFilter` on the handler."""

    def __init__(self, log_format: str = "text") -> None:
        if log_format not in LOG_FORMATS:
            raise ValueError(f"log format {log_format!r}: expected one of {LOG_FORMATS}")
        super().__init__()
        self.log_format = log_format

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            message = f"{message}: {describe_error(record.exc_info[1])}"
        message = " ".join(message.split())  # one line, whatever the message holds
        moment = datetime.datetime.fromtimestamp(record.created, datetime.UTC)
        stamp = moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
        job = {
            key: value for key in _JOB_FIELDS if (value := getattr(record, key, None)) is not None
        }
        if self.log_format == "json":
            line = {
                "time": stamp,
                "level": record.levelname,
                "logger": record.name,
                "message": message,
                **job,
            }
            return json.dumps(line, ensure_ascii=False, default=str)
        where = " [" + " ".join(f"{key}={value}" for key, value in job.items()) + "]" if job else ""
        return f"{stamp} {record.levelname} {record.name}{where} {message}"
