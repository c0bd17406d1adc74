"""A fleet of worker processes sharing one account through Redis, against the sandbox:
one token grant for the fleet, the account's limit held across processes, a 429 pausing
every process, every record exact, and Redis going away mid-run failing clearly."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from aiohttp import web

from yeastar_csss_async.sandbox import Sandbox, SandboxConfig
from yeastar_csss_async.sandbox._app import ORDERS_PATH

from tests._support.rate_limit import OneRateLimit
from tests._support.redis_server import RedisServer

WORKER = Path(__file__).with_name("_fleet_worker.py")
PROCESSES = 4
LIMIT = 3
HANG_GUARD = 120.0  # seconds: a hang guard only, far above a run (about 2 s)


@pytest.fixture
def sandbox_config() -> SandboxConfig:
    return SandboxConfig(orders=400, latency=0.01)


async def run_fleet(
    sandbox: Sandbox, redis_url: str, count: int = PROCESSES
) -> list[tuple[int, dict[str, Any]]]:
    """Start ``count`` worker processes at once; their exit codes and JSON lines."""
    processes = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            str(WORKER),
            sandbox.base_url,
            redis_url,
            str(LIMIT),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        for _ in range(count)
    ]
    results = []
    for process in processes:
        out, err = await asyncio.wait_for(process.communicate(), HANG_GUARD)
        assert process.returncode is not None
        line = out.decode().strip().splitlines()
        assert line, f"no output (exit {process.returncode}): {err.decode()[-2000:]}"
        results.append((process.returncode, json.loads(line[-1])))
    return results


async def test_a_fleet_shares_one_token_and_one_limit_and_reads_every_record(
    sandbox: Sandbox,
    redis_url: str,
) -> None:
    results = await run_fleet(sandbox, redis_url)
    expected = [record["id"] for record in sandbox.orders]
    for code, result in results:
        assert code == 0, result
        assert result["ids"] == expected  # every record, exactly, in order
    assert sandbox.stats.token_requests == 1  # one grant for four processes
    assert sum(result["token_requests"] for _, result in results) == 1
    assert 1 < sandbox.stats.peak_in_flight <= LIMIT  # the account's limit, fleet-wide


@contextlib.asynccontextmanager
async def setting_on_pause(redis_url: str, paused: asyncio.Event) -> AsyncIterator[None]:
    """Set ``paused`` once a fleet's pause (a key ``...:pause``) is set in the database of
    ``redis_url``, as Redis keyspace events tell: seen even if the pause is over by the time
    this process gets to read it."""
    client = aioredis.from_url(redis_url)
    db = client.connection_pool.connection_kwargs.get("db", 0)
    await client.config_set("notify-keyspace-events", "E$")  # SET and the like, by key
    try:
        async with client.pubsub() as pubsub:

            async def listen() -> None:
                async for message in pubsub.listen():
                    if message["type"] == "message" and message["data"].endswith(b":pause"):
                        paused.set()

            await pubsub.subscribe(f"__keyevent@{db}__:set")
            await pubsub.get_message(timeout=None)  # subscribed: nothing set now is missed
            listener = asyncio.create_task(listen())
            try:
                yield
            finally:
                listener.cancel()
                await asyncio.wait([listener])
    finally:
        await client.config_set("notify-keyspace-events", "")
        await client.aclose()


async def test_a_429_seen_by_one_process_pauses_every_process(
    sandbox: Sandbox,
    redis_url: str,
) -> None:
    probe = OneRateLimit(pause=0.5, page_no=8)
    paused = asyncio.Event()

    async def hold_answers_until_paused(request: web.Request) -> web.StreamResponse | None:
        # Between the 429 and its pause in Redis, answers wait for the pause, so no slot turns
        # over in between, however long setting the pause takes on a busy machine.
        answer = await probe(request)
        if answer is None and probe.limited and request.path == ORDERS_PATH:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(paused.wait(), HANG_GUARD / 4)  # a hang guard only
        return answer

    sandbox.intercept = hold_answers_until_paused
    async with setting_on_pause(redis_url, paused):
        results = await run_fleet(sandbox, redis_url)
    assert all(code == 0 for code, _ in results)
    assert probe.limited, "the 429 was never served"
    assert paused.is_set(), "the 429 set no pause in Redis"
    # What reached the handler within the pause had its slot before the pause was set (it
    # is set before the 429's slot is free): the other slots in flight. Without the shared
    # pause the other three processes would go on sending for the whole half second.
    assert len(probe.during(0.1)) <= LIMIT - 1
    assert any(t >= probe.limited[0] + probe.pause - 0.1 for t in probe.arrivals)


async def test_redis_going_away_mid_run_fails_clearly_or_completes_without_a_hang(
    sandbox: Sandbox,
    redis_url: str,
    redis_server: RedisServer,
) -> None:
    sandbox.config.latency = 0.05  # a run of 40 pages x 4 processes takes a few seconds
    started = asyncio.Event()

    async def after_page(name: str, page_no: int) -> None:
        if page_no >= 3:
            started.set()

    sandbox.after_page = after_page
    fleet = asyncio.ensure_future(run_fleet(sandbox, redis_url))
    await asyncio.wait_for(started.wait(), HANG_GUARD)
    redis_server.kill()
    try:
        results = await fleet
    finally:
        redis_server.ensure_running()
    expected = [record["id"] for record in sandbox.orders]
    for code, result in results:
        if code == 0:
            assert result["ids"] == expected  # completed: nothing lost
        else:
            assert code == 3, result
            assert result["error"].startswith("Redis at redis://127.0.0.1")
            assert "\n" not in result["error"]
    assert any(code == 3 for code, _ in results)  # Redis did go away under someone


async def test_a_process_killed_holding_slots_frees_them_when_their_leases_run_out(
    sandbox: Sandbox,
    redis_url: str,
) -> None:
    """A process takes every slot of the account with requests that never get an answer (its
    concurrent pages after page 1), and is killed with SIGKILL. Another process can send
    nothing until those leases run out (``slot_lease(timeout)``: 6 s for a 1 s timeout), and
    then reads every record."""
    from yeastar_csss_async._base import slot_lease

    lease = slot_lease(1.0)
    held = asyncio.Event()
    victim_requests: list[float] = []
    survivor_requests: list[float] = []

    async def hang_the_victim(request: web.Request) -> web.StreamResponse | None:
        if request.path != ORDERS_PATH:
            return None
        if request.headers.get("User-Agent") != "victim":
            survivor_requests.append(time.monotonic())
        elif request.query["pageNo"] != "1":
            victim_requests.append(time.monotonic())
            if len(victim_requests) >= LIMIT:
                held.set()
            await asyncio.Event().wait()  # never answers (cancelled when the sandbox stops)
        return None

    sandbox.intercept = hang_the_victim
    started = time.monotonic()  # no lease of the victim can be older than this
    victim = await asyncio.create_subprocess_exec(
        sys.executable,
        str(WORKER),
        sandbox.base_url,
        redis_url,
        str(LIMIT),
        "1",
        "victim",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        await asyncio.wait_for(held.wait(), HANG_GUARD)
    finally:
        victim.kill()  # SIGKILL: its leases stay behind in Redis
        await victim.wait()
    [(code, result)] = await run_fleet(sandbox, redis_url, count=1)
    assert code == 0, result
    assert result["ids"] == [record["id"] for record in sandbox.orders]
    assert survivor_requests
    assert min(survivor_requests) >= started + lease  # nothing before the leases ran out
