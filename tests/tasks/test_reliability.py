"""No job lost, none run twice at once: real ``yeastar-csss worker`` processes, a real
redis-server, a sandbox on loopback and a real SQLite database. A worker SIGKILLed midway
leaves its job to another worker once its claim runs out; a worker stopped with a short
shutdown timeout hands its job back at once (and records the cut-off sync ``failed``); a
job that runs for many claim timeouts is never taken by an idle second worker; a dead
worker's job is taken over on a queue that receives nothing new."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("taskiq_redis", reason="needs the [workers] extra")

from yeastar_csss_async.sandbox import Sandbox, SandboxConfig
from yeastar_csss_async.sync import SyncStore
from yeastar_csss_async.tasks import enqueue_sync, make_broker

from tests.tasks.test_tasks import READY_TIMEOUT, result_of, worker

ORDERS = 120
PAGE_LATENCY = 0.2
"""Seconds the sandbox waits before each answer: a sync of ORDERS orders (page size 100:
2 pages, read one after the other at first) takes a few tenths of a second, long enough to be
stopped midway once its first request arrived."""


def _accounts(base_url: str, *, timeout: float = 1.0) -> str:
    # A short request timeout: a killed worker's fleet-wide slots free after 2 x timeout
    # (at least timeout + 5 s), so the re-run is not held up by leases for the default 60 s.
    return f"""
