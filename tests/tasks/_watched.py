"""A ``yeastar-csss worker`` process started with the options an operator watches it by
(``--metrics-port``, ``--log-format``), and a scrape of its ``/metrics``."""

from __future__ import annotations

import re

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from tests.tasks.test_tasks import READY_TIMEOUT, Worker, worker

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
_METRICS_AT = re.compile(r"metrics at (http://\S+/metrics)")


watched_worker = worker
"""A worker started with the options an operator watches it by (see
:func:`tests.tasks.test_tasks.worker`: it waits for the metrics' address too)."""


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
