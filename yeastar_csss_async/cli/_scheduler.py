"""``yeastar-csss scheduler`` (extra ``[workers]``): queues the sync jobs of the accounts
file's schedules until SIGTERM or SIGINT. Any number may run at once (one per node)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
from collections.abc import Iterator
from types import ModuleType

from ._fleet import redis_errors as _redis_errors
from ._fleet import redis_failure as _redis_failure
from ._messages import say
from ._usage import UsageError
from ._workers import _stop_on_signals

__all__ = ["run_scheduler"]

MISSING_EXTRA = "scheduler needs the [workers] extra: pip install 'yeastar-csss-async[workers]'"


def _tasks() -> ModuleType:
    try:
        from .. import tasks
    except ImportError:
        raise UsageError(MISSING_EXTRA) from None
    return tasks


async def run_scheduler(args: argparse.Namespace) -> int:
    """Run the schedules until SIGTERM or SIGINT (exit 0); a Redis failure is one line
    (exit 1)."""
    tasks = _tasks()
    try:
        accounts = tasks.load_accounts(args.accounts)
    except tasks.AccountsFileError as error:
        raise UsageError(str(error)) from None
    count = sum(len(account.schedules) for account in accounts.values())
    if not count:
        raise UsageError(
            f"{args.accounts}: no schedules (add [[accounts.NAME.schedule]] tables with "
            "list and cron)"
        )
    broker = tasks.make_broker(args.redis, queue_name=args.queue, results=False)
    stop = asyncio.Event()

    def ready() -> None:
        say(
            f"scheduler {os.getpid()} ready: {count} schedules of {len(accounts)} accounts, "
            f"queue {args.queue}"
        )

    with _stop_on_signals(stop.set), _scheduler_log():
        try:
            await broker.startup()
            await tasks.run_schedules(
                broker, args.redis, accounts, stop, key_prefix=args.queue, on_ready=ready
            )
        except (OSError, _redis_errors()) as error:
            raise _redis_failure(args.redis, error) from None
        finally:
            with contextlib.suppress(Exception):
                await broker.shutdown()
    say(f"scheduler {os.getpid()} stopped")
    return 0


@contextlib.contextmanager
def _scheduler_log() -> Iterator[None]:
    """One line on stderr per due job (queued here, queued by another scheduler, or given
    up); the scheduler logs them at INFO, problems at WARNING and ERROR."""

    class Line(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            with contextlib.suppress(Exception):
                say(f"scheduler {os.getpid()}: {record.getMessage()}")

    logger = logging.getLogger("yeastar_csss_async.tasks.scheduler")
    handler, level, propagate = Line(logging.INFO), logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False  # not a second time through the root's one-line handler
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        logger.propagate = propagate
