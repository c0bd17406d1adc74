"""``yeastar-csss result TASK_ID`` and ``yeastar-csss enqueue ... --wait``: what became of a
job, read through taskiq's result backend (the one :func:`~yeastar_csss_async.tasks.make_broker`
configures with ``results=True``), never by guessing its keys.

stdout gets the job's summary line (exit 0) or ``pending`` (exit 75); a job that failed gives
its error as one line on stderr (exit 1).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import time
from datetime import datetime
from typing import Any

from ._fleet import redis_errors, redis_failure, tasks_module
from ._messages import say

__all__ = ["EX_TEMPFAIL", "run_result", "summary_line", "wait_for_result"]

EX_TEMPFAIL = 75
"""The exit code of a job with no result (yet): queued, running, or an unknown id."""
_POLL_FIRST = 0.05
_POLL_MAX = 0.5
"""Seconds between two looks at the result backend while waiting: doubling up to this."""


async def run_result(args: argparse.Namespace) -> int:
    """Look once for the result of ``args.task_id``."""
    return await wait_for_result(args.redis, args.queue, args.task_id, None)


async def wait_for_result(redis_url: str, queue: str, task_id: str, wait: float | None) -> int:
    """Print the job's summary line (0), its error (1) or ``pending`` (75). ``wait``: seconds
    to wait for the result (``math.inf``: as long as it takes; None: look once)."""
    tasks = tasks_module()
    broker = tasks.make_broker(redis_url, queue_name=queue, results=True)
    backend = broker.result_backend
    try:
        result = await _look(backend, task_id, wait)
    except (OSError, redis_errors()) as error:
        raise redis_failure(redis_url, error) from None
    finally:
        with contextlib.suppress(Exception):
            await backend.shutdown()
    if result is None:
        print("pending", flush=True)
        return EX_TEMPFAIL
    if result.is_err:
        failure = result.error
        say(
            f"error: {type(failure).__name__}: {failure}"
            if failure is not None
            else "error: the job failed"
        )
        return 1
    print(summary_line(result.return_value), flush=True)
    return 0


async def _look(backend: Any, task_id: str, wait: float | None) -> Any:
    """The job's :class:`taskiq.TaskiqResult`, or None if there is none within ``wait``."""
    from taskiq_redis.exceptions import ResultIsMissingError

    deadline = time.monotonic() + (wait if wait is not None else 0.0)
    poll = _POLL_FIRST
    while True:
        if await backend.is_result_ready(task_id):
            with contextlib.suppress(ResultIsMissingError):  # expired since: none after all
                return await backend.get_result(task_id)
        left = deadline - time.monotonic()
        if wait is None or left <= 0:
            return None
        await asyncio.sleep(min(poll, left) if math.isfinite(left) else poll)
        poll = min(poll * 2, _POLL_MAX)


def summary_line(value: object) -> str:
    """A job's return value as one line: a sync's ``SyncReport.summary()`` (``orders: 600
    seen, 100 new, ...``), an export's ``orders: 600 records -> PATH``, else its JSON."""
    if isinstance(value, dict):
        if "records" in value and "path" in value:
            return f"{value.get('list')}: {value['records']} records -> {value['path']}"
        if "seen" in value:
            with contextlib.suppress(TypeError, ValueError, ImportError):
                return str(_report(value).summary())
    return json.dumps(value, ensure_ascii=False, default=str)


def _report(value: dict[str, Any]) -> Any:
    import attrs

    from ..sync import SyncReport

    fields = {field.name for field in attrs.fields(SyncReport)}
    data = {key: item for key, item in value.items() if key in fields}
    for key in ("started_at", "finished_at"):
        if isinstance(data.get(key), str):
            data[key] = datetime.fromisoformat(data[key])
    return SyncReport(**data)
