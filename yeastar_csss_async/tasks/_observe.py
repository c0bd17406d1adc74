"""What a job does for the people watching the worker: :func:`job_observed` wraps a job's
body, so its log records carry its task id, account and list, its outcome and duration are
counted, its failure is logged as one line, and its clients' counters are read when it ends."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterator

from .._lists import LISTS
from ..sync import SyncLockedError
from ._logging import JobContext, describe_error, job_context
from ._metrics import (
    JOB_FAILURES,
    JOB_SECONDS,
    JOBS,
    RECORDS,
    STATS_READER,
    SYNC_RUNS,
    UNKNOWN,
)
from ._resources import WorkerResources

__all__ = ["ObservedJob", "job_observed"]

logger = logging.getLogger("yeastar_csss_async.tasks")


class ObservedJob:
    """The handle :func:`job_observed` gives the job: it reports what it did through it."""

    def __init__(self, account: str, list_name: str) -> None:
        self.account = account
        self.list = list_name
        self.sync_status: str | None = None

    def records(self, count: int) -> None:
        """Count ``count`` records synced or exported."""
        if count:
            RECORDS.labels(self.account, self.list).inc(count)

    def sync_ended(self, status: str, seen: int) -> None:
        """A sync run ended with ``status`` (its report's) after reading ``seen`` records."""
        self.sync_status = status
        self.records(seen)


@contextlib.contextmanager
def job_observed(
    resources: WorkerResources, task_id: str, account: str, list_name: str, kind: str
) -> Iterator[ObservedJob]:
    """Observe one job of ``kind`` (``sync`` or ``export``) while the block runs.

    Labels and log fields use ``account`` and ``list_name`` only when the worker knows them
    (else ``(unknown)``: a job's arguments could be anything). A failure is logged at ERROR
    as one line (``ConfigurationError: ...``) and re-raised; a cancellation (a shutdown
    cutting the job off) at WARNING.
    """
    account_label = account if account in resources.settings.accounts else UNKNOWN
    list_label = list_name if list_name in LISTS else UNKNOWN
    job = ObservedJob(account_label, list_label)
    STATS_READER.watch(resources)
    started = time.monotonic()
    status = "failed"
    failure: BaseException | None = None
    with job_context(JobContext(task_id, account_label, list_label)):
        try:
            yield job
            status = "done"
        except asyncio.CancelledError:
            status = "cancelled"
            logger.warning("%s job cut off by the worker's shutdown", kind)
            raise
        except Exception as error:
            failure = error
            logger.error("%s job failed: %s", kind, describe_error(error))
            raise
        finally:
            JOBS.labels(account_label, list_label, kind, status).inc()
            JOB_SECONDS.labels(account_label, list_label, kind).observe(time.monotonic() - started)
            if failure is not None:
                JOB_FAILURES.labels(account_label, list_label, kind, type(failure).__name__).inc()
            if kind == "sync":  # a sync cut off is recorded failed: counted so
                if job.sync_status is None:
                    locked = isinstance(failure, SyncLockedError)
                    job.sync_status = "locked" if locked else "failed"
                SYNC_RUNS.labels(account_label, list_label, job.sync_status).inc()
            STATS_READER.read()
