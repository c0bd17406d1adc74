"""Sync and export jobs for a fleet of workers, on taskiq and Redis (extra ``[workers]``).

::

    from yeastar_csss_async.tasks import enqueue_sync, make_broker

    broker = make_broker("redis://localhost:6379/0")
    await broker.startup()
    task_id = await enqueue_sync(broker, "acme", "orders")
    await broker.shutdown()

Workers run ``yeastar-csss worker --redis URL --accounts FILE --db URL``: each job names an
account of the accounts file and a list, never a credential; the worker reads the account's
credentials from the environment variables the file names, and builds its clients with a
:class:`~yeastar_csss_async.redis.RedisCoordinator`, so every worker of the fleet shares
each account's token, concurrency limit and 429 pause. ``yeastar-csss scheduler`` (or
:func:`run_schedules`) queues the syncs of the file's ``[[accounts.NAME.schedule]]`` tables;
any number of schedulers may run at once.
"""

from __future__ import annotations

try:
    import prometheus_client  # noqa: F401
    import taskiq  # noqa: F401
    import taskiq_redis  # noqa: F401
except ImportError as error:  # pragma: no cover - exercised in a subprocess test
    raise ImportError(
        "yeastar_csss_async.tasks needs the [workers] extra: "
        "pip install 'yeastar-csss-async[workers]'"
    ) from error

from ._accounts import AccountConfig, AccountsFileError, Schedule, load_accounts, parse_accounts
from ._broker import (
    DEFAULT_QUEUE,
    EXPORT_TASK,
    LIST_NAMES,
    SYNC_TASK,
    configure_worker,
    consumer_group,
    enqueue_export,
    enqueue_sync,
    export_job,
    make_broker,
    sync_job,
    worker_resources,
)
from ._logging import LOG_FORMATS, JobContext, JobContextFilter, WorkerLogFormatter, current_job
from ._metrics import read_client_stats_every, serve_metrics
from ._observe import ObservedJob, job_observed
from ._resources import WorkerResources, WorkerSettings
from ._scheduler import (
    CATCH_UP,
    CLAIM_TTL,
    SEND_TIMEOUT,
    Clock,
    SystemClock,
    run_schedules,
    schedule_key,
)
from ._worker import run_jobs

__all__ = [
    "CATCH_UP",
    "CLAIM_TTL",
    "DEFAULT_QUEUE",
    "EXPORT_TASK",
    "LIST_NAMES",
    "LOG_FORMATS",
    "SEND_TIMEOUT",
    "SYNC_TASK",
    "AccountConfig",
    "AccountsFileError",
    "Clock",
    "JobContext",
    "JobContextFilter",
    "ObservedJob",
    "Schedule",
    "SystemClock",
    "WorkerLogFormatter",
    "WorkerResources",
    "WorkerSettings",
    "configure_worker",
    "consumer_group",
    "current_job",
    "enqueue_export",
    "enqueue_sync",
    "export_job",
    "job_observed",
    "load_accounts",
    "make_broker",
    "parse_accounts",
    "read_client_stats_every",
    "run_jobs",
    "run_schedules",
    "schedule_key",
    "serve_metrics",
    "sync_job",
    "worker_resources",
]
