"""The schedules of an accounts file, run by any number of schedulers at once: each due sync
is queued exactly once, by whichever scheduler first claims it in Redis.

A claim is ``SET <prefix>:schedule:<account>:<list>:<cron>:<due time ISO> NX EX <a day>``:
the key names the due time (a minute start in UTC), never the time a scheduler sends, so a
scheduler whose clock is a few seconds off claims the same key as the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import socket
import time
from collections.abc import Callable, Mapping
from typing import Protocol

import attrs
from redis.asyncio import Redis
from taskiq import AsyncBroker

from ._accounts import AccountConfig, Schedule
from ._broker import DEFAULT_QUEUE, enqueue_sync
from ._cron import floor_minute, latest_due

__all__ = [
    "CATCH_UP",
    "CLAIM_TTL",
    "SEND_TIMEOUT",
    "Clock",
    "SystemClock",
    "run_schedules",
    "schedule_key",
]

logger = logging.getLogger("yeastar_csss_async.tasks.scheduler")

CATCH_UP = 60.0
"""Seconds a due time may be past and still be queued: a scheduler that starts, or wakes
late, queues the latest due time of each schedule within this window (if no scheduler did),
never older ones."""
CLAIM_TTL = 86400
"""Seconds a claim key lives (a day: far longer than :data:`CATCH_UP`)."""
SEND_TIMEOUT = 10.0
"""Seconds one send may take; a send that takes longer is given up and logged (taskiq#626:
a hanging send must not hold up the other schedules)."""
_MINUTE = dt.timedelta(minutes=1)
_MAX_SLEEP = 30.0


class Clock(Protocol):
    """What a scheduler reads the time from (tests inject one that need not wait)."""

    def now(self) -> dt.datetime:
        """The current time, timezone-aware."""
        ...

    async def sleep_until(self, when: dt.datetime) -> None:
        """Return once :meth:`now` is at or past ``when``."""
        ...


class SystemClock:
    """The machine's clock in UTC; sleeps re-read it, so a clock step is noticed within
    30 seconds."""

    def now(self) -> dt.datetime:
        """The current time in UTC."""
        return dt.datetime.now(dt.UTC)

    async def sleep_until(self, when: dt.datetime) -> None:
        """Sleep until ``when`` (re-reading the clock at least every 30 seconds)."""
        # A wall-clock deadline: asyncio's timers run on the monotonic clock, so re-read.
        while (delay := (when - self.now()).total_seconds()) > 0:  # noqa: ASYNC110
            await asyncio.sleep(min(delay, _MAX_SLEEP))


@attrs.frozen
class _Due:
    account: str
    schedule: Schedule
    due: dt.datetime


def schedule_key(prefix: str, account: str, schedule: Schedule, due: dt.datetime) -> str:
    """The Redis key whose first ``SET NX`` queues ``schedule`` of ``account`` for the due
    time ``due`` (a minute start; written in UTC, ISO 8601)."""
    when = floor_minute(due).isoformat()
    return f"{prefix}:schedule:{account}:{schedule.list_name}:{schedule.cron}:{when}"


async def run_schedules(
    broker: AsyncBroker,
    redis: Redis | str,
    accounts: Mapping[str, AccountConfig],
    stop: asyncio.Event,
    *,
    clock: Clock | None = None,
    key_prefix: str | None = None,
    catch_up: float = CATCH_UP,
    send_timeout: float = SEND_TIMEOUT,
    on_ready: Callable[[], None] | None = None,
) -> None:
    """Queue a sync job (:func:`enqueue_sync`) for each schedule of ``accounts`` whenever it
    is due, until ``stop`` is set.

    The scheduler checks at each minute start of ``clock`` (default: the system clock, UTC).
    Each due time is claimed first (see :func:`schedule_key`; ``key_prefix`` defaults to the
    broker's queue name): only the scheduler that claims it sends the job, so any number of
    schedulers may run at once, and one that restarts does not queue a due time again. At
    start-up, and after waking late, only the latest due time of each schedule at most
    ``catch_up`` seconds past is queued (1 to 3600). Due schedules are sent concurrently,
    each bounded by ``send_timeout`` seconds: one that takes longer is logged and given up
    (its due time stays claimed: it is not queued twice). ``on_ready`` is called after the
    start-up check.

    ``broker`` must be started by the caller. ``redis`` is a client (the caller's) or a URL
    (a client opened and closed here). A Redis error is raised (RedisError or OSError).
    """
    if not 1 <= catch_up <= 3600:
        raise ValueError("catch_up must be 1 to 3600 seconds")
    if not send_timeout > 0:
        raise ValueError("send_timeout must be > 0 seconds")
    prefix = key_prefix or str(getattr(broker, "queue_name", DEFAULT_QUEUE))
    schedules = [
        (name, schedule) for name, account in accounts.items() for schedule in account.schedules
    ]
    clock = clock or SystemClock()
    async with contextlib.AsyncExitStack() as stack:
        if isinstance(redis, str):
            redis = Redis.from_url(
                redis, socket_timeout=send_timeout, socket_connect_timeout=send_timeout
            )
            stack.push_async_callback(redis.aclose)
        claimer = _Claimer(broker, redis, prefix, send_timeout)
        checked: dt.datetime | None = None
        while not stop.is_set():
            now = clock.now()
            oldest = now - dt.timedelta(seconds=catch_up)
            if checked is not None and checked + _MINUTE < oldest:
                logger.warning(
                    "woke %.0fs late: due times before %s are not queued",
                    (now - checked - _MINUTE).total_seconds(),
                    f"{oldest:%Y-%m-%dT%H:%M:%SZ}",
                )
            after = oldest if checked is None else max(oldest, checked)
            due = [
                _Due(account, schedule, when)
                for account, schedule in schedules
                if (when := latest_due(schedule.cron, after, now)) is not None
            ]
            await claimer.queue_all(due)
            current = floor_minute(now)
            checked = current if checked is None else max(checked, current)
            if on_ready is not None:
                on_ready()
                on_ready = None
            await _sleep_or_stop(clock, checked + _MINUTE, stop)


async def _sleep_or_stop(clock: Clock, when: dt.datetime, stop: asyncio.Event) -> None:
    sleeping = asyncio.ensure_future(clock.sleep_until(when))
    stopping = asyncio.ensure_future(stop.wait())
    try:
        done, _ = await asyncio.wait((sleeping, stopping), return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in (sleeping, stopping):
            waiter.cancel()
        await asyncio.gather(sleeping, stopping, return_exceptions=True)
    if sleeping in done:
        sleeping.result()  # a clock that failed


class _Claimer:
    """Claims due times and sends the jobs of the claims won."""

    def __init__(self, broker: AsyncBroker, redis: Redis, prefix: str, timeout: float) -> None:
        self.broker = broker
        self.redis = redis
        self.prefix = prefix
        self.timeout = timeout
        self.owner = f"{socket.gethostname()}:{os.getpid()}"

    async def queue_all(self, due: list[_Due]) -> None:
        """Claim and send each due job, all at once; the first Redis error is raised after
        every send has ended (each is bounded by the timeout)."""
        outcomes = await asyncio.gather(*(self._queue(job) for job in due), return_exceptions=True)
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome

    async def _queue(self, job: _Due) -> None:
        schedule = job.schedule
        what = f"{job.account} {schedule.list_name} ({schedule.cron}) due {job.due:%Y-%m-%dT%H:%MZ}"
        key = schedule_key(self.prefix, job.account, job.schedule, job.due)
        claimed = await self.redis.set(key, self.owner, nx=True, ex=CLAIM_TTL)
        if not claimed:
            logger.info("%s: queued by another scheduler", what)
            return
        started = time.monotonic()
        try:
            async with asyncio.timeout(self.timeout):
                task_id = await enqueue_sync(self.broker, job.account, job.schedule.list_name)
        except TimeoutError:
            logger.error(
                "%s: not queued: the send took longer than %gs (given up; the next due time "
                "is queued as usual)",
                what,
                self.timeout,
            )
            return
        logger.info("%s: queued task %s in %.3fs", what, task_id, time.monotonic() - started)
