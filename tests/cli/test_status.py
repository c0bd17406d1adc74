"""``yeastar-csss status`` against a queue and a coordinator state the test sets up in a real
redis-server: jobs no worker took, a job held by a consumer process killed with SIGKILL, a
job held by a consumer that is alive, a slot lease, a pause and a stored token (whose value
must never appear)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("taskiq_redis", reason="needs the [workers] extra")

import redis.asyncio as aioredis

from yeastar_csss_async._apis import REDIS_ENV
from yeastar_csss_async._coordination import SharedToken
from yeastar_csss_async.redis import RedisCoordinator
from yeastar_csss_async.tasks import DEFAULT_QUEUE, enqueue_sync, make_broker

from tests._support.redis_server import RedisServer, password_url

COMMAND = [sys.executable, "-m", "yeastar_csss_async"]
BASE_ENV = {k: v for k, v in os.environ.items() if not k.startswith(("YEASTAR_", "CSSS_"))}
GROUP = f"{DEFAULT_QUEUE}:workers"
DEAD_AFTER = 2.0
"""``--dead-after`` of the test: the killed consumer's job must have been idle this long
(measured by Redis, waited for below); the live consumer touches Redis every 20 ms."""
TIMEOUT = 60.0
"""Guards against a hang only."""
ACCESS_TOKEN = "access-SECRET-3f9c2b"
REFRESH_TOKEN = "refresh-SECRET-77d1"

# A consumer of the workers' group that takes one job, says so, and waits to be killed.
GHOST = """
import sys, time, redis
client = redis.Redis.from_url(sys.argv[1])
taken = client.xreadgroup(sys.argv[2], "ghost", {sys.argv[3]: ">"}, count=1)
print(taken[0][1][0][0].decode(), flush=True)
time.sleep(3600)
"""


async def until(check: object, what: str) -> None:
    """Wait (polling Redis every 20 ms) until ``await check()`` is true."""
    deadline = time.monotonic() + TIMEOUT
    while not await check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what}")
        await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def alive_consumer(client: aioredis.Redis) -> AsyncIterator[str]:
    """A consumer that took one job and keeps reading (its own history), as a live worker
    keeps reading the stream."""
    taken: Any = await client.xreadgroup(GROUP, "alive", {DEFAULT_QUEUE: ">"}, count=1)
    job = taken[0][1][0][0]

    async def keep_reading() -> None:
        while True:
            await client.xreadgroup(GROUP, "alive", {DEFAULT_QUEUE: "0"}, count=1)
            await asyncio.sleep(0.02)

    reader = asyncio.create_task(keep_reading())
    try:
        yield str(job)
    finally:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader


async def test_status_shows_waiting_running_and_dead_jobs_slots_pause_and_token_age_only(
    redis_server: RedisServer, redis_url: str, tmp_path: Path
) -> None:
    broker = make_broker(redis_url, results=False)
    await broker.startup()  # the workers' consumer group, as the first worker makes it
    try:
        for account in ("a", "b", "c", "d", "e"):
            await enqueue_sync(broker, account, "orders")
    finally:
        await broker.shutdown()
    ghost = await asyncio.create_subprocess_exec(
        sys.executable, "-c", GHOST, redis_url, GROUP, DEFAULT_QUEUE,
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert ghost.stdout is not None
    await asyncio.wait_for(ghost.stdout.readline(), TIMEOUT)  # it holds one job
    ghost.send_signal(signal.SIGKILL)
    await ghost.wait()

    client = aioredis.from_url(redis_url, decode_responses=True)
    coordinator = RedisCoordinator.from_url(redis_url)
    try:
        link = coordinator.link("yeastar-test1", max_concurrency=3, lease_seconds=60)
        other = coordinator.link("csss-test2", max_concurrency=3, lease_seconds=60)
        stored = time.time()
        await link.store_token(
            SharedToken(ACCESS_TOKEN, expires_at=stored + 3600, refresh_token=REFRESH_TOKEN)
        )

        async def ghost_is_dead() -> bool:
            entries = await client.xpending_range(DEFAULT_QUEUE, GROUP, "-", "+", 10, "ghost")
            consumers = await client.xinfo_consumers(DEFAULT_QUEUE, GROUP)
            idle = {c["name"]: c["idle"] for c in consumers}
            return (
                bool(entries)
                and min(entries[0]["time_since_delivered"], idle["ghost"]) > DEAD_AFTER * 1000
            )

        await until(ghost_is_dead, "the killed consumer's job to be idle long enough")
        async with link.slot(), other.slot(), other.slot(), alive_consumer(client):
            await link.pause(300)  # after the slot: a paused account gives none
            with password_url(redis_server, redis_url) as secret_url:
                env = {**BASE_ENV, REDIS_ENV: secret_url}
                args = ("status", "--dead-after", str(DEAD_AFTER))
                plain = await run(*args, env=env, cwd=tmp_path)
                as_json = await run(*args, "--json", env=env, cwd=tmp_path)
        elapsed = time.time() - stored
    finally:
        await coordinator.aclose()
        await client.aclose()

    lines = plain.splitlines()
    assert lines[0] == f"queue {DEFAULT_QUEUE} waiting=3 running=1 dead=1 dead_after=2s"
    consumers = {line.split()[1]: line for line in lines if line.startswith("consumer ")}
    assert set(consumers) == {"ghost", "alive"}
    assert " pending=1 " in consumers["ghost"]
    assert " pending=1 " in consumers["alive"]
    accounts = {line.split()[1]: line for line in lines if line.startswith("account ")}
    assert set(accounts) == {"yeastar-test1", "csss-test2"}
    assert accounts["csss-test2"] == "account csss-test2 slots=2 pause=0.0s token=none"
    found = re.fullmatch(
        r"account yeastar-test1 slots=1 pause=([\d.]+)s token_age=(\d+)s token_ttl=(\d+)s",
        accounts["yeastar-test1"],
    )
    assert found, accounts["yeastar-test1"]
    pause, age, ttl = (float(group) for group in found.groups())
    assert 300 - elapsed - 0.1 <= pause <= 300
    assert 0 <= age <= elapsed + 1
    assert 3540 - elapsed - 1 <= ttl <= 3540  # 3600 s, less the 60 s margin
    assert len(lines) == 5
    data = json.loads(as_json)
    assert data["queue"] == {
        "name": DEFAULT_QUEUE, "waiting": 3, "running": 1, "dead": 1, "dead_after": 2.0,
    }  # fmt: skip
    assert [a["account"] for a in data["accounts"]] == ["csss-test2", "yeastar-test1"]
    for output in (plain, as_json):
        for secret in (ACCESS_TOKEN, REFRESH_TOKEN, "SECRET", secret_url.split("@")[0]):
            assert secret not in output
        assert "pw-" not in output


async def run(*args: str, env: dict[str, str], cwd: Path) -> str:
    process = await asyncio.create_subprocess_exec(
        *COMMAND,
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
        cwd=cwd,
    )
    out, err = await asyncio.wait_for(process.communicate(), TIMEOUT)
    assert process.returncode == 0, err.decode()
    assert err == b""
    return out.decode()


async def test_status_of_an_empty_redis_and_of_a_queue_no_worker_ever_read(
    redis_url: str, tmp_path: Path
) -> None:
    env = {**BASE_ENV, REDIS_ENV: redis_url}
    assert await run("status", env=env, cwd=tmp_path) == (
        f"queue {DEFAULT_QUEUE} waiting=0 running=0 dead=0 dead_after=120s\n"
    )
    broker = make_broker(redis_url, results=False)
    try:  # kiq without startup: the stream exists, the workers' group does not yet
        await enqueue_sync(broker, "a", "orders")
        await enqueue_sync(broker, "b", "orders")
    finally:
        await broker.shutdown()
    assert await run("status", env=env, cwd=tmp_path) == (
        f"queue {DEFAULT_QUEUE} waiting=2 running=0 dead=0 dead_after=120s\n"
    )
