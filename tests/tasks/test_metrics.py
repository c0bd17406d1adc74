"""``yeastar-csss worker --metrics-port``: a real worker process (and a fleet of two) runs
sync jobs against sandboxes, and its ``/metrics``, scraped over HTTP, says what the jobs,
the sandboxes and Redis say, and no secret."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

pytest.importorskip("taskiq_redis", reason="needs the [workers] extra")
pytest.importorskip("prometheus_client", reason="needs the [workers] extra")

from aiohttp import web
from taskiq import AsyncBroker

from yeastar_csss_async.sandbox import SANDBOX_CLIENT_ID, Sandbox, SandboxConfig
from yeastar_csss_async.sandbox._app import TOKEN_PATH
from yeastar_csss_async.tasks import DEFAULT_QUEUE, enqueue_sync, make_broker

from tests._support.redis_server import RedisServer
from tests.tasks._watched import Samples, metrics_url, scrape, total, value, watched_worker
from tests.tasks.test_tasks import READY_TIMEOUT, SECRETS, accounts_toml, result_of

ORDERS = 37
CONFIG = SandboxConfig(orders=ORDERS, products_per_line=6, package_orders=21)


class Hold:
    """A sandbox intercept that holds every business request until :meth:`release`;
    ``held`` is set when the first one arrives."""

    def __init__(self) -> None:
        self.held = asyncio.Event()
        self._released = asyncio.Event()

    async def __call__(self, request: web.Request) -> None:
        if request.path != TOKEN_PATH:
            self.held.set()
            await self._released.wait()

    def release(self) -> None:
        self._released.set()


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'watched.db'}"


@contextlib.asynccontextmanager
async def started_broker(redis_url: str) -> AsyncIterator[AsyncBroker]:
    broker = make_broker(redis_url)
    await broker.startup()
    try:
        yield broker
    finally:
        await broker.shutdown()


async def scrape_until_settled(url: str) -> tuple[str, Samples]:
    """A scrape taken once the finished jobs are acknowledged (the result is saved just
    before the acknowledgement): the condition is awaited, bounded by the hang guard."""
    async with asyncio.timeout(READY_TIMEOUT):
        while True:
            text, samples = await scrape(url)
            if value(samples, "yeastar_csss_queue_pending", queue=DEFAULT_QUEUE) == 0:
                return text, samples
            await asyncio.sleep(0.05)


async def test_metrics_of_a_sync_job_match_its_report_the_sandbox_and_the_queue(
    redis_url: str, redis_server: RedisServer, db_url: str, tmp_path: Path
) -> None:
    hold = Hold()
    async with Sandbox(CONFIG) as sandbox, started_broker(redis_url) as broker:
        sandbox.intercept = hold
        accounts = tmp_path / "accounts.toml"
        accounts.write_text(accounts_toml({"acme": sandbox.base_url}))
        async with watched_worker(redis_url, accounts, db_url, "--metrics-port", "0") as running:
            url = metrics_url(running)
            assert url.startswith("http://127.0.0.1:")
            task_id = await enqueue_sync(broker, "acme", "orders")
            await running._guard(hold.held.wait(), "the job's first page request")
            _, during = await scrape(url)  # the job holds its message: delivered, not acked
            hold.release()
            result = await result_of(broker, task_id)
            text, samples = await scrape_until_settled(url)
            assert await running.stop() == 0
    assert not result.is_err, result.error
    report = result.return_value
    assert report["status"] == "complete"
    assert report["seen"] == ORDERS
    db = int(redis_url.rsplit("/", 1)[1])
    assert redis_server.command("XLEN", DEFAULT_QUEUE, db=db) == 1
    queue = {"queue": DEFAULT_QUEUE}
    assert value(during, "yeastar_csss_queue_pending", **queue) == 1
    assert value(during, "yeastar_csss_queue_waiting", **queue) == 0
    assert value(during, "yeastar_csss_queue_length", **queue) == 1
    assert value(during, "yeastar_csss_records_total", account="acme", list="orders") is None
    assert value(samples, "yeastar_csss_queue_up", **queue) == 1
    assert value(samples, "yeastar_csss_queue_length", **queue) == 1
    assert value(samples, "yeastar_csss_queue_waiting", **queue) == 0
    job = {"account": "acme", "list": "orders"}
    assert value(samples, "yeastar_csss_records_total", **job) == report["seen"]
    assert value(samples, "yeastar_csss_sync_runs_total", **job, status="complete") == 1
    assert total(samples, "yeastar_csss_sync_runs_total") == 1
    assert value(samples, "yeastar_csss_jobs_total", **job, kind="sync", status="done") == 1
    assert value(samples, "yeastar_csss_job_duration_seconds_count", **job, kind="sync") == 1
    assert sandbox.stats.requests > ORDERS // 100  # the token and every page
    assert (
        value(samples, "yeastar_csss_requests_total", api="yeastar", outcome="sent")
        == sandbox.stats.requests
    )
    assert total(samples, "yeastar_csss_requests_total", api="csss") == 0
    assert total(samples, "yeastar_csss_requests_total", outcome="retried") == 0
    assert sandbox.stats.token_requests == 1
    assert value(samples, "yeastar_csss_token_renewals_total", account="acme") == 1
    assert total(samples, "yeastar_csss_rate_limit_pauses_total") == 0
    for secret in (*SECRETS, SANDBOX_CLIENT_ID):
        assert secret not in text


async def test_a_failed_job_is_counted_and_an_unknown_account_is_not_a_label(
    redis_url: str, db_url: str, tmp_path: Path
) -> None:
    async with Sandbox(CONFIG) as sandbox, started_broker(redis_url) as broker:
        accounts = tmp_path / "accounts.toml"
        accounts.write_text(accounts_toml({"acme": sandbox.base_url}, broken=True))
        async with watched_worker(redis_url, accounts, db_url, "--metrics-port", "0") as running:
            broken = await result_of(broker, await enqueue_sync(broker, "broken", "orders"))
            # A caller that put a secret where the account goes: never a label.
            misused = await result_of(broker, await enqueue_sync(broker, SECRETS[0], "orders"))
            text, samples = await scrape_until_settled(metrics_url(running))
            assert await running.stop() == 0
    assert broken.is_err
    assert misused.is_err
    job = {"account": "broken", "list": "orders"}
    assert value(samples, "yeastar_csss_sync_runs_total", **job, status="failed") == 1
    assert value(samples, "yeastar_csss_jobs_total", **job, kind="sync", status="failed") == 1
    assert (
        value(
            samples,
            "yeastar_csss_job_failures_total",
            **job,
            kind="sync",
            error="ConfigurationError",
        )
        == 1
    )
    unknown = {"account": "(unknown)", "list": "orders"}
    assert value(samples, "yeastar_csss_sync_runs_total", **unknown, status="failed") == 1
    assert value(samples, "yeastar_csss_records_total", **job) is None
    assert total(samples, "yeastar_csss_requests_total") == 0  # no client was ever made
    for secret in SECRETS:
        assert secret not in text


async def test_a_fleet_of_two_processes_serves_both_processes_counts_on_one_port(
    redis_url: str, db_url: str, tmp_path: Path
) -> None:
    hold = Hold()
    scratch = tmp_path / "tmp"  # the supervisor's TMPDIR: where its metrics directory goes
    scratch.mkdir()
    async with (
        Sandbox(CONFIG) as acme,
        Sandbox(SandboxConfig(seed=12, orders=ORDERS + 5, products_per_line=6)) as globex,
        started_broker(redis_url) as broker,
    ):
        # acme's job cannot end before globex's job has started: with one job per process,
        # the two jobs run in the two processes.
        acme.intercept = hold
        globex.after_page = lambda path, page: hold.release()
        accounts = tmp_path / "accounts.toml"
        accounts.write_text(accounts_toml({"acme": acme.base_url, "globex": globex.base_url}))
        async with watched_worker(
            redis_url,
            accounts,
            db_url,
            "--metrics-port",
            "0",
            "--jobs",
            "1",
            workers=2,
            env={"TMPDIR": str(scratch)},
        ) as fleet:
            first = await enqueue_sync(broker, "acme", "orders")
            await fleet._guard(hold.held.wait(), "acme's job to start")
            second = await enqueue_sync(broker, "globex", "orders")
            results = [await result_of(broker, first), await result_of(broker, second)]
            assert [d.name for d in scratch.iterdir()]  # the children write there
            text, samples = await scrape_until_settled(metrics_url(fleet))
            assert await fleet.stop() == 0
    for result in results:
        assert not result.is_err, result.error
    seen = {r.return_value["account"]: r.return_value["seen"] for r in results}
    assert seen == {"acme": ORDERS, "globex": ORDERS + 5}
    for account, count in seen.items():
        job = {"account": account, "list": "orders"}
        assert value(samples, "yeastar_csss_records_total", **job) == count
        assert value(samples, "yeastar_csss_sync_runs_total", **job, status="complete") == 1
        assert value(samples, "yeastar_csss_job_duration_seconds_count", **job, kind="sync") == 1
    assert (
        value(samples, "yeastar_csss_requests_total", api="yeastar", outcome="sent")
        == acme.stats.requests + globex.stats.requests
    )
    assert value(samples, "yeastar_csss_queue_length", queue=DEFAULT_QUEUE) == 2
    assert list(scratch.iterdir()) == []  # the metrics directory went with the supervisor
    for secret in SECRETS:
        assert secret not in text
