"""What ``yeastar-csss worker`` shows an operator: its log lines (``--log-format``) on stderr
and its Prometheus metrics (``--metrics-port``). Imported by :mod:`._workers` only, after
the ``[workers]`` extra was found."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from types import ModuleType

from ._messages import say

__all__ = ["fleet_metrics", "process_metrics", "worker_logger", "worker_logging"]

worker_logger = logging.getLogger("yeastar_csss_async.cli")
"""The worker command's own lines (ready, stopped, a process that exited)."""

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
_TASKIQ_FAILURE = "Exception found while executing function"
"""taskiq's record of a failed job: the job logs its failure itself, as one line."""


class _WorkerLines(logging.Handler):
    """Each record, formatted, as one line on stderr (through :func:`say`: a stalled stderr
    does not hold the worker up). Never logging's own traceback either."""

    def emit(self, record: logging.LogRecord) -> None:
        with contextlib.suppress(Exception):
            say(self.format(record))


def _not_taskiq_job_failure(record: logging.LogRecord) -> bool:
    return not (record.name.startswith("taskiq") and str(record.msg).startswith(_TASKIQ_FAILURE))


@contextlib.contextmanager
def worker_logging(tasks: ModuleType, log_format: str) -> Iterator[None]:
    """While the block runs, every log record of the process (the library's at INFO and
    above, others at WARNING and above) is one line on stderr in ``log_format``; the root
    logger's other handlers (the CLI's one-line warnings) are set aside meanwhile."""
    handler = _WorkerLines(logging.INFO)
    handler.setFormatter(tasks.WorkerLogFormatter(log_format))
    handler.addFilter(tasks.JobContextFilter())
    handler.addFilter(_not_taskiq_job_failure)
    root = logging.getLogger()
    library = logging.getLogger("yeastar_csss_async")
    others, level = list(root.handlers), library.level
    for other in others:
        root.removeHandler(other)
    root.addHandler(handler)
    library.setLevel(logging.INFO)
    try:
        yield
    finally:
        root.removeHandler(handler)
        for other in others:
            root.addHandler(other)
        library.setLevel(level)


def _announce(host: str, port: int) -> None:
    shown = f"[{host}]" if ":" in host else host
    worker_logger.info("metrics at http://%s:%d/metrics", shown, port)


@contextlib.asynccontextmanager
async def process_metrics(tasks: ModuleType, args: argparse.Namespace) -> AsyncIterator[None]:
    """One worker process: its clients' counters read every few seconds while the block
    runs, and with ``--metrics-port`` its metrics served (a child of ``--workers N`` gets no
    port: it writes to the supervisor's directory)."""
    async with contextlib.AsyncExitStack() as stack:
        if args.metrics_port is not None:
            server = stack.enter_context(
                tasks.serve_metrics(
                    args.metrics_host,
                    args.metrics_port,
                    redis_url=args.redis,
                    stream=args.queue,
                    group=tasks.consumer_group(args.queue),
                )
            )
            _announce(args.metrics_host, server.port)
        reader = asyncio.create_task(tasks.read_client_stats_every())
        try:
            yield
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader


@contextlib.contextmanager
def fleet_metrics(tasks: ModuleType, args: argparse.Namespace) -> Iterator[dict[str, str] | None]:
    """``--workers N`` with ``--metrics-port``: a fresh directory for the children's values
    (removed at the end), their sum served on the port; yields the children's environment
    (None without ``--metrics-port``: they inherit this one)."""
    if args.metrics_port is None:
        yield None
        return
    directory = tempfile.mkdtemp(prefix="yeastar-csss-metrics-")
    try:
        with tasks.serve_metrics(
            args.metrics_host,
            args.metrics_port,
            redis_url=args.redis,
            stream=args.queue,
            group=tasks.consumer_group(args.queue),
            multiprocess_dir=directory,
        ) as server:
            _announce(args.metrics_host, server.port)
            yield {**os.environ, MULTIPROC_ENV: directory}
    finally:
        shutil.rmtree(directory, ignore_errors=True)
