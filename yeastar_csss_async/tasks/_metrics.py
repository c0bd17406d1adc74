"""A worker's Prometheus metrics (prometheus-client), and the HTTP endpoint that serves them.

The metrics live in prometheus-client's default registry, so a worker run by any means
(``yeastar-csss worker``, taskiq's own CLI) counts its jobs. With several processes
(``yeastar-csss worker --workers N``) the supervisor sets ``PROMETHEUS_MULTIPROC_DIR`` for its
children, which then only write their values there, and serves the sum
(:class:`~prometheus_client.multiprocess.MultiProcessCollector`) on one port.

Labels are account names of the accounts file, list names, API names and fixed words, never
a credential: a job naming an account the file does not define is counted under
``(unknown)``.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import weakref
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from .._base import BaseClient
from .._yeastar import YeastarPartnerClient

if TYPE_CHECKING:
    from ._resources import WorkerResources

__all__ = [
    "JOBS",
    "JOB_FAILURES",
    "JOB_SECONDS",
    "RATE_LIMIT_PAUSES",
    "RECORDS",
    "REQUESTS",
    "STATS_READ_INTERVAL",
    "SYNC_RUNS",
    "TOKEN_RENEWALS",
    "ClientStatsReader",
    "MetricsServer",
    "QueueDepthCollector",
    "client_stats",
    "read_client_stats_every",
    "serve_metrics",
]

UNKNOWN = "(unknown)"
"""The label of an account or list a job named that the worker does not know."""
STATS_READ_INTERVAL = 2.0
"""Seconds between two readings of the clients' counters while jobs run (they are also read
when each job ends)."""

RECORDS = Counter(
    "yeastar_csss_records",
    "Records a job synced (the run's seen records) or exported.",
    ["account", "list"],
)
SYNC_RUNS = Counter(
    "yeastar_csss_sync_runs",
    "Sync jobs by outcome: complete, failed, or locked (another sync of the account and list "
    "was running: no run was made).",
    ["account", "list", "status"],
)
JOBS = Counter(
    "yeastar_csss_jobs",
    "Jobs ended, by kind (sync, export) and status: done, failed, or cancelled (cut off by a "
    "shutdown; handed to another worker).",
    ["account", "list", "kind", "status"],
)
JOB_FAILURES = Counter(
    "yeastar_csss_job_failures",
    "Jobs that failed, by the error's type (ConfigurationError, APIError, ...).",
    ["account", "list", "kind", "error"],
)
JOB_SECONDS = Histogram(
    "yeastar_csss_job_duration_seconds",
    "Seconds a job ran, whatever its outcome.",
    ["account", "list", "kind"],
    buckets=(0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600, float("inf")),
)
REQUESTS = Counter(
    "yeastar_csss_requests",
    "HTTP requests of the worker's clients: sent (every attempt, token requests included), "
    "retried, rate_limited (429 answers).",
    ["api", "outcome"],
)
RATE_LIMIT_PAUSES = Counter(
    "yeastar_csss_rate_limit_pauses",
    "429 answers, each of which paused every request of the account.",
    ["account", "api"],
)
TOKEN_RENEWALS = Counter(
    "yeastar_csss_token_renewals",
    "Yeastar access tokens obtained by this worker (first grant and renewals).",
    ["account"],
)


def client_stats(client: BaseClient) -> tuple[int, int, int, int]:
    """``(requests, retries, rate_limited, token_requests)`` of ``client`` so far."""
    stats = client.stats
    tokens = client.token_requests if isinstance(client, YeastarPartnerClient) else 0
    return stats.requests, stats.retries, stats.rate_limited, tokens


class ClientStatsReader:
    """Adds what each client counted since the last reading (``client.stats``,
    ``token_requests``) to the request, pause and token counters. Reads the clients of every
    :class:`WorkerResources` it watches; call from the event loop's thread only."""

    def __init__(self) -> None:
        self._watched: weakref.WeakSet[WorkerResources] = weakref.WeakSet()
        self._last: weakref.WeakKeyDictionary[BaseClient, tuple[int, int, int, int]] = (
            weakref.WeakKeyDictionary()
        )

    def watch(self, resources: WorkerResources) -> None:
        """Read the clients of ``resources`` from now on."""
        self._watched.add(resources)

    def read(self) -> None:
        """Count every watched client's requests, retries, 429s and tokens since the last
        reading."""
        for resources in list(self._watched):
            for account, api, client in resources.clients():
                self._read(account, api, client)

    def _read(self, account: str, api: str, client: BaseClient) -> None:
        now = client_stats(client)
        before = self._last.get(client, (0, 0, 0, 0))
        self._last[client] = now
        sent, retried, limited, tokens = (max(a - b, 0) for a, b in zip(now, before, strict=True))
        for outcome, delta in (("sent", sent), ("retried", retried), ("rate_limited", limited)):
            if delta:
                REQUESTS.labels(api, outcome).inc(delta)
        if limited:
            RATE_LIMIT_PAUSES.labels(account, api).inc(limited)
        if tokens:
            TOKEN_RENEWALS.labels(account).inc(tokens)


