"""Schedules on every node (``tasks/_scheduler``, ``yeastar-csss scheduler``): several
schedulers over a real redis-server queue each due sync exactly once.

In-process schedulers run on a fake clock that the test moves forward (no real minute is
waited for); the test knows a scheduler has done a minute's work when it sleeps again. One
end-to-end test runs two real ``yeastar-csss scheduler`` processes across a real minute
boundary.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import os
import re
import signal
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import pytest

pytest.importorskip("taskiq_redis", reason="needs the [workers] extra")

from redis.exceptions import RedisError
from taskiq import BrokerMessage

from yeastar_csss_async.cli import main
from yeastar_csss_async.tasks import (
    DEFAULT_QUEUE,
    AccountConfig,
    AccountsFileError,
    Schedule,
    load_accounts,
    make_broker,
    parse_accounts,
    run_schedules,
    schedule_key,
)

from tests._support.redis_server import RedisServer

T = TypeVar("T")
UTC = dt.UTC
MINUTE = dt.timedelta(minutes=1)
GUARD = 60.0
"""Turns a hang into a readable failure (no timing is asserted)."""
EVERY_MINUTE = Schedule("orders", "* * * * *")
EVEN_MINUTES = Schedule("products", "*/2 * * * *")
NEVER_HERE = Schedule("package-orders", "0 13 * * *")  # 13:00 UTC: outside every test window
ACCOUNTS = {
    "acme": AccountConfig(
        "acme",
        yeastar_client_id_env="ACME_ID",
        yeastar_client_secret_env="ACME_SECRET",
        schedules=(EVERY_MINUTE, EVEN_MINUTES),
    ),
    "globex": AccountConfig(
        "globex", csss_access_code_env="G_CODE", csss_secret_env="G_SECRET", schedules=(NEVER_HERE,)
    ),
}


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


async def guard(step: Awaitable[T], what: str) -> T:
    try:
        return await asyncio.wait_for(step, GUARD)
    except TimeoutError:
        pytest.fail(f"hang {what}")


class FakeTime:
    """A shared fake "true" time; each scheduler reads it through a :class:`SkewedClock`."""

    def __init__(self, start: dt.datetime) -> None:
        self.now = start
        self.changed = asyncio.Condition()
        self.sleeping: dict[int, dt.datetime] = {}  # clock -> the true time it waits for

    def clock(self, offset: float = 0.0) -> SkewedClock:
        return SkewedClock(self, dt.timedelta(seconds=offset))

    def idle(self) -> int:
        """Schedulers asleep until a time still to come: done with every minute so far."""
        return sum(until > self.now for until in self.sleeping.values())


class SkewedClock:
    """A scheduler's clock: the fake time plus ``offset`` (a clock a few seconds off)."""

    def __init__(self, time: FakeTime, offset: dt.timedelta) -> None:
        self.time = time
        self.offset = offset

    def now(self) -> dt.datetime:
        return self.time.now + self.offset

    async def sleep_until(self, when: dt.datetime) -> None:
        until = when - self.offset
        async with self.time.changed:
            self.time.sleeping[id(self)] = until
            self.time.changed.notify_all()
            await self.time.changed.wait_for(lambda: self.time.now >= until)


