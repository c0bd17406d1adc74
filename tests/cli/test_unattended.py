"""The command run unattended: ``--db``/``--redis``/``--accounts`` from ``YEASTAR_CSSS_*``
variables (an option given wins; a missing one is one usage line naming both), and ``sync``
exiting 75 while another sync of the account and list holds the lock (1 for a real failure).
Real PostgreSQL with a password-protected role, real ``yeastar-csss`` subprocesses."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path

import pytest

from yeastar_csss_async._apis import ACCOUNTS_ENV, DB_ENV, REDIS_ENV
from yeastar_csss_async.cli._defaults import apply_environment
from yeastar_csss_async.cli._usage import UsageError

from tests._support.postgres_server import PostgresServer

COMMAND = [sys.executable, "-m", "yeastar_csss_async"]
BASE_ENV = {k: v for k, v in os.environ.items() if not k.startswith(("YEASTAR_", "CSSS_", "PG"))}
TIMEOUT = 120.0
"""Guards against a hang only."""


async def command(*args: str, env: dict[str, str], cwd: Path) -> tuple[int, str, str]:
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
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def namespace(command: str, **values: str | None) -> argparse.Namespace:
    return argparse.Namespace(command=command, **values)


def test_an_option_given_wins_over_its_variable_and_a_variable_fills_the_rest() -> None:
    env = {DB_ENV: "sqlite:///env.db", REDIS_ENV: "redis://env:6379/0", ACCOUNTS_ENV: "env.toml"}
    args = namespace("worker", db="sqlite:///option.db", redis=None, accounts=None)
    apply_environment(args, env)
    assert (args.db, args.redis, args.accounts) == (
        "sqlite:///option.db",
        "redis://env:6379/0",
        "env.toml",
    )
    optional = namespace("enqueue", redis=None, accounts=None)
    apply_environment(optional, {REDIS_ENV: "redis://h/0", ACCOUNTS_ENV: "  "})
    assert (optional.redis, optional.accounts) == ("redis://h/0", None)  # blank is unset
    redis = f"--redis URL or the environment variable {REDIS_ENV}"
    for command, attrs, missing in (
        ("worker", {"db": None, "redis": "redis://h/0", "accounts": "a"},
         f"--db URL or the environment variable {DB_ENV}"),
        ("worker", {"db": "sqlite://", "redis": "redis://h/0", "accounts": None},
         f"--accounts FILE or the environment variable {ACCOUNTS_ENV}"),
        ("status", {"redis": None}, redis),
        ("result", {"redis": None}, redis),
        ("enqueue", {"redis": None, "accounts": None}, redis),
    ):  # fmt: skip
        with pytest.raises(UsageError) as caught:
            apply_environment(namespace(command, **attrs), {})
        assert str(caught.value) == f"{command} needs {missing}"
    with pytest.raises(UsageError) as caught:
        apply_environment(namespace("status", redis=None), {REDIS_ENV: "http://u:hunter2@h/0"})
    assert REDIS_ENV in str(caught.value)
    assert "hunter2" not in str(caught.value)
    sync = namespace("sync", db=None)
    apply_environment(sync, {})
    assert sync.db == "sqlite:///yeastar-csss.db"


async def test_a_missing_redis_url_is_one_usage_line_naming_option_and_variable(
    tmp_path: Path,
) -> None:
    for args in (["status"], ["result", "abc"], ["enqueue", "sync", "orders", "--account", "a"]):
        code, out, err = await command(*args, env=BASE_ENV, cwd=tmp_path)
        assert (code, out) == (2, "")
        assert err == (
            f"yeastar-csss: {args[0]} needs --redis URL or the environment variable {REDIS_ENV}\n"
        )


async def test_sync_exits_75_while_another_sync_holds_the_lock_and_1_for_a_real_failure(
    postgres_server: PostgresServer, postgres_url: str, tmp_path: Path
) -> None:
    from yeastar_csss_async.sync import SyncStore
    from yeastar_csss_async.sync._locks import sync_lock

    sync = ("sync", "orders", "--sandbox", "--sandbox-size", "7")
    env = {**BASE_ENV, DB_ENV: postgres_url}  # the password only in the environment
    async with (
        SyncStore(postgres_url) as store,
        sync_lock(store.engine, store.display_url, store.sqlite_path, "default", "orders"),
    ):
        locked = await command(*sync, env=env, cwd=tmp_path)
        other_account = await command(*sync, "--account", "other", env=env, cwd=tmp_path)
        runs = await store.runs(account="default", list_name="orders")
    code, out, err = locked
    assert (code, out) == (75, "")
    assert err == (
        "error: SyncLockedError: another sync of orders for account 'default' is running; "
        "try again when it has finished\n"
    )
    assert runs == []  # refused before it started: nothing recorded
    assert other_account[0] == 0, other_account[2]
    code, _, err = await command(*sync, env=env, cwd=tmp_path)  # the lock is free again
    assert code == 0, err
    assert err.startswith("orders: 7 seen, 7 new, ")
    assert postgres_server.password not in err
    wrong = postgres_url.replace(f":{postgres_server.password}@", ":not-the-password@")
    code, _, err = await command(*sync, env={**BASE_ENV, DB_ENV: wrong}, cwd=tmp_path)
    assert code == 1
    assert len(err.splitlines()) == 1
    assert "not-the-password" not in err
    # Neither --db nor the variable: the SQLite file in the working directory.
    code, _, err = await command(*sync, env=BASE_ENV, cwd=tmp_path)
    assert code == 0, err
    assert err.rstrip().endswith("-> sqlite:///yeastar-csss.db")
    assert (tmp_path / "yeastar-csss.db").is_file()
