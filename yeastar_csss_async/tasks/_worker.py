"""Run a taskiq worker inside the current event loop (taskiq's :class:`Receiver`), so the
caller owns its lifetime: it listens until ``stop`` is set, then lets running jobs finish."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from taskiq import AsyncBroker
from taskiq.receiver import Receiver

__all__ = ["run_jobs"]


async def run_jobs(
    broker: AsyncBroker,
    stop: asyncio.Event,
    *,
    max_jobs: int = 4,
    shutdown_timeout: float | None = 30.0,
    on_ready: Callable[[], None] | None = None,
) -> None:
    """Take jobs from ``broker`` and run up to ``max_jobs`` at once until ``stop`` is set.

    Then no new job is taken, and running jobs get ``shutdown_timeout`` seconds (None: as
    long as they need) to finish; a job still running after that is cancelled and, not
    acknowledged, is given to another worker later. The broker is started here (its worker
    startup events run: resources are opened) and always shut down.
    """
    broker.is_worker_process = True
    try:
        await broker.startup()
        receiver = Receiver(
            broker, max_async_tasks=max_jobs, run_startup=False, wait_tasks_timeout=shutdown_timeout
        )
        if on_ready is not None:
            on_ready()
        await receiver.listen(stop)
    finally:
        await broker.shutdown()