class Fleet:
    """In-process schedulers on one fake time, each with its own broker (as on many nodes)."""

    def __init__(self, time: FakeTime, runs: list[asyncio.Task[None]]) -> None:
        self.time = time
        self.runs = runs

    async def settle(self) -> None:
        """Wait until every scheduler sleeps past the current time (or one has ended)."""
        time = self.time

        async def idle() -> None:
            async with time.changed:
                await time.changed.wait_for(lambda: time.idle() >= len(self.runs))

        waiter = asyncio.ensure_future(idle())
        try:
            done, _ = await asyncio.wait(
                (waiter, *self.runs), timeout=GUARD, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            waiter.cancel()
            await asyncio.gather(waiter, return_exceptions=True)
        if not done:
            pytest.fail("hang waiting for the schedulers to go back to sleep")
        for run in self.runs:
            if run.done():
                run.result()  # a scheduler that failed: its error
                pytest.fail("a scheduler ended without being stopped")

    async def advance(self, to: dt.datetime) -> None:
        async with self.time.changed:
            self.time.now = to
            self.time.changed.notify_all()
        await self.settle()


@contextlib.asynccontextmanager
async def fleet(
    redis_url: str,
    time: FakeTime,
    offsets: Sequence[float],
    accounts: dict[str, AccountConfig] = ACCOUNTS,
    **options: Any,
) -> AsyncIterator[Fleet]:
    stop = asyncio.Event()
    brokers = [make_broker(redis_url, results=False) for _ in offsets]
    runs: list[asyncio.Task[None]] = []
    async with contextlib.AsyncExitStack() as stack:
        for broker in brokers:
            await broker.startup()
            stack.push_async_callback(broker.shutdown)
        patches = options.pop("patch_broker", None)
        if patches is not None:
            patches(brokers[0])
        runs = [
            asyncio.create_task(
                run_schedules(
                    broker, redis_url, accounts, stop, clock=time.clock(offset), **options
                )
            )
            for broker, offset in zip(brokers, offsets, strict=True)
        ]
        try:
            running = Fleet(time, runs)
            await running.settle()  # the start-up check is done
            yield running
        finally:
            stop.set()
            await guard(asyncio.gather(*runs, return_exceptions=True), "stopping the schedulers")


class Stream:
    """The jobs queue as Redis holds it (XRANGE), decoded as taskiq messages."""

    def __init__(self, server: RedisServer, redis_url: str) -> None:
        self.server = server
        self.db = int(redis_url.rsplit("/", 1)[1])
        self.seen = 0

    def messages(self) -> list[dict[str, Any]]:
        entries = self.server.command("XRANGE", DEFAULT_QUEUE, "-", "+", db=self.db)
        assert isinstance(entries, list)
        found = []
        for _, fields in entries:
            data = dict(zip(fields[::2], fields[1::2], strict=True))["data"]
            found.append(json.loads(data))
        return found

    def new_jobs(self) -> Counter[tuple[str, str]]:
        """(account, list) of each job queued since the last call."""
        messages = self.messages()
        fresh, self.seen = messages[self.seen :], len(messages)
        return Counter((m["args"][0], m["args"][1]) for m in fresh)

    def claims(self) -> set[str]:
        keys = self.server.command("KEYS", f"{DEFAULT_QUEUE}:schedule:*", db=self.db)
        assert isinstance(keys, list)
        return set(keys)


@pytest.mark.parametrize(
    "offsets",
    [(0.0, 0.0), (-3.0, 0.0, 3.0)],
    ids=["two-schedulers-one-clock", "three-schedulers-clocks-3s-apart"],
)
async def test_schedulers_running_at_once_queue_each_due_time_exactly_once(
    redis_url: str, redis_server: RedisServer, offsets: tuple[float, ...]
) -> None:
    stream = Stream(redis_server, redis_url)
    time = FakeTime(at("2026-12-01T11:59:30"))
    expected_claims = {schedule_key(DEFAULT_QUEUE, "acme", EVERY_MINUTE, at("2026-12-01T11:59"))}
    async with fleet(redis_url, time, offsets) as running:
        # start-up: the latest due time of the last minute (11:59), claimed by one of them
        assert stream.new_jobs() == {("acme", "orders"): 1}
        for minute in range(6):
            due = at("2026-12-01T12:00") + minute * MINUTE
            # the fastest clock reaches the minute first; then every clock is past it
            await running.advance(due + dt.timedelta(seconds=min(offsets) - max(offsets) + 0.5))
            await running.advance(due + dt.timedelta(seconds=max(offsets) - min(offsets) + 5))
            jobs: Counter[tuple[str, str]] = Counter({("acme", "orders"): 1})
            expected_claims.add(schedule_key(DEFAULT_QUEUE, "acme", EVERY_MINUTE, due))
            if minute % 2 == 0:
                jobs["acme", "products"] = 1
                expected_claims.add(schedule_key(DEFAULT_QUEUE, "acme", EVEN_MINUTES, due))
            assert stream.new_jobs() == jobs, f"due {due}"
    assert stream.claims() == expected_claims  # globex's 13:00 package-orders: never
    assert all(m["task_name"] == "yeastar_csss.sync_list" for m in stream.messages())


async def test_a_restarted_or_late_scheduler_queues_no_due_time_twice_nor_old_ones(
    redis_url: str, redis_server: RedisServer
) -> None:
    stream = Stream(redis_server, redis_url)
    time = FakeTime(at("2026-12-01T12:00:10"))
    async with fleet(redis_url, time, [0.0]):
        assert stream.new_jobs() == {("acme", "orders"): 1, ("acme", "products"): 1}  # 12:00
    time.now = at("2026-12-01T12:00:40")  # restarted within the minute: 12:00 is claimed
    async with fleet(redis_url, time, [0.0]):
        assert stream.new_jobs() == {}
    time.now = at("2026-12-01T12:05:30")  # none ran for 5 minutes: 12:05 only, no 12:01-12:04
    async with fleet(redis_url, time, [0.0]) as running:
        assert stream.new_jobs() == {("acme", "orders"): 1}
        await running.advance(at("2026-12-01T12:09:20"))  # woke 3 minutes late: 12:09 only
        assert stream.new_jobs() == {("acme", "orders"): 1}
        await running.advance(at("2026-12-01T12:10:01"))
        assert stream.new_jobs() == {("acme", "orders"): 1, ("acme", "products"): 1}
    claims = {
        schedule_key(DEFAULT_QUEUE, "acme", schedule, at(f"2026-12-01T{due}"))
        for schedule, due in (
            (EVERY_MINUTE, "12:00"),
            (EVEN_MINUTES, "12:00"),
            (EVERY_MINUTE, "12:05"),
            (EVERY_MINUTE, "12:09"),
            (EVERY_MINUTE, "12:10"),
            (EVEN_MINUTES, "12:10"),
        )
    }
    assert stream.claims() == claims


async def test_a_hanging_send_is_given_up_and_holds_up_no_other_schedule(
    redis_url: str, redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    stream = Stream(redis_server, redis_url)
    accounts = {
        name: AccountConfig(
            name, csss_access_code_env="C", csss_secret_env="S", schedules=(EVERY_MINUTE,)
        )
        for name in ("acme", "globex", "initech")
    }
    hanging: list[bytes] = []

    def hang_acme_once(broker: Any) -> None:
        send = broker.kick

        async def kick(message: BrokerMessage) -> None:
            if not hanging and json.loads(message.message)["args"][0] == "acme":
                hanging.append(message.message)
                await asyncio.Event().wait()  # taskiq#626: a send that never returns
            await send(message)

        broker.kick = kick

    time = FakeTime(at("2026-12-01T12:00:30"))
    caplog.set_level(logging.INFO, "yeastar_csss_async.tasks.scheduler")
    async with fleet(
        redis_url, time, [0.0], accounts, patch_broker=hang_acme_once, send_timeout=2.0
    ) as running:
        assert hanging
        assert stream.new_jobs() == {("globex", "orders"): 1, ("initech", "orders"): 1}
        messages = [r.getMessage() for r in caplog.records]
        given_up = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
        # sent at once: the others were queued while acme's send still hung
        assert [m.split(" ")[0] for m in messages if "queued task" in m or "not queued" in m][
            -1
        ] == "acme", messages
        assert given_up == [
            "acme orders (* * * * *) due 2026-12-01T12:00Z: not queued: the send took longer "
            "than 2s (given up; the next due time is queued as usual)"
        ]
        await running.advance(at("2026-12-01T12:01:00.5"))  # the scheduler goes on
        assert stream.new_jobs() == {(name, "orders"): 1 for name in accounts}
    # the given-up due time stays claimed: no second scheduler queues it late
    assert schedule_key(DEFAULT_QUEUE, "acme", EVERY_MINUTE, at("2026-12-01T12:00")) in (
        stream.claims()
    )


async def test_redis_gone_mid_run_ends_the_scheduler_with_a_redis_error(
    redis_url: str, redis_server: RedisServer
) -> None:
    time = FakeTime(at("2026-12-01T12:00:30"))
    async with fleet(redis_url, time, [0.0]) as running:
        redis_server.kill()
        with pytest.raises((RedisError, OSError)):
            await running.advance(at("2026-12-01T12:01:00.5"))


ACCOUNT = """
[accounts.acme]
yeastar_client_id_env = "ACME_ID"
yeastar_client_secret_env = "ACME_SECRET"
"""


def test_the_accounts_file_reads_schedules_in_their_order(tmp_path: Path) -> None:
    path = tmp_path / "accounts.toml"
    path.write_text(
        ACCOUNT
        + """
[[accounts.acme.schedule]]
list = "orders"
cron = " */15  * * * * "

[[accounts.acme.schedule]]
list = "package-orders"
cron = "0 3 * * 1-5"
"""
    )
    accounts = load_accounts(path)
    assert accounts["acme"].schedules == (
        Schedule("orders", "*/15 * * * *"),
        Schedule("package-orders", "0 3 * * 1-5"),
    )


@pytest.mark.parametrize(
    ("schedule", "where", "message"),
    [
        (
            {"list": "orders", "cron": "* * * * *", "queue": "x"},
            "schedule[0]",
            "unknown key 'queue'",
        ),
        ({"list": "invoices", "cron": "* * * * *"}, "schedule[0].list", "unknown list 'invoices'"),
        ({"list": 3, "cron": "* * * * *"}, "schedule[0].list", "unknown list '3'"),
        ({"list": "orders", "cron": "*/15 * * *"}, "schedule[0].cron", "expected 5 fields"),
        ({"list": "orders", "cron": "61 * * * *"}, "schedule[0].cron", "minute field"),
        ({"list": "orders", "cron": 15}, "schedule[0].cron", "as a string"),
        ({"list": "orders"}, "schedule[0]", "'cron' is missing"),
        ({"cron": "* * * * *"}, "schedule[0]", "'list' is missing"),
    ],
)
def test_schedule_mistakes_name_the_file_the_account_and_the_key(
    schedule: dict[str, Any], where: str, message: str
) -> None:
    table = {"yeastar_client_id_env": "X", "yeastar_client_secret_env": "Y", "schedule": [schedule]}
    with pytest.raises(AccountsFileError) as caught:
        parse_accounts({"accounts": {"acme": table}}, "/etc/accounts.toml")
    assert str(caught.value).startswith(f"/etc/accounts.toml: accounts.acme.{where}: ")
    assert message in str(caught.value)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("orders", "expected [[accounts.acme.schedule]] tables"),
        ([{"list": "orders", "cron": "* * * * *"}] * 2, "schedule[1]: the same list and cron"),
    ],
)
def test_schedule_tables_that_are_not_tables_or_repeat_are_refused(
    value: object, message: str
) -> None:
    table = {"yeastar_client_id_env": "X", "yeastar_client_secret_env": "Y", "schedule": value}
    with pytest.raises(AccountsFileError, match=re.escape(message)):
        parse_accounts({"accounts": {"acme": table}}, "accounts.toml")


