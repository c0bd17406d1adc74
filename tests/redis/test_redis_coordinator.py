"""RedisCoordinator against a real redis-server: fleet-wide slots (leases), pause, shared
token, renewal lock, failures. Processes are started with ``spawn`` (a fresh interpreter, as a
worker fleet would be); the workers below are module-level so the children can import them.

Time bounds: a lower bound ("not before the lease/pause ended") is measured with Redis's own
clock, the clock the coordinator uses, and allows 1 ms for PTTL's and TIME's ms rounding;
an upper bound is that bound plus a generous slack for a busy 2-core machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
import redis.asyncio as aioredis

from yeastar_csss_async._coordination import AccountLink, Coordinator, SharedToken
from yeastar_csss_async.redis import (
    TOKEN_MARGIN_MAX,
    CoordinatorError,
    RedisAccountLink,
    RedisCoordinator,
)

from tests._support.postgres_server import free_port
from tests._support.redis_server import RedisServer

SLACK = 20.0
"""Seconds a bounded wait may take beyond what the behaviour itself needs (spawned workers
import the package; the machine has 2 busy cores)."""
ACCOUNT = "acct-5f2a"  # clients pass a hash of the credentials, never a secret

# INCR a "holders now" counter and keep its maximum: the peak concurrency seen in Redis.
_ENTER = """
local c = redis.call('INCR', KEYS[1])
if c > tonumber(redis.call('GET', KEYS[2]) or '0') then redis.call('SET', KEYS[2], c) end
redis.call('INCR', KEYS[3])
return c
"""
_PROBE_KEYS = ["probe:now", "probe:peak", "probe:entries"]


def _ctx() -> multiprocessing.context.SpawnContext:
    return multiprocessing.get_context("spawn")


async def _redis_time_us(client: aioredis.Redis) -> int:
    seconds, micros = await client.time()
    return int(seconds) * 1_000_000 + int(micros)


@contextlib.asynccontextmanager
async def _probe(url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.from_url(url)
    try:
        yield client
    finally:
        await client.aclose()


async def _barrier(client: aioredis.Redis, parties: int) -> None:
    """Every worker process waits here until all have started (spawn start-up varies)."""
    await client.incr("probe:ready")
    deadline = time.monotonic() + SLACK
    while int(await client.get("probe:ready") or 0) < parties:
        if time.monotonic() > deadline:
            raise TimeoutError("the other workers did not start")
        await asyncio.sleep(0.01)


# -- workers (run in spawned processes) ----------------------------------------------------------


def _hammer_slots(
    url: str, namespace: str, limit: int, parties: int, tasks: int, rounds: int
) -> None:
    asyncio.run(_hammer_slots_async(url, namespace, limit, parties, tasks, rounds))


async def _hammer_slots_async(
    url: str, namespace: str, limit: int, parties: int, tasks: int, rounds: int
) -> None:
    async with RedisCoordinator.from_url(url, namespace) as coordinator, _probe(url) as probe:
        link = coordinator.link(ACCOUNT, max_concurrency=limit, lease_seconds=30)
        enter = probe.register_script(_ENTER)
        await _barrier(probe, parties)

        async def worker() -> None:
            for _ in range(rounds):
                async with link.slot():
                    await enter(keys=_PROBE_KEYS)
                    await asyncio.sleep(random.uniform(0, 0.004))
                    await probe.decr("probe:now")

        await asyncio.gather(*(worker() for _ in range(tasks)))


def _hold_slots_then_die(url: str, namespace: str, limit: int, held: int, lease: float) -> None:
    asyncio.run(_hold_slots_then_die_async(url, namespace, limit, held, lease))


async def _hold_slots_then_die_async(
    url: str, namespace: str, limit: int, held: int, lease: float
) -> None:
    coordinator = RedisCoordinator.from_url(url, namespace)
    link = coordinator.link(ACCOUNT, max_concurrency=limit, lease_seconds=lease)
    probe = aioredis.from_url(url)
    await probe.set("probe:before-take-us", await _redis_time_us(probe))
    async with contextlib.AsyncExitStack() as stack:
        for _ in range(held):
            await stack.enter_async_context(link.slot())
        await probe.set("probe:held", held)
        os.kill(os.getpid(), signal.SIGKILL)  # no finally, no release: a crash


def _hammer_renewal(url: str, namespace: str, parties: int, rounds: int) -> None:
    asyncio.run(_hammer_renewal_async(url, namespace, parties, rounds))


async def _hammer_renewal_async(url: str, namespace: str, parties: int, rounds: int) -> None:
    async with RedisCoordinator.from_url(url, namespace) as coordinator, _probe(url) as probe:
        link = coordinator.link(ACCOUNT, max_concurrency=1, lease_seconds=30)
        enter = probe.register_script(_ENTER)
        await _barrier(probe, parties)
        for _ in range(rounds):
            async with link.renewal():
                await enter(keys=_PROBE_KEYS)
                await asyncio.sleep(0.01)
                await probe.decr("probe:now")


def _run_processes(target: Callable[..., None], args_of: list[tuple[object, ...]]) -> None:
    processes = [_ctx().Process(target=target, args=args) for args in args_of]
    for process in processes:
        process.start()
    try:
        for process in processes:
            process.join(timeout=60 + SLACK)
            assert process.exitcode == 0, f"worker exited with {process.exitcode}"
    finally:
        for process in processes:
            if process.is_alive():
                process.kill()
                process.join()


async def _peak_and_entries(url: str) -> tuple[int, int]:
    async with _probe(url) as probe:
        peak, entries = await probe.mget("probe:peak", "probe:entries")
        return int(peak or 0), int(entries or 0)


def _namespace() -> str:
    return f"test-{uuid.uuid4().hex[:8]}"


# -- slots -----------------------------------------------------------------------------------------


async def test_slot_limit_holds_for_many_tasks_of_one_process(redis_url: str) -> None:
    limit, tasks, rounds = 3, 24, 8
    holding = peak = 0
    async with RedisCoordinator.from_url(redis_url, _namespace()) as coordinator:
        link = coordinator.link(ACCOUNT, max_concurrency=limit, lease_seconds=30)
        assert isinstance(coordinator, Coordinator)
        assert isinstance(link, AccountLink)

        async def worker() -> None:
            nonlocal holding, peak
            for _ in range(rounds):
                async with link.slot():
                    holding += 1
                    peak = max(peak, holding)
                    await asyncio.sleep(random.uniform(0, 0.003))
                    holding -= 1

        await asyncio.wait_for(asyncio.gather(*(worker() for _ in range(tasks))), SLACK)
        async with _probe(redis_url) as probe:
            assert await probe.zcard(f"{coordinator.namespace}:{ACCOUNT}:slots") == 0
    assert peak == limit  # reached, never exceeded


def test_slot_limit_holds_across_processes(redis_url: str) -> None:
    limit, parties, tasks, rounds = 3, 3, 6, 12
    namespace = _namespace()
    _run_processes(_hammer_slots, [(redis_url, namespace, limit, parties, tasks, rounds)] * parties)
    peak, entries = asyncio.run(_peak_and_entries(redis_url))
    assert entries == parties * tasks * rounds
    assert peak == limit  # the whole fleet at most `limit` at once (each process alone: 6)


async def test_slots_of_a_killed_holder_free_after_the_lease(redis_url: str) -> None:
    held, lease = 2, 1.0
    limit = held + 1
    namespace = _namespace()
    holder = _ctx().Process(
        target=_hold_slots_then_die, args=(redis_url, namespace, limit, held, lease)
    )
    holder.start()
    await asyncio.to_thread(holder.join, 60 + SLACK)
    assert holder.exitcode == -signal.SIGKILL
    async with (
        RedisCoordinator.from_url(redis_url, namespace) as coordinator,
        _probe(redis_url) as probe,
    ):
        assert int(await probe.get("probe:held") or 0) == held
        before_take_us = int(await probe.get("probe:before-take-us") or 0)
        # A live holder with a long lease keeps the set itself alive: only the dead holder's
        # own leases ending can free its slots.
        link = coordinator.link(ACCOUNT, max_concurrency=limit, lease_seconds=60)
        async with contextlib.AsyncExitStack() as stack:
            await asyncio.wait_for(stack.enter_async_context(link.slot()), SLACK)  # the free one
            for _ in range(held):  # every slot of the dead holder comes back
                await asyncio.wait_for(stack.enter_async_context(link.slot()), lease + SLACK)
            taken_us = await _redis_time_us(probe)
    # Not before the dead holder's leases ended (Redis time, 1 ms for rounding).
    assert taken_us - before_take_us >= lease * 1_000_000 - 1_000


async def test_cancelled_holders_and_waiters_leave_no_slot_behind(redis_url: str) -> None:
    async with (
        RedisCoordinator.from_url(redis_url, _namespace()) as coordinator,
        _probe(redis_url) as probe,
    ):
        link = coordinator.link(ACCOUNT, max_concurrency=2, lease_seconds=60)
        key = f"{coordinator.namespace}:{ACCOUNT}:slots"
        entered = 0
        both_inside = asyncio.Event()

        async def hold() -> None:
            nonlocal entered
            async with link.slot():
                entered += 1
                if entered == 2:
                    both_inside.set()
                await asyncio.sleep(3600)

        holders = [asyncio.create_task(hold()) for _ in range(2)]
        await asyncio.wait_for(both_inside.wait(), SLACK)
        assert await probe.zcard(key) == 2
        waiters = [asyncio.create_task(hold()) for _ in range(3)]
        await asyncio.sleep(0.1)  # the waiters poll a full set
        for task in holders + waiters:
            task.cancel()
        async with asyncio.timeout(SLACK):  # a cancellation lost in a Redis call hangs here
            results = await asyncio.gather(*holders, *waiters, return_exceptions=True)
        assert all(isinstance(r, asyncio.CancelledError) for r in results)
        assert await probe.zcard(key) == 0  # removed at once, not left to the 60 s lease
        async with link.slot(), link.slot():  # and both slots are free again
            pass

        # Cancelled while releasing (after the body, or after a first cancellation): the
        # release still completes, and the cancellation still reaches the task.
        for cancel_first in (False, True):
            go = asyncio.Event()

            async def use(go: asyncio.Event = go, cancel_first: bool = cancel_first) -> str:
                async with link.slot():
                    if cancel_first:
                        await asyncio.sleep(3600)
                    await go.wait()
                return "finished"

            users = [asyncio.create_task(use()) for _ in range(2)]
            while await probe.zcard(key) < 2:  # noqa: ASYNC110 (the slots live in Redis)
                await asyncio.sleep(0.005)
            for user in users:
                user.cancel() if cancel_first else go.set()
            await asyncio.sleep(0)  # each task is now in slot()'s exit, releasing
            for user in users:
                user.cancel()
            outcomes = await asyncio.gather(*users, return_exceptions=True)
            assert all(isinstance(r, asyncio.CancelledError) for r in outcomes), outcomes
            assert await probe.zcard(key) == 0


async def test_a_cancellation_a_redis_call_returns_through_is_still_raised() -> None:
    # redis-py writes with asyncio.wait_for, which on Python 3.11 returns the result to a
    # task cancelled while the write completes (CPython gh-86296): the call below does the
    # same. The coordinator must still raise the cancellation, or a cancelled waiter goes
    # on into the slot it just took and never leaves.
    coordinator = RedisCoordinator.from_url("redis://127.0.0.1:9/0")
    started = asyncio.Event()

    async def completes_despite_cancel() -> str:
        started.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            return "done"
        return "slept"

    try:
        task = asyncio.create_task(coordinator._run("take a slot", completes_despite_cancel()))
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        # a call that is not cancelled returns its result
        assert await coordinator._run("ping", asyncio.sleep(0, "pong")) == "pong"
    finally:
        await coordinator.aclose()


# -- pause -----------------------------------------------------------------------------------------


async def test_pause_blocks_every_process_and_is_never_shortened(redis_url: str) -> None:
    namespace, pause = _namespace(), 0.6
    async with (
        RedisCoordinator.from_url(redis_url, namespace) as one,
        RedisCoordinator.from_url(redis_url, namespace) as other,
        _probe(redis_url) as probe,
    ):
        paused_by = one.link(ACCOUNT, max_concurrency=4, lease_seconds=30)
        waiting = other.link(ACCOUNT, max_concurrency=4, lease_seconds=30)
        before_us = await _redis_time_us(probe)
        await paused_by.pause(pause)
        await paused_by.pause(0.05)  # a shorter pause does not cut the longer one
        await waiting.pause(0)  # nor does a meaningless one
        async with waiting.slot():
            entered_us = await _redis_time_us(probe)
        assert entered_us - before_us >= pause * 1_000_000 - 1_000
        assert entered_us - before_us <= (pause + SLACK) * 1_000_000

        # A longer pause lengthens the current one.
        before_us = await _redis_time_us(probe)
        await paused_by.pause(0.05)
        await waiting.pause(0.4)
        async with waiting.slot():
            entered_us = await _redis_time_us(probe)
        assert entered_us - before_us >= 0.4 * 1_000_000 - 1_000


# -- token -----------------------------------------------------------------------------------------


async def test_token_round_trips_and_leaves_redis_before_it_expires(redis_url: str) -> None:
    namespace = _namespace()
    async with (
        RedisCoordinator.from_url(redis_url, namespace) as one,
        RedisCoordinator.from_url(redis_url, namespace) as other,
        _probe(redis_url) as probe,
    ):
        writer = one.link(ACCOUNT, max_concurrency=1, lease_seconds=30)
        reader = other.link(ACCOUNT, max_concurrency=1, lease_seconds=30)
        assert await reader.load_token() is None
        now = time.time()
        token = SharedToken("access-abc", now + 7200, "refresh-xyz", now + 86400)
        await writer.store_token(token)
        loaded = await reader.load_token()
        assert loaded == token
        ttl_ms = await probe.pttl(f"{namespace}:{ACCOUNT}:token")
        assert 0 < ttl_ms <= (7200 - TOKEN_MARGIN_MAX) * 1000

        # A short-lived token: stored, and gone from Redis before its own expiry.
        expires_at = time.time() + 1.0
        await writer.store_token(SharedToken("access-short", expires_at))
        stored = await reader.load_token()
        assert stored is not None
        assert stored.access_token == "access-short"
        assert stored.refresh_token is None
        while await reader.load_token() is not None:
            assert time.time() < expires_at, "the token outlived its expiry in Redis"
            await asyncio.sleep(0.01)


async def test_an_expired_token_is_not_stored(redis_url: str) -> None:
    async with RedisCoordinator.from_url(redis_url, _namespace()) as coordinator:
        link = coordinator.link(ACCOUNT, max_concurrency=1, lease_seconds=30)
        await link.store_token(SharedToken("stale", time.time() - 1))
        assert await link.load_token() is None


async def test_an_unreadable_stored_token_reads_as_none(redis_url: str) -> None:
    namespace = _namespace()
    async with (
        RedisCoordinator.from_url(redis_url, namespace) as coordinator,
        _probe(redis_url) as probe,
    ):
        link = coordinator.link(ACCOUNT, max_concurrency=1, lease_seconds=30)
        for junk in (b"not json", b'{"v": 99, "access_token": "x"}', b"[1]"):
            await probe.set(f"{namespace}:{ACCOUNT}:token", junk)
            assert await link.load_token() is None


# -- renewal lock ----------------------------------------------------------------------------------


def test_renewal_lock_is_exclusive_across_processes(redis_url: str) -> None:
    parties, rounds = 2, 10
    namespace = _namespace()
    _run_processes(_hammer_renewal, [(redis_url, namespace, parties, rounds)] * parties)
    peak, entries = asyncio.run(_peak_and_entries(redis_url))
    assert entries == parties * rounds
    assert peak == 1


async def test_renewal_lock_lease_is_extended_while_held(redis_url: str) -> None:
    namespace, lease = _namespace(), 0.3
    async with (
        RedisCoordinator.from_url(redis_url, namespace, renewal_lease=lease) as one,
        RedisCoordinator.from_url(redis_url, namespace, renewal_lease=lease) as other,
    ):
        holder = one.link(ACCOUNT, max_concurrency=1, lease_seconds=30)
        contender = other.link(ACCOUNT, max_concurrency=1, lease_seconds=30)
        events: list[str] = []
        held = asyncio.Event()

        async def hold() -> None:
            async with holder.renewal():
                held.set()
                await asyncio.sleep(lease * 4)  # well past the lease: extended meanwhile
                events.append("holder out")

        async def contend() -> None:
            await held.wait()
            async with contender.renewal():
                events.append("contender in")

        await asyncio.wait_for(asyncio.gather(hold(), contend()), lease * 4 + SLACK)
        assert events == ["holder out", "contender in"]


async def test_renewal_lock_is_released_when_the_holder_is_cancelled(redis_url: str) -> None:
    namespace = _namespace()
    async with (
        RedisCoordinator.from_url(redis_url, namespace) as coordinator,
        _probe(redis_url) as probe,
    ):
        link = coordinator.link(ACCOUNT, max_concurrency=1, lease_seconds=30)
        held = asyncio.Event()

        async def hold() -> None:
            async with link.renewal():
                held.set()
                await asyncio.sleep(3600)

        task = asyncio.create_task(hold())
        await asyncio.wait_for(held.wait(), SLACK)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert await probe.exists(f"{namespace}:{ACCOUNT}:renewal") == 0
        async with asyncio.timeout(SLACK), link.renewal():  # not left to the 30 s lease
            pass


# -- failures and secrets --------------------------------------------------------------------------


async def test_unreachable_redis_raises_one_line_error_without_password() -> None:
    port = free_port()  # nothing listens there
    password = "s3cr3t-Pw0rd"
    async with RedisCoordinator.from_url(f"redis://:{password}@127.0.0.1:{port}/0") as coord:
        assert password not in repr(coord)
        link = coord.link(ACCOUNT, max_concurrency=1, lease_seconds=30)
        token = SharedToken("access-secret-token", time.time() + 3600, "refresh-secret")
        attempts: list[tuple[str, Callable[[], Awaitable[object]]]] = [
            ("take a slot", lambda: link.slot().__aenter__()),
            ("set a pause", lambda: link.pause(1)),
            ("load the token", link.load_token),
            ("store the token", lambda: link.store_token(token)),
            ("take the renewal lock", lambda: link.renewal().__aenter__()),
        ]
        for operation, attempt in attempts:
            with pytest.raises(CoordinatorError) as caught:
                await asyncio.wait_for(attempt(), SLACK)
            text = str(caught.value)
            assert "\n" not in text
            assert f"127.0.0.1:{port}" in text
            assert operation in text
            for secret in (password, "access-secret-token", "refresh-secret"):
                assert secret not in text
                assert secret not in repr(caught.value)
            assert caught.value.__cause__ is None
            assert caught.value.__context__ is None


async def test_redis_down_then_back_fails_clearly_then_works(
    redis_server: RedisServer, redis_url: str
) -> None:
    async with RedisCoordinator.from_url(redis_url, _namespace()) as coordinator:
        link = coordinator.link(ACCOUNT, max_concurrency=1, lease_seconds=30)
        async with link.slot():
            pass
        redis_server.kill()
        try:
            with pytest.raises(CoordinatorError, match="take a slot"):
                await asyncio.wait_for(link.slot().__aenter__(), SLACK)
        finally:
            await asyncio.to_thread(redis_server.start)
        async with link.slot():  # reconnects; the script cache was lost and is reloaded
            pass


async def test_no_token_or_password_in_reprs_or_logs(redis_url: str, debug_log: object) -> None:
    password = "pw-9d1e"
    url = redis_url.replace("redis://", f"redis://user:{password}@")
    coordinator = RedisCoordinator.from_url(url)
    link = coordinator.link(ACCOUNT, max_concurrency=1, lease_seconds=30)
    token = SharedToken("access-tok-77", time.time() + 3600, "refresh-tok-88")
    texts = [repr(coordinator), repr(link), repr(token), coordinator.url, str(coordinator.url)]
    with pytest.raises(CoordinatorError) as caught:  # Redis has no such user: AUTH fails
        await link.store_token(token)
    texts.append(str(caught.value))
    await coordinator.aclose()
    texts += debug_log.texts  # type: ignore[attr-defined]
    for text in texts:
        for secret in (password, "access-tok-77", "refresh-tok-88"):
            assert secret not in text
    assert "user:***@" in coordinator.url


async def test_from_client_uses_it_and_leaves_it_open(redis_url: str) -> None:
    client = aioredis.from_url(redis_url)
    try:
        async with RedisCoordinator(client, namespace=_namespace()) as coordinator:
            link = coordinator.link(ACCOUNT, max_concurrency=1, lease_seconds=30)
            assert isinstance(link, RedisAccountLink)
            async with link.slot():
                pass
            await link.aclose()
            assert coordinator.url.startswith("redis://127.0.0.1:")
        assert await client.ping()  # still ours to close
    finally:
        await client.aclose()


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://:pw@10.0.0.5:6380/2", "redis://:***@10.0.0.5:6380/2"),
        ("rediss://app:pw@[::1]:6390/0?password=pw", "rediss://app:***@[::1]:6390/0"),
        ("redis://cache.internal", "redis://cache.internal"),
        ("unix:///run/redis.sock?db=3&password=pw", "unix:///run/redis.sock"),
    ],
)
async def test_url_is_shown_without_password(url: str, shown: str) -> None:
    async with RedisCoordinator.from_url(url) as coordinator:
        assert coordinator.url == shown
        assert "pw" not in repr(coordinator)


async def test_client_url_is_shown_without_password() -> None:
    tcp = aioredis.Redis(host="10.0.0.5", port=6380, db=2, password="pw")
    unix = aioredis.Redis(unix_socket_path="/run/redis.sock", password="pw")
    try:
        assert RedisCoordinator(tcp).url == "redis://:***@10.0.0.5:6380/2"
        assert RedisCoordinator(unix).url == "unix:///run/redis.sock"
    finally:
        await tcp.aclose()
        await unix.aclose()


def test_arguments_are_checked_without_quoting_secrets() -> None:
    with pytest.raises(ValueError, match="namespace"):
        RedisCoordinator.from_url("redis://127.0.0.1:1/0", namespace="")
    with pytest.raises(ValueError, match="not a usable Redis URL") as caught:
        RedisCoordinator.from_url("nosuchscheme://:hunter2@127.0.0.1:1/0")
    assert "hunter2" not in str(caught.value)
    with pytest.raises(ValueError, match="not a usable Redis URL") as caught:
        RedisCoordinator.from_url("redis://:hunter2@127.0.0.1:notaport/0")
    assert "hunter2" not in str(caught.value)
    assert caught.value.__context__ is None
    coordinator = RedisCoordinator.from_url("redis://127.0.0.1:1/0")
    with pytest.raises(ValueError, match="max_concurrency"):
        coordinator.link(ACCOUNT, max_concurrency=0, lease_seconds=1)
    with pytest.raises(ValueError, match="lease_seconds"):
        coordinator.link(ACCOUNT, max_concurrency=1, lease_seconds=0)
    with pytest.raises(ValueError, match="account"):
        coordinator.link("", max_concurrency=1, lease_seconds=1)
    asyncio.run(coordinator.aclose())


# -- packaging -------------------------------------------------------------------------------------


def test_core_package_does_not_import_redis() -> None:
    code = (
        "import sys, yeastar_csss_async; "
        "assert 'redis' not in sys.modules, 'redis imported'; "
        "assert 'yeastar_csss_async.redis' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_module_names_the_extra_when_redis_is_missing() -> None:
    code = (
        "import sys; sys.modules['redis'] = None; sys.modules['redis.asyncio'] = None\n"
        "import yeastar_csss_async.redis"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode != 0
    assert "ImportError: " in done.stderr
    assert "pip install 'yeastar-csss-async[redis]'" in done.stderr
