"""``yeastar-csss worker --log-format``: a real worker process's stderr, line by line: the
time and level on every line, the job's task id (as ``enqueue`` printed it), account and list
on the job's lines, a failed job as one line without a traceback, and no secret. Plus the
formatter itself, on records made here."""

from __future__ import annotations

import asyncio
import datetime
import json
import logging
import re
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("taskiq_redis", reason="needs the [workers] extra")

from yeastar_csss_async import APIError
from yeastar_csss_async.sandbox import Sandbox, SandboxConfig
from yeastar_csss_async.tasks import (
    JobContext,
    JobContextFilter,
    WorkerLogFormatter,
    make_broker,
)
from yeastar_csss_async.tasks._logging import job_context

from tests.tasks._watched import watched_worker
from tests.tasks.test_tasks import READY_TIMEOUT, SECRETS, accounts_toml, result_of

TEXT_LINE = re.compile(
    r"(?P<time>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z) (?P<level>[A-Z]+) (?P<logger>\S+) "
)


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'logged.db'}"


async def enqueue(redis_url: str, account: str) -> str:
    """``yeastar-csss enqueue sync orders``: the task id it printed."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "yeastar_csss_async",
        "enqueue",
        "sync",
        "orders",
        "--account",
        account,
        "--redis",
        redis_url,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), READY_TIMEOUT)
    assert process.returncode == 0, err.decode()
    (task_id,) = out.decode().split()
    return task_id


async def run_two_jobs(
    redis_url: str, db_url: str, tmp_path: Path, log_format: str
) -> tuple[list[str], str, str]:
    """A worker that runs a sync of ``acme`` and a sync of ``broken`` (its credentials
    variable is not set); its stderr lines and the two task ids."""
    broker = make_broker(redis_url)
    await broker.startup()
    try:
        async with Sandbox(SandboxConfig(orders=37)) as sandbox:
            accounts = tmp_path / "accounts.toml"
            accounts.write_text(accounts_toml({"acme": sandbox.base_url}, broken=True))
            async with watched_worker(
                redis_url, accounts, db_url, "--log-format", log_format
            ) as running:
                good = await enqueue(redis_url, "acme")
                bad = await enqueue(redis_url, "broken")
                assert not (await result_of(broker, good)).is_err
                assert (await result_of(broker, bad)).is_err
                assert await running.stop() == 0
    finally:
        await broker.shutdown()
    return running.lines, good, bad


def check_time(text: str) -> None:
    moment = datetime.datetime.fromisoformat(text)
    assert text.endswith("Z")
    assert moment.utcoffset() == datetime.timedelta(0)
    now = datetime.datetime.now(datetime.UTC)
    assert abs(now - moment) < datetime.timedelta(minutes=10)


async def test_json_lines_have_the_keys_and_the_job_lines_the_printed_task_id(
    redis_url: str, db_url: str, tmp_path: Path
) -> None:
    lines, good, bad = await run_two_jobs(redis_url, db_url, tmp_path, "json")
    records: list[dict[str, Any]] = [json.loads(line) for line in lines]  # every line
    for record in records:
        assert {"time", "level", "logger", "message"} <= record.keys(), record
        check_time(record["time"])
        assert record["level"] in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
    assert any(" ready: " in r["message"] for r in records)
    assert any(r["message"].endswith(" stopped") for r in records)
    ok = [r for r in records if r.get("task_id") == good]
    assert ok, lines
    for record in ok:
        assert (record["account"], record["list"]) == ("acme", "orders")
    assert any(r["message"].startswith("acme: orders: 37 seen, 37 new") for r in ok), ok
    failed = [r for r in records if r.get("task_id") == bad]
    assert [r["level"] for r in failed] == ["ERROR"], failed
    assert (failed[0]["account"], failed[0]["list"]) == ("broken", "orders")
    assert failed[0]["message"].startswith("sync job failed: ConfigurationError: ")
    assert "YCA_TEST_NOT_SET_ID" in failed[0]["message"]
    outside = [r for r in records if "task_id" in r and r["task_id"] not in (good, bad)]
    assert outside == []
    assert all("task_id" not in r for r in records if " ready: " in r["message"])
    check_clean(lines)


async def test_text_lines_start_with_time_and_level_and_a_failure_is_one_line(
    redis_url: str, db_url: str, tmp_path: Path
) -> None:
    lines, good, bad = await run_two_jobs(redis_url, db_url, tmp_path, "text")
    for line in lines:
        found = TEXT_LINE.match(line)
        assert found, line
        check_time(found["time"])
    assert any(f"[task_id={good} account=acme list=orders] acme: " in line for line in lines)
    failed = [line for line in lines if f"task_id={bad}" in line]
    assert len(failed) == 1, lines
    assert " ERROR yeastar_csss_async.tasks " in failed[0]
    assert "account=broken list=orders] sync job failed: ConfigurationError: " in failed[0]
    check_clean(lines)


def check_clean(lines: list[str]) -> None:
    """No traceback, no taskiq wording, no secret."""
    log = "\n".join(lines)
    assert "Traceback" not in log
    assert "Exception found while executing function" not in log
    for secret in SECRETS:
        assert secret not in log


def make_record(message: str, exc: BaseException | None = None) -> logging.LogRecord:
    return logging.LogRecord(
        "yeastar_csss_async.tasks",
        logging.ERROR,
        __file__,
        1,
        message,
        (),
        (type(exc), exc, exc.__traceback__) if exc is not None else None,
    )


def formatted(log_format: str, record: logging.LogRecord) -> str:
    JobContextFilter().filter(record)
    return WorkerLogFormatter(log_format).format(record)


def test_an_exception_on_a_record_is_one_line_with_the_api_error_details() -> None:
    try:
        raise APIError("denied\n  by the server", status=403, code="10007", request_id="r-1")
    except APIError as error:
        record = make_record("page failed", error)
    with job_context(JobContext("t-1", "acme", "orders")):
        text = formatted("text", record)
    assert "\n" not in text
    assert "Traceback" not in text
    assert text.endswith(
        "ERROR yeastar_csss_async.tasks [task_id=t-1 account=acme list=orders] page failed: "
        "APIError: denied by the server (status=403, code=10007, request_id=r-1)"
    )
    line = json.loads(formatted("json", record))
    assert line["message"].endswith("(status=403, code=10007, request_id=r-1)")
    assert "task_id" not in line  # filtered outside the job: no job fields


def test_job_context_keeps_concurrent_jobs_apart() -> None:
    async def job(name: str, started: asyncio.Event, other: asyncio.Event) -> str:
        with job_context(JobContext(name, name, "orders")):
            started.set()
            await other.wait()  # the other job sets its own context meanwhile
            return json.loads(formatted("json", make_record("done")))["task_id"]  # type: ignore[no-any-return]

    async def both() -> list[str]:
        a, b = asyncio.Event(), asyncio.Event()
        return list(await asyncio.gather(job("a", a, b), job("b", b, a)))

    assert asyncio.run(both()) == ["a", "b"]
    assert "task_id" not in json.loads(formatted("json", make_record("after")))


def test_the_formatter_refuses_an_unknown_format() -> None:
    with pytest.raises(ValueError, match="log format 'xml'"):
        WorkerLogFormatter("xml")