[accounts.acme]
yeastar_client_id_env = "YCA_TEST_CLIENT_ID"
yeastar_client_secret_env = "YCA_TEST_CLIENT_SECRET"
base_url = "{base_url}"
max_concurrency = 2
timeout = {timeout}
"""


_worker = worker


async def _runs(db_url: str) -> list[tuple[str, int]]:
    async with SyncStore(db_url) as store:
        return [(run.status, run.seen) for run in reversed(await store.runs())]


async def _until(condition: Any, what: str, bound: float) -> None:
    """Wait until ``condition()`` (a coroutine function) is true, polling the real world
    (the sandbox's counters, Redis); ``bound`` only turns a hang into a failure."""
    deadline = time.monotonic() + bound
    while not await condition():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {bound:.0f} s: {what}")
        await asyncio.sleep(0.02)


@pytest.fixture
async def slow_sandbox() -> AsyncIterator[Sandbox]:
    async with Sandbox(SandboxConfig(orders=ORDERS, latency=PAGE_LATENCY)) as sandbox:
        yield sandbox


def _requests(sandbox: Sandbox) -> int:
    return int(sandbox.stats.requests)


async def test_a_sigkilled_workers_job_is_completed_by_another_worker(
    redis_url: str, slow_sandbox: Sandbox, tmp_path: Path
) -> None:
    accounts = tmp_path / "accounts.toml"
    accounts.write_text(_accounts(slow_sandbox.base_url), encoding="utf-8")
    db_url = f"sqlite:///{tmp_path / 'jobs.db'}"
    claim = 2.0
    broker = make_broker(redis_url)
    await broker.startup()
    try:
        async with _worker(redis_url, accounts, db_url, "--claim-timeout", str(claim)) as first:
            before = _requests(slow_sandbox)
            task_id = await enqueue_sync(broker, "acme", "orders")

            async def started() -> bool:
                return _requests(slow_sandbox) > before

            await _until(started, "the first worker's job to reach the sandbox", READY_TIMEOUT)
            first.process.send_signal(signal.SIGKILL)
            await first.process.wait()
        async with _worker(redis_url, accounts, db_url, "--claim-timeout", str(claim)):
            # the job comes back once its claim is `claim` seconds old, and then waits at
            # most for the dead worker's slot leases (2 x the account's 1 s timeout, at
            # least 6 s); READY_TIMEOUT only turns a hang into a failure
            result = await result_of(broker, task_id)
    finally:
        await broker.shutdown()
    assert not result.is_err, result.error
    assert result.return_value["seen"] == ORDERS
    runs = await _runs(db_url)
    # the killed run was marked failed by the next one; the next one read every order
    assert runs[-1] == ("complete", ORDERS)
    assert [status for status, _ in runs[:-1]] == ["failed"]


async def test_a_job_cut_off_by_a_shutdown_is_handed_back_and_recorded_failed(
    redis_url: str, tmp_path: Path
) -> None:
    # Each answer takes 2 s, the worker's reads wait at most 1 s: the job is still at its
    # first pages when the worker, told to stop, cuts it off.
    async with Sandbox(SandboxConfig(orders=ORDERS, latency=2.0)) as sandbox:
        await _cut_off_and_hand_back(redis_url, sandbox, tmp_path)


async def _cut_off_and_hand_back(redis_url: str, slow_sandbox: Sandbox, tmp_path: Path) -> None:
    accounts = tmp_path / "accounts.toml"
    accounts.write_text(_accounts(slow_sandbox.base_url, timeout=10), encoding="utf-8")
    db_url = f"sqlite:///{tmp_path / 'jobs.db'}"
    # A claim timeout far longer than the test: only a hand-back can explain that the
    # second worker takes the job over.
    long_claim = "600"
    broker = make_broker(redis_url)
    await broker.startup()
    try:
        async with _worker(
            redis_url,
            accounts,
            db_url,
            "--claim-timeout",
            long_claim,
            "--shutdown-timeout",
            "0",
        ) as first:
            before = _requests(slow_sandbox)
            task_id = await enqueue_sync(broker, "acme", "orders")

            async def started() -> bool:
                return _requests(slow_sandbox) > before

            await _until(started, "the job to reach the sandbox", READY_TIMEOUT)
            assert await first.stop() == 0
            said = "\n".join(first.lines)
            assert "handed back" in said, said
            assert "Session is closed" not in said, said
            assert "Traceback" not in said, said
        assert [status for status, _ in await _runs(db_url)] == ["failed"]
        async with _worker(redis_url, accounts, db_url, "--claim-timeout", long_claim):
            result = await result_of(broker, task_id)
    finally:
        await broker.shutdown()
    assert not result.is_err, result.error
    assert [status for status, _ in await _runs(db_url)] == ["failed", "complete"]


async def test_a_running_job_is_never_taken_by_a_second_worker(
    redis_url: str, tmp_path: Path
) -> None:
    claim = 1.0
    # Pages answered after 1.5 claim timeouts each, read one at a time: the job runs for
    # several claim timeouts while a second worker polls for idle claims.
    config = SandboxConfig(orders=400, latency=1.5 * claim)
    async with Sandbox(config) as sandbox:
        accounts = tmp_path / "accounts.toml"
        accounts.write_text(_accounts(sandbox.base_url, timeout=10), encoding="utf-8")
        db_url = f"sqlite:///{tmp_path / 'jobs.db'}"
        broker = make_broker(redis_url)
        await broker.startup()
        options = ("--claim-timeout", str(claim))
        try:
            async with (
                _worker(redis_url, accounts, db_url, *options) as first,
                _worker(redis_url, accounts, db_url, *options) as second,
            ):
                task_id = await enqueue_sync(broker, "acme", "orders")
                result = await result_of(broker, task_id)
                lines = first.lines + second.lines
        finally:
            await broker.shutdown()
        assert not result.is_err, result.error
        assert result.return_value["seen"] == 400
        # one run only: no worker took the job over while it ran
        assert await _runs(db_url) == [("complete", 400)]
        assert not [line for line in lines if "taking over" in line or "no longer" in line]


async def test_a_dead_consumers_job_is_taken_over_on_an_idle_queue(redis_url: str) -> None:
    claim = 0.5
    dead = make_broker(redis_url, reclaim_after=claim, results=False)
    alive = make_broker(redis_url, reclaim_after=claim, results=False)
    await dead.startup()
    await alive.startup()
    try:
        await enqueue_sync(dead, "acme", "orders")
        taken = await dead.next_job()  # delivered to `dead`, which then never beats
        assert taken is not None
        started = time.monotonic()
        job = None
        while job is None:  # nothing new arrives: only the reclaim can deliver it
            job = await alive.next_job()
            assert time.monotonic() - started < READY_TIMEOUT
        assert job.entry_id == taken.entry_id
        assert time.monotonic() - started >= claim  # not before its claim ran out
        assert not await dead.keep_claim(taken)  # and the dead one's claim is gone
        assert await alive.keep_claim(job)
    finally:
        await dead.shutdown()
        await alive.shutdown()
