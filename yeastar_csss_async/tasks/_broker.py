"""The taskiq broker, the jobs registered on it, and how a worker hands them its resources."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import uuid
from collections.abc import AsyncIterator
from typing import IO, Any

from taskiq import AsyncBroker, AsyncTaskiqDecoratedTask, TaskiqDepends, TaskiqEvents, TaskiqState
from taskiq_redis import RedisAsyncResultBackend, RedisStreamBroker

from .._errors import ConfigurationError
from .._jsonable import to_jsonable
from ..sync import SyncReport, sync_orders, sync_package_orders, sync_products
from ._resources import WorkerResources, WorkerSettings

__all__ = [
    "DEFAULT_QUEUE",
    "EXPORT_TASK",
    "LIST_NAMES",
    "SYNC_TASK",
    "configure_worker",
    "enqueue_export",
    "enqueue_sync",
    "export_list",
    "make_broker",
    "sync_list",
]

logger = logging.getLogger("yeastar_csss_async.tasks")

DEFAULT_QUEUE = "yeastar-csss:jobs"
"""The Redis stream jobs go through (``queue_name``)."""
SYNC_TASK = "yeastar_csss.sync_list"
EXPORT_TASK = "yeastar_csss.export_list"
"""The task names in job messages (stable across releases)."""
LIST_NAMES = ("orders", "products", "package-orders")
"""The lists a job may name (the CLI's names)."""
RESULT_TTL = 7 * 86400
"""Seconds a job's result (its summary or its error) stays in Redis."""
RECLAIM_AFTER = 3600.0
"""Seconds after which a job taken by a worker that never acknowledged it (killed, lost) is
given to another worker. Longer than the longest sync: a job still running is not run twice
(a second run of the same account and list would be refused anyway)."""
_STATE_KEY = "yeastar_csss"


def make_broker(
    redis_url: str,
    *,
    queue_name: str = DEFAULT_QUEUE,
    results: bool = True,
    reclaim_after: float = RECLAIM_AFTER,
) -> RedisStreamBroker:
    """A taskiq-redis :class:`~taskiq_redis.RedisStreamBroker` on ``redis_url`` with
    :func:`sync_list` and :func:`export_list` registered.

    Jobs are acknowledged when their result is saved, so a job whose worker dies is given
    to another worker ``reclaim_after`` seconds later. Jobs queued before any worker ever
    started are not lost (the consumer group reads the stream from its start). With
    ``results``, each job's outcome is kept in Redis for :data:`RESULT_TTL` seconds.
    """
    broker = RedisStreamBroker(
        redis_url,
        queue_name=queue_name,
        consumer_group_name=f"{queue_name}:workers",
        consumer_id="0",
        idle_timeout=int(reclaim_after * 1000),
        unacknowledged_lock_timeout=30.0,
        # One job per read: a worker claims a job only when it has
        # room to run it. (taskiq-redis reads 100 at a time by default,
        # and the first worker to read kept them while others idled.)
        xread_count=1,
    )
    if results:
        broker = broker.with_result_backend(
            RedisAsyncResultBackend(
                redis_url, result_ex_time=RESULT_TTL, prefix_str=f"{queue_name}:result"
            )
        )
    broker.register_task(sync_list, task_name=SYNC_TASK)
    broker.register_task(export_list, task_name=EXPORT_TASK)
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
    if list_name not in LIST_NAMES:
        raise ConfigurationError(
            f"unknown list {list_name[:80]!r} (expected one of: {', '.join(LIST_NAMES)})"
        )
    return list_name


async def sync_list(
    account: str,
    list_name: str,
    resources: WorkerResources = TaskiqDepends(worker_resources),  # noqa: B008
) -> dict[str, Any]:
    """Job: sync list ``list_name`` of ``account`` into the worker's database. Its result is
    the run's :class:`~yeastar_csss_async.sync.SyncReport` as a dict."""
    _check_list(list_name)
    report: SyncReport
    if list_name == "package-orders":
        report = await sync_package_orders(
            resources.store, resources.csss(account), account=account
        )
    elif list_name == "orders":
        report = await sync_orders(resources.store, resources.yeastar(account), account=account)
    else:
        report = await sync_products(resources.store, resources.yeastar(account), account=account)
    logger.info("%s: %s", account, report.summary(resources.store.display_url))
    result = to_jsonable(report)
    assert isinstance(result, dict)
    return result


async def export_list(
    account: str,
    list_name: str,
    path: str,
    resources: WorkerResources = TaskiqDepends(worker_resources),  # noqa: B008
) -> dict[str, Any]:
    """Job: write every record of list ``list_name`` of ``account`` as JSON lines to
    ``path`` inside the worker's export directory. The file appears only when complete."""
    _check_list(list_name)
    target = resources.export_path(path)
    partial = f"{target}.partial-{uuid.uuid4().hex[:8]}"
    count = 0
    file = await asyncio.to_thread(open, partial, "w", encoding="utf-8")
    try:
        async for records in _pages(resources, account, list_name):
            await asyncio.to_thread(_write_lines, file, records)
            count += len(records)
        await asyncio.to_thread(_close_and_replace, file, partial, target)
    except BaseException:
        await asyncio.to_thread(_close_and_remove, file, partial)
        raise
    logger.info("%s: %s: %d records -> %s", account, list_name, count, target)
    return {"account": account, "list": list_name, "records": count, "path": target}


async def _pages(
    resources: WorkerResources, account: str, list_name: str
) -> AsyncIterator[list[Any]]:
    if list_name == "package-orders":
        async with resources.csss(account).iter_package_order_pages() as csss_pages:
            async for csss_page in csss_pages:
                yield list(csss_page.items)
        return
    client = resources.yeastar(account)
    if list_name == "orders":
        async with client.iter_order_pages() as pages:
            async for page in pages:
                yield list(page.items)
        return
    for line in await client.list_subscription_products():
        async with client.iter_product_pages(line.product_id) as product_pages:
            async for product_page in product_pages:
                yield list(product_page.items)


def _write_lines(file: IO[str], records: list[Any]) -> None:
    file.write(
        "".join(
            json.dumps(to_jsonable(record), ensure_ascii=False, separators=(",", ":")) + "\n"
            for record in records
        )
    )


def _close_and_replace(file: IO[str], partial: str, target: str) -> None:
    file.flush()
    os.fsync(file.fileno())
    file.close()
    os.replace(partial, target)


def _close_and_remove(file: IO[str], partial: str) -> None:
    file.close()
    with contextlib.suppress(FileNotFoundError):
        os.unlink(partial)


async def enqueue_sync(broker: AsyncBroker, account: str, list_name: str) -> str:
    """Queue a :func:`sync_list` job; its task id. The message holds the account name and
    the list name only."""
    task = await _task(broker, SYNC_TASK).kiq(account, _check_list(list_name))
    return task.task_id


async def enqueue_export(broker: AsyncBroker, account: str, list_name: str, path: str) -> str:
    """Queue an :func:`export_list` job; its task id."""
    task = await _task(broker, EXPORT_TASK).kiq(account, _check_list(list_name), path)
    return task.task_id


def _task(broker: AsyncBroker, name: str) -> AsyncTaskiqDecoratedTask[Any, Any]:
    found = broker.find_task(name)
    if found is None:
        raise RuntimeError(f"task {name} is not registered on this broker (use make_broker())")
    return found
