"""Running the fleet unattended, end to end: the URLs from ``YEASTAR_CSSS_*`` variables (and
never on a command line), ``enqueue --accounts`` refusing an unknown account, ``enqueue
--wait`` and ``result``. Real redis-server (with a password through an ACL user), real
PostgreSQL (password-protected role), real ``yeastar-csss`` subprocesses."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

pytest.importorskip("taskiq_redis", reason="needs the [workers] extra")

from yeastar_csss_async._apis import ACCOUNTS_ENV, DB_ENV, REDIS_ENV
from yeastar_csss_async.sandbox import Sandbox, SandboxConfig
from yeastar_csss_async.tasks import DEFAULT_QUEUE

from tests._support.postgres_server import PostgresServer
from tests._support.redis_server import RedisServer, password_url
from tests.tasks.test_tasks import ENV, READY_TIMEOUT, Worker, accounts_toml

COMMAND = [sys.executable, "-m", "yeastar_csss_async"]
BASE_ENV = {
    k: v
    for k, v in os.environ.items()
    if not k.startswith(("YEASTAR_", "CSSS_", "PG", "YCA_TEST_"))
}
ORDERS = 37


@pytest.fixture
def redis_password_url(redis_server: RedisServer, redis_url: str) -> Iterator[str]:
    """``redis_url`` as an ACL user with a real password."""
    with password_url(redis_server, redis_url) as url:
        yield url


def password_of(url: str) -> str:
    from urllib.parse import unquote, urlsplit

    password = urlsplit(url).password
    assert password
    return unquote(password)


async def command(*args: str, env: dict[str, str], cwd: Path) -> tuple[int, str, str]:
    """``yeastar-csss ARGS`` to its end, without blocking the loop (the sandbox serves on
    it): exit code, stdout, stderr."""
    process = await asyncio.create_subprocess_exec(
        *COMMAND,
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
        cwd=cwd,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), READY_TIMEOUT)
    except TimeoutError:
        process.kill()
        await process.wait()
        pytest.fail(f"yeastar-csss {' '.join(args[:2])} hung")
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def children_of(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (from /proc/*/stat)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        with contextlib.suppress(OSError):
            stat = Path(f"/proc/{entry}/stat").read_text()
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry))
    return found


def cmdline(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()


@contextlib.asynccontextmanager
async def fleet(
    argv: list[str], env: dict[str, str], cwd: Path, workers: int
) -> AsyncIterator[Worker]:
    process = await asyncio.create_subprocess_exec(
        *COMMAND,
        "worker",
        *argv,
        "--workers",
        str(workers),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        env=env,
        cwd=cwd,
    )
    running = Worker(process)
    try:
        await running.wait_for(" ready: ", workers)
        yield running
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        await running._reader


@pytest.mark.parametrize("given", ["environment", "options"])
async def test_worker_children_get_the_urls_through_the_environment_never_their_argv(
    given: str,
    redis_password_url: str,
    postgres_server: PostgresServer,
    postgres_url: str,
    tmp_path: Path,
) -> None:
    passwords = (password_of(redis_password_url), postgres_server.password)
    async with Sandbox(SandboxConfig(orders=ORDERS, products_per_line=3, package_orders=5)) as box:
        accounts = tmp_path / "accounts.toml"
        accounts.write_text(accounts_toml({"acme": box.base_url}))
        urls = {REDIS_ENV: redis_password_url, DB_ENV: postgres_url, ACCOUNTS_ENV: str(accounts)}
        options = ["--redis", redis_password_url, "--db", postgres_url, "--accounts", str(accounts)]
        worker_env = {**BASE_ENV, **ENV, **(urls if given == "environment" else {})}
        argv = options if given == "options" else []
        async with fleet(argv, worker_env, tmp_path, workers=2) as running:
            children = children_of(running.process.pid)
            assert len(children) == 2
            for child in children:
                line = cmdline(child)
                assert "worker" in line
                assert "redis" not in line
                assert "postgresql" not in line
                assert str(accounts) not in line
                for password in passwords:
                    assert password not in line
            if given == "environment":
                line = cmdline(running.process.pid)
                assert "redis://" not in line
                assert "postgresql" not in line
                for password in passwords:
                    assert password not in line
            # The password-bearing URLs work from the environment alone: queue, wait, read.
            client_env = {**BASE_ENV, **urls}
            code, out, err = await command(
                "enqueue",
                "sync",
                "orders",
                "--account",
                "acme",
                "--wait",
                env=client_env,
                cwd=tmp_path,
            )
            assert code == 0, err
            task_id, summary = out.splitlines()
            assert summary.startswith(f"orders: {ORDERS} seen, {ORDERS} new, 0 changed, ")
            code, out, err = await command("result", task_id, env=client_env, cwd=tmp_path)
            assert (code, out) == (0, summary + "\n"), err
            assert await running.stop() == 0
    log = "\n".join(running.lines)
    for password in passwords:
        assert password not in log


async def test_enqueue_refuses_an_account_the_accounts_file_does_not_define(
    redis_url: str, redis_server: RedisServer, tmp_path: Path
) -> None:
    accounts = tmp_path / "accounts.toml"
    accounts.write_text(
        accounts_toml({"acme": "http://127.0.0.1:9", "globex": "http://127.0.0.1:9"})
    )
    db = int(redis_url.rsplit("/", 1)[1])
    by_option = await command(
        "enqueue", "sync", "orders", "--account", "initech", "--redis", redis_url,
        "--accounts", str(accounts), env=BASE_ENV, cwd=tmp_path,
    )  # fmt: skip
    by_env = await command(
        "enqueue", "export", "orders", "--account", "initech", "--output", "x.jsonl",
        env={**BASE_ENV, REDIS_ENV: redis_url, ACCOUNTS_ENV: str(accounts)}, cwd=tmp_path,
    )  # fmt: skip
    for code, out, err in (by_option, by_env):
        assert code == 2
        assert out == ""
        assert err == (
            f"yeastar-csss: unknown account 'initech': {accounts} defines acme, globex; "
            "nothing was queued\n"
        )
    assert redis_server.command("XLEN", DEFAULT_QUEUE, db=db) == 0
    # A defined account is queued, and without an accounts file any name is.
    for extra in (["--accounts", str(accounts)], []):
        code, out, err = await command(
            "enqueue", "sync", "orders", "--account", "acme", "--redis", redis_url, *extra,
            env=BASE_ENV, cwd=tmp_path,
        )  # fmt: skip
        assert code == 0, err
    assert redis_server.command("XLEN", DEFAULT_QUEUE, db=db) == 2


async def test_result_and_wait_report_a_failed_job_and_an_unknown_id(
    redis_url: str, tmp_path: Path
) -> None:
    accounts = tmp_path / "accounts.toml"
    accounts.write_text(accounts_toml({}, broken=True))
    env = {**BASE_ENV, REDIS_ENV: redis_url}
    worker_env = {
        **env,
        **ENV,
        ACCOUNTS_ENV: str(accounts),
        DB_ENV: f"sqlite:///{tmp_path / 'x.db'}",
    }
    async with fleet([], worker_env, tmp_path, workers=1) as running:
        code, out, err = await command(
            "enqueue",
            "sync",
            "orders",
            "--account",
            "broken",
            "--wait",
            "60",
            env=env,
            cwd=tmp_path,
        )
        assert await running.stop() == 0
    assert code == 1
    task_id = out.strip()
    assert len(out.splitlines()) == 1  # the task id only: the error goes to stderr
    assert err.startswith("error: ConfigurationError: account 'broken'")
    assert "YCA_TEST_NOT_SET_ID" in err
    assert len(err.splitlines()) == 1
    assert await command("result", task_id, env=env, cwd=tmp_path) == (1, "", err)
    assert await command("result", "no-such-task", env=env, cwd=tmp_path) == (75, "pending\n", "")


async def test_enqueue_wait_gives_up_with_75_when_no_worker_finishes_the_job(
    redis_url: str, redis_server: RedisServer, tmp_path: Path
) -> None:
    code, out, err = await command(
        "enqueue", "sync", "orders", "--account", "acme", "--wait", "0.3",
        env={**BASE_ENV, REDIS_ENV: redis_url}, cwd=tmp_path,
    )  # fmt: skip
    assert code == 75, err
    task_id, pending = out.splitlines()
    assert pending == "pending"
    db = int(redis_url.rsplit("/", 1)[1])
    assert redis_server.command("XLEN", DEFAULT_QUEUE, db=db) == 1  # still queued
    code, out, _ = await command(
        "result", task_id, "--redis", redis_url, env=BASE_ENV, cwd=tmp_path
    )
    assert (code, out) == (75, "pending\n")