STATS_READER = ClientStatsReader()
"""The process's reader (jobs register their worker's resources with it)."""


async def read_client_stats_every(seconds: float = STATS_READ_INTERVAL) -> None:
    """Read the clients' counters every ``seconds`` until cancelled, so a long job's
    requests show while it runs."""
    while True:
        await asyncio.sleep(seconds)
        STATS_READER.read()


class QueueDepthCollector(Collector):
    """The job stream's depth, read from Redis on each scrape: ``yeastar_csss_queue_length``
    (entries in the stream), ``yeastar_csss_queue_pending`` (delivered to a worker, not yet
    acknowledged: running, or held by a dead worker), ``yeastar_csss_queue_waiting`` (not yet
    delivered; Redis 7 and later) and ``yeastar_csss_queue_up`` (0 when Redis could not be
    read within two seconds). The Redis URL (and its password) appears in none of them."""

    def __init__(self, redis_url: str, stream: str, group: str) -> None:
        import redis

        self._redis = redis.Redis.from_url(
            redis_url, socket_timeout=2.0, socket_connect_timeout=2.0, decode_responses=True
        )
        self._stream = stream
        self._group = group
        self._lock = threading.Lock()  # scrapes may come on several threads

    def describe(self) -> Iterable[Metric]:
        return self._families()

    def collect(self) -> Iterable[Metric]:
        from redis.exceptions import RedisError, ResponseError

        families = self._families()
        up, length, pending, waiting = families
        try:
            with self._lock:
                size = int(self._redis.xlen(self._stream))
                try:
                    groups = list(self._redis.xinfo_groups(self._stream))
                except ResponseError:  # no stream yet: no worker ever started
                    groups = []
        except (RedisError, OSError):
            up.add_metric([self._stream], 0)
            return [up]
        up.add_metric([self._stream], 1)
        length.add_metric([self._stream], size)
        group = next((g for g in groups if g.get("name") == self._group), None)
        pending.add_metric([self._stream], int(group["pending"]) if group else 0)
        lag = group.get("lag") if group else size
        if lag is not None:
            waiting.add_metric([self._stream], int(lag))
        return families

    def _families(self) -> list[GaugeMetricFamily]:
        return [
            GaugeMetricFamily(
                "yeastar_csss_queue_up",
                "1 when the job stream was read from Redis.",
                labels=["queue"],
            ),
            GaugeMetricFamily(
                "yeastar_csss_queue_length", "Entries in the job stream.", labels=["queue"]
            ),
            GaugeMetricFamily(
                "yeastar_csss_queue_pending",
                "Jobs delivered to a worker and not yet acknowledged.",
                labels=["queue"],
            ),
            GaugeMetricFamily(
                "yeastar_csss_queue_waiting",
                "Jobs in the stream not yet delivered to any worker.",
                labels=["queue"],
            ),
        ]

    def close(self) -> None:
        """Close the Redis connections."""
        self._redis.close()


class MetricsServer:
    """prometheus-client's HTTP server on a thread of its own: ``/metrics`` (any path, in
    fact) answers the registry's text exposition."""

    def __init__(self, host: str, port: int, registry: CollectorRegistry) -> None:
        self._server, self._thread = start_http_server(port, host, registry)

    @property
    def port(self) -> int:
        """The port it listens on (the one chosen when asked for port 0)."""
        return int(self._server.server_port)

    def close(self) -> None:
        """Stop serving and wait for the server's thread."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


@contextlib.contextmanager
def serve_metrics(
    host: str,
    port: int,
    *,
    redis_url: str,
    stream: str,
    group: str,
    multiprocess_dir: str | None = None,
) -> Iterator[MetricsServer]:
    """Serve the worker's metrics and the queue's depth on ``host:port`` until the block
    ends: this process's (the default registry), or with ``multiprocess_dir`` the sum of
    what the processes writing there counted."""
    queue = QueueDepthCollector(redis_url, stream, group)
    if multiprocess_dir is None:
        registry = REGISTRY
    else:
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=multiprocess_dir)  # type: ignore[no-untyped-call]
    registry.register(queue)
    try:
        server = MetricsServer(host, port, registry)
        try:
            yield server
        finally:
            server.close()
    finally:
        registry.unregister(queue)
        queue.close()
