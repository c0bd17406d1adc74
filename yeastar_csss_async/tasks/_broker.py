"""The taskiq broker, the jobs registered on it, and how a worker hands them its resources."""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from taskiq import (
    AsyncBroker,
    AsyncTaskiqDecoratedTask,
    Context,
    TaskiqDepends,
    TaskiqEvents,
    TaskiqState,
)
from taskiq_redis import RedisAsyncResultBackend

from .._base import BaseClient
from .._errors import ConfigurationError
from .._jsonable import to_jsonable
from .._lists import LISTS, ListSpec, list_spec
from ..exports import BackgroundWriter, make_encoder, open_output
from ..sync import sync_list
from ._observe import job_observed
from ._resources import WorkerResources, WorkerSettings
from ._stream import JobStream

__all__ = [
    "DEFAULT_QUEUE",
    "EXPORT_TASK",
    "LIST_NAMES",
    "SYNC_TASK",
    "configure_worker",
    "consumer_group",
    "enqueue_export",
    "enqueue_sync",
    "export_job",
    "make_broker",
    "sync_job",
]

logger = logging.getLogger("yeastar_csss_async.tasks")

DEFAULT_QUEUE = "yeastar-csss:jobs"
"""The Redis stream jobs go through (``queue_name``)."""
SYNC_TASK = "yeastar_csss.sync_list"
EXPORT_TASK = "yeastar_csss.export_list"
"""The task names in job messages (stable across releases)."""
LIST_NAMES = tuple(LISTS)
"""The lists a job may name (the CLI's names)."""
RESULT_TTL = 7 * 86400
"""Seconds a job's result (its summary or its error) stays in Redis."""
RECLAIM_AFTER = 30.0
"""Seconds without a heartbeat after which a job taken by a worker (killed, lost, cut off
from Redis) is given to another worker. A running job's worker renews its claim every quarter
of this, so a job still running is never taken over, however long it runs."""
_STATE_KEY = "yeastar_csss"


def consumer_group(queue_name: str) -> str:
    """The Redis consumer group of the workers reading ``queue_name``."""
    return f"{queue_name}:workers"


def make_broker(
    redis_url: str,
    *,
    queue_name: str = DEFAULT_QUEUE,
    results: bool = True,
    reclaim_after: float = RECLAIM_AFTER,
) -> JobStream:
    """A :class:`~._stream.JobStream` (taskiq-redis' stream broker, with claims kept alive by
    a heartbeat) on ``redis_url`` with :func:`sync_job` and :func:`export_job` registered.

    A worker reads one job at a time, only when it has room to run it. Jobs are acknowledged
    when their result is saved, so a job whose worker dies is given to another worker once
    its claim has not been renewed for ``reclaim_after`` seconds, whether or not new jobs
    arrive; a job cut off by a shutdown is handed back at once. Jobs queued before any worker
    ever started are not lost (the consumer group reads the stream from its start). With
    ``results``, each job's outcome is kept in Redis for :data:`RESULT_TTL` seconds.
    """
    broker = JobStream(
        redis_url,
        claim_timeout=reclaim_after,
        queue_name=queue_name,
        consumer_group_name=consumer_group(queue_name),
        consumer_id="0",
    )
    if results:
        broker = broker.with_result_backend(
            RedisAsyncResultBackend(
                redis_url, result_ex_time=RESULT_TTL, prefix_str=f"{queue_name}:result"
            )
        )
    broker.register_task(sync_job, task_name=SYNC_TASK)
    broker.register_task(export_job, task_name=EXPORT_TASK)
    return broker


def configure_worker(broker: AsyncBroker, settings: WorkerSettings) -> None:
    """Make the broker's worker open a :class:`WorkerResources` at startup (the database, the
    coordinator) and close it at shutdown; jobs receive it by dependency injection."""

    async def startup(state: TaskiqState) -> None:
        resources = WorkerResources(settings)
        try:
            await resources.open()
        except BaseException:
            await resources.aclose()
            raise
        setattr(state, _STATE_KEY, resources)

    async def shutdown(state: TaskiqState) -> None:
        resources = getattr(state, _STATE_KEY, None)
        if isinstance(resources, WorkerResources):
            delattr(state, _STATE_KEY)
            await resources.aclose()

    broker.add_event_handler(TaskiqEvents.WORKER_STARTUP, startup)
    broker.add_event_handler(TaskiqEvents.WORKER_SHUTDOWN, shutdown)