def test_scheduler_usage_errors_exit_2_and_redis_failing_exits_1_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plain = tmp_path / "plain.toml"
    plain.write_text(ACCOUNT)
    bad = tmp_path / "bad.toml"
    bad.write_text(ACCOUNT + '[[accounts.acme.schedule]]\nlist = "orders"\ncron = "often"\n')
    good = tmp_path / "good.toml"
    good.write_text(ACCOUNT + '[[accounts.acme.schedule]]\nlist = "orders"\ncron = "* * * * *"\n')
    redis = ["--redis", "redis://127.0.0.1:1/0"]
    assert main(["scheduler", "--accounts", str(plain), *redis]) == 2
    assert f"{plain}: no schedules" in capsys.readouterr().err
    assert main(["scheduler", "--accounts", str(bad), *redis]) == 2
    assert f"{bad}: accounts.acme.schedule[0].cron: expected 5 fields" in capsys.readouterr().err
    assert (
        main(["scheduler", "--accounts", str(good), "--redis", "redis://:hunter2@127.0.0.1:1/0"])
        == 1
    )
    err = capsys.readouterr().err
    assert err.startswith("error: CoordinatorError: Redis at redis://")
    assert "hunter2" not in err
    assert len(err.splitlines()) == 1


class Process:
    """A ``yeastar-csss scheduler`` process and the lines of its stderr."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.lines: list[str] = []
        self.changed = asyncio.Condition()
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.process.stderr is not None
        async for raw in self.process.stderr:
            async with self.changed:
                self.lines.append(raw.decode(errors="replace").rstrip())
                self.changed.notify_all()

    async def wait_for(self, text: str, bound: float) -> str:
        async def seen() -> str:
            async with self.changed:
                await self.changed.wait_for(
                    lambda: any(text in line for line in self.lines) or self.reader.done()
                )
            found = [line for line in self.lines if text in line]
            assert found, f"the scheduler ended without {text!r}: {self.lines}"
            return found[0]

        try:
            return await asyncio.wait_for(seen(), bound)
        except TimeoutError:
            pytest.fail(f"no {text!r} within {bound:.0f}s; the scheduler said: {self.lines}")


async def test_two_scheduler_commands_queue_the_minute_s_job_once_and_stop_on_sigterm(
    redis_url: str, redis_server: RedisServer, tmp_path: Path
) -> None:
    accounts = tmp_path / "accounts.toml"
    accounts.write_text(
        ACCOUNT + '[[accounts.acme.schedule]]\nlist = "orders"\ncron = "* * * * *"\n'
    )
    argv = [sys.executable, "-m", "yeastar_csss_async", "scheduler"]
    argv += ["--accounts", str(accounts), "--redis", redis_url]
    processes: list[Process] = []
    try:
        for _ in range(2):
            process = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
                env=os.environ.copy(),
            )
            processes.append(Process(process))
        for running in processes:
            await running.wait_for(" ready: ", GUARD)
        now = time.time()
        boundary = dt.datetime.fromtimestamp(now - now % 60 + 60, UTC)
        due = f"due {boundary:%Y-%m-%dT%H:%MZ}"
        # both handle the boundary's due time: one queues it, the other finds it claimed
        lines = [await p.wait_for(due, boundary.timestamp() - now + 30.0) for p in processes]
        for running in processes:
            running.process.send_signal(signal.SIGTERM)
        codes = [await guard(p.process.wait(), "the scheduler to exit") for p in processes]
        for running in processes:
            await running.reader
    finally:
        for running in processes:
            if running.process.returncode is None:
                running.process.kill()
                await running.process.wait()
    assert codes == [0, 0], [p.lines for p in processes]
    assert sorted(": queued task" in line for line in lines) == [False, True], lines
    assert any("queued by another scheduler" in line for line in lines), lines
    # every job in the stream was queued by one of them, each due time once (start-up
    # catch-ups included)
    queued = [
        found.groups()
        for running in processes
        for line in running.lines
        if (found := re.search(r" due (\S+): queued task (\S+) ", line)) is not None
    ]
    due_times = [when for when, _ in queued]
    assert len(set(due_times)) == len(due_times), queued
    assert f"{boundary:%Y-%m-%dT%H:%MZ}" in due_times
    stream = Stream(redis_server, redis_url)
    assert sorted(m["task_id"] for m in stream.messages()) == sorted(task for _, task in queued)
    assert all(p.lines[-1].endswith(" stopped") for p in processes)
