"""A ``yeastar-csss worker`` process started with the options an operator watches it by
(``--metrics-port``, ``--log-format``), and a scrape of its ``/metrics``."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import sys
from collections.abc import AsyncIterator, Mapping
from pathlib import Path

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from tests.tasks.test_tasks import ENV, READY_TIMEOUT, Worker

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
_METRICS_AT = re.compile(r"metrics at (http://\S+/metrics)")


@contextlib.asynccontextmanager
async def watched_worker(
    redis_url: str,
    accounts: Path,
    db_url: str,
    *options: str,
    workers: int = 1,
    env: Mapping[str, str] | None = None,
) -> AsyncIterator[Worker]:
    """The worker, once every process said it is ready (and the metrics' address, if
    served)."""
    argv = [
        sys.executable,
        "-m",
        "yeastar_csss_async",
        "worker",
        "--redis",
        redis_url,
        "--accounts",
        str(accounts),
        "--db",
        db_url,
        "--workers",
        str(workers),
        *options,
    ]
    process = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **ENV, **(env or {})},
    )
    running = Worker(process)
    try:
        await running.wait_for(" ready: ", workers)
        if "--metrics-port" in options:
            await running.wait_for("metrics at ")
        yield running
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        await running._reader


def metrics_url(worker: Worker) -> str:
    """The address the worker printed (it was given port 0)."""
    for line in worker.lines:
        found = _METRICS_AT.search(line)
        if found:
            return found.group(1)
    raise AssertionError(f"no metrics address in {worker.lines}")


async def scrape(url: str) -> tuple[str, Samples]:
    """The text of ``/metrics`` and its samples by name and labels."""
    timeout = aiohttp.ClientTimeout(total=READY_TIMEOUT)
    async with aiohttp.ClientSession(timeout=timeout) as session, session.get(url) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        text = await response.text()
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[sample.name, frozenset(sample.labels.items())] = sample.value
    return text, samples


def value(samples: Samples, name: str, **labels: str) -> float | None:
    """The sample ``name`` with exactly ``labels`` (None when absent)."""
    return samples.get((name, frozenset(labels.items())))


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum of the samples ``name`` whose labels include ``labels``."""
    wanted = set(labels.items())
    return sum(v for (n, got), v in samples.items() if n == name and wanted <= got)
