"""Run jobs inside the current event loop until ``stop`` is set, so the caller owns the
worker's lifetime, and no job is lost on the way out.

A job is read only when there is room to run it. While it runs, its claim is kept alive
(:class:`~._stream.JobStream`); when it ends its outcome is saved in the result backend and
then it is acknowledged. On ``stop`` no new job is read, running jobs get
``shutdown_timeout`` seconds to finish, and a job still running then is cancelled (a sync
records its run ``failed``) and handed back unacknowledged, with no result saved, for another
worker to take at once. The worker's resources (the database, the clients) are closed only
after every job has ended. Jobs run through taskiq's receiver (its parameter parsing and
dependency injection); what this module replaces is taskiq's loop, which records a cut-off
job as failed instead of handing it back.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Callable

from taskiq import AsyncBroker
from taskiq.abc.middleware import TaskiqMiddleware
from taskiq.exceptions import NoResultError
from taskiq.receiver import Receiver
from taskiq.utils import maybe_awaitable

from ._stream import JobStream, StreamJob

__all__ = ["run_jobs"]

logger = logging.getLogger("yeastar_csss_async.tasks")


class _Job:
    """One job this worker runs: its delivery, its task, and whether shutdown cut it off."""

    def __init__(self, job: StreamJob) -> None:
        self.delivery = job
        self.cut_off = False
        self.settled = False  # acknowledged, or handed back
        self.task: asyncio.Task[None] | None = None


async def run_jobs(
    broker: AsyncBroker,
    stop: asyncio.Event,
    *,
    max_jobs: int = 4,
    shutdown_timeout: float | None = 30.0,
    on_ready: Callable[[], None] | None = None,
) -> None:
    """Take jobs from ``broker`` (a :class:`~._stream.JobStream`, as
    :func:`~yeastar_csss_async.tasks.make_broker` makes) and run up to ``max_jobs`` at once
    until ``stop`` is set; then see the module: finish, cut off and hand back, close. The
    broker is started here (its worker startup events run: resources are opened) and always
    shut down, after the last job ended."""
    if not isinstance(broker, JobStream):
        raise TypeError("run_jobs needs the broker of make_broker() (a JobStream)")
    broker.is_worker_process = True
    running: set[_Job] = set()
    room = asyncio.Semaphore(max_jobs)
    try:
        await broker.startup()
        receiver = Receiver(broker, run_startup=False, max_async_tasks=max_jobs)
        if on_ready is not None:
            on_ready()
        while not stop.is_set():
            if not await _room_or_stop(room, stop):
                break
            try:
                delivery = await broker.next_job()
            except BaseException:
                room.release()
                raise
            if delivery is None:
                room.release()
                continue
            job = _Job(delivery)
            job.task = asyncio.create_task(_run(job, broker, receiver, room))
            running.add(job)
            job.task.add_done_callback(functools.partial(_forget, running, job))
        await _finish(running, broker, shutdown_timeout)
    finally:
        try:
            await _finish(running, broker, 0)  # cancelled ourselves: cut off what runs
            with contextlib.suppress(Exception):
                await broker.leave()
        finally:
            await broker.shutdown()


def _forget(running: set[_Job], job: _Job, _: object) -> None:
    running.discard(job)


async def _room_or_stop(room: asyncio.Semaphore, stop: asyncio.Event) -> bool:
    """Wait for room for one more job (True), or for ``stop`` (False)."""
    if stop.is_set():
        return False
    acquire = asyncio.ensure_future(room.acquire())
    stopped = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({acquire, stopped}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopped.cancel()
        if not acquire.done():
            acquire.cancel()
    if acquire.done() and not acquire.cancelled():
        if stop.is_set():
            room.release()
            return False
        return True
    return False


async def _finish(running: set[_Job], broker: JobStream, grace: float | None) -> None:
    """Let running jobs end within ``grace`` seconds (None: however long they take); cut
    off the rest, and wait for every job to have ended."""
    tasks = [job.task for job in running if job.task is not None]
    if not tasks:
        return
    if grace is None or grace > 0:
        await asyncio.wait(tasks, timeout=grace)
    for job in list(running):
        if job.task is not None and not job.task.done():
            job.cut_off = True
            job.task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def _run(job: _Job, broker: JobStream, receiver: Receiver, room: asyncio.Semaphore) -> None:
    heartbeat = asyncio.create_task(_keep_alive(job, broker))
    try:
        await _execute(job, broker, receiver)
    except asyncio.CancelledError:
        if not job.cut_off:
            raise
        if not job.settled:  # cut off outside the job itself (saving its result, say)
            await _hand_back(job, broker, "?")
    finally:
        heartbeat.cancel()
        await asyncio.gather(heartbeat, return_exceptions=True)
        room.release()


async def _keep_alive(job: _Job, broker: JobStream) -> None:
    while True:
        await asyncio.sleep(broker.heartbeat_interval)
        try:
            if not await broker.keep_claim(job.delivery):
                logger.warning(
                    "job entry %s is no longer this worker's (a heartbeat came too late)",
                    job.delivery.entry_id,
                )
                return
        except Exception as error:  # Redis away: try again at the next beat
            logger.warning("job entry %s: heartbeat failed: %s", job.delivery.entry_id, error)


async def _execute(job: _Job, broker: JobStream, receiver: Receiver) -> None:
    delivery = job.delivery
    try:
        message = broker.formatter.loads(message=delivery.data)
        message.parse_labels()
    except Exception as error:
        logger.warning("job entry %s is not a job message (%s): dropped", delivery.entry_id, error)
        await maybe_awaitable(delivery.ack())
        job.settled = True
        return
    task = broker.find_task(message.task_name)
    if task is None:
        logger.warning("job %s names no task of this worker: dropped", message.task_id)
        await maybe_awaitable(delivery.ack())
        job.settled = True
        return
    for middleware in broker.middlewares:
        if type(middleware).pre_execute is not TaskiqMiddleware.pre_execute:
            message = await maybe_awaitable(middleware.pre_execute(message))
    # run_task catches everything the job raises, a cancellation included, into the result
    result = await receiver.run_task(target=task.original_func, message=message)
    if job.cut_off:
        current = asyncio.current_task()
        if current is not None:
            current.uncancel()  # the cancellation was ours, and is handled here
        await _hand_back(job, broker, message.task_id)
        return
    for middleware in reversed(broker.middlewares):
        if type(middleware).post_execute is not TaskiqMiddleware.post_execute:
            await maybe_awaitable(middleware.post_execute(message, result))
    if not isinstance(result.error, NoResultError):
        await broker.result_backend.set_result(message.task_id, result)
        for middleware in reversed(broker.middlewares):
            if type(middleware).post_save is not TaskiqMiddleware.post_save:
                await maybe_awaitable(middleware.post_save(message, result))
    await maybe_awaitable(delivery.ack())
    job.settled = True


async def _hand_back(job: _Job, broker: JobStream, task_id: str) -> None:
    job.settled = True
    handed = await broker.hand_back(job.delivery)
    logger.warning(
        "job %s cut off by the shutdown: %s",
        task_id,
        "handed back for another worker" if handed else "no longer this worker's",
    )