def worker_resources(state: TaskiqState = TaskiqDepends()) -> WorkerResources:  # noqa: B008
    """The dependency jobs declare: the worker's :class:`WorkerResources`."""
    resources = getattr(state, _STATE_KEY, None)
    if not isinstance(resources, WorkerResources):
        raise RuntimeError("this worker was not set up with configure_worker()")
    return resources


def _check_list(list_name: str) -> str:
    try:
        return list_spec(list_name).name
    except ValueError as error:
        raise ConfigurationError(str(error)) from None


async def sync_job(
    account: str,
    list_name: str,
    resources: WorkerResources = TaskiqDepends(worker_resources),  # noqa: B008
    context: Context = TaskiqDepends(),  # noqa: B008
) -> dict[str, Any]:
    """Job: sync list ``list_name`` of ``account`` into the worker's database. Its result is
    the run's :class:`~yeastar_csss_async.sync.SyncReport` as a dict."""
    with job_observed(resources, context.message.task_id, account, list_name, "sync") as job:
        spec = list_spec(_check_list(list_name))
        client = resources.client(account, spec.api)
        report = await sync_list(resources.store, spec.name, client, account=account)
        job.sync_ended(report.status, report.seen)
        logger.info("%s: %s", account, report.summary(resources.store.display_url))
    result = to_jsonable(report)
    assert isinstance(result, dict)
    return result


async def export_job(
    account: str,
    list_name: str,
    path: str,
    resources: WorkerResources = TaskiqDepends(worker_resources),  # noqa: B008
    context: Context = TaskiqDepends(),  # noqa: B008
) -> dict[str, Any]:
    """Job: write every record of list ``list_name`` of ``account`` as JSON lines to
    ``path`` inside the worker's export directory. The file appears only when complete
    (written beside it, fsynced and renamed, as the CLI's exports are)."""
    with job_observed(resources, context.message.task_id, account, list_name, "export") as job:
        spec = list_spec(_check_list(list_name))
        target = resources.export_path(path)
        client = resources.client(account, spec.api)
        count = await _export_records(spec, client, target)
        job.records(count)
        logger.info("%s: %s: %d records -> %s", account, spec.name, count, target)
    return {"account": account, "list": spec.name, "records": count, "path": target}


async def _export_records(spec: ListSpec[Any], client: BaseClient, target: str) -> int:
    """Write every record of ``spec``'s list to ``target``; how many there were."""
    count = 0
    async with contextlib.AsyncExitStack() as stack:
        output = open_output(target)  # no await before the writer owns it
        writer = await stack.enter_async_context(
            BackgroundWriter(output, make_encoder(spec.model, "jsonl"))
        )
        segments = await stack.enter_async_context(contextlib.aclosing(spec.segments(client)))
        async for segment in segments:
            async for page in segment.pages:
                if page.items:
                    await writer.put(page.items)
                    count += len(page.items)
    return count


async def enqueue_sync(broker: AsyncBroker, account: str, list_name: str) -> str:
    """Queue a :func:`sync_job` job; its task id. The message holds the account name and
    the list name only."""
    task = await _task(broker, SYNC_TASK).kiq(account, _check_list(list_name))
    return task.task_id


async def enqueue_export(broker: AsyncBroker, account: str, list_name: str, path: str) -> str:
    """Queue an :func:`export_job` job; its task id."""
    task = await _task(broker, EXPORT_TASK).kiq(account, _check_list(list_name), path)
    return task.task_id


def _task(broker: AsyncBroker, name: str) -> AsyncTaskiqDecoratedTask[Any, Any]:
    found = broker.find_task(name)
    if found is None:
        raise RuntimeError(f"task {name} is not registered on this broker (use make_broker())")
    return found
