"""``yeastar-csss sync`` end to end: real subprocesses of the command against real SQLite files
and a real PostgreSQL server (``tests/_support/postgres_server.py``): the summary lines, what
lands in the tables, exit codes and one-line errors, the lock between concurrent runs, and runs
killed or interrupted midway. The expected counts come from the sandbox library itself
(revision 0 and revision 1 of its lists, diffed here), never from the code under test."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from yeastar_csss_async.sandbox import SandboxConfig, SandboxData

COMMAND = [sys.executable, "-m", "yeastar_csss_async"]
CLEAN_ENV = {
    k: v for k, v in os.environ.items() if not k.startswith(("YEASTAR_", "CSSS_", "PG"))
}  # PG*: asyncpg reads them

START_ALLOWANCE = 60.0
"""Seconds a subprocess may take to start (interpreter, imports, the embedded sandbox, the
database) on a busy 2-core machine before it is declared hung."""
LATENCY = 0.05
"""``--sandbox-latency`` of the slow runs: every request takes at least this long, and with
``--concurrency 1`` a run of P pages lasts at least P * LATENCY seconds."""
SLOW = ("--sandbox-latency", str(LATENCY), "--concurrency", "1", "--page-size", "10")

RUN_COLUMNS = "id, account, list, status, seen, new, changed, unchanged, gone, error"


# -- the command ---------------------------------------------------------------------------


def sync(
    *args: str, cwd: Path, env: dict[str, str] | None = None, python: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    """``yeastar-csss sync ARGS`` in a subprocess, to its end."""
    return subprocess.run(
        [*(python or COMMAND), "sync", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env or CLEAN_ENV,
        cwd=cwd,
        check=False,
        encoding="utf-8",
    )


def start_sync(
    *args: str, cwd: Path, python: tuple[str, ...] = (), command: str = "sync"
) -> subprocess.Popen[str]:
    """``yeastar-csss sync ARGS`` in a subprocess that keeps running."""
    return subprocess.Popen(
        [*(python or COMMAND), command, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=CLEAN_ENV,
        cwd=cwd,
        encoding="utf-8",
    )


def finish(process: subprocess.Popen[str]) -> subprocess.CompletedProcess[str]:
    """Wait for ``process`` (killing it if it hangs); what it did."""
    try:
        stdout, stderr = process.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        process.kill()
        stdout, stderr = process.communicate()
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def together(*processes: subprocess.Popen[str]) -> list[subprocess.CompletedProcess[str]]:
    """Commands that do not depend on each other, run at the same time (a faster file)."""
    return [finish(process) for process in processes]


def the_one_line(result: subprocess.CompletedProcess[str]) -> str:
    """The single line a failed command prints (on stderr; nothing on stdout)."""
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


# -- what the sandbox serves -----------------------------------------------------------------


def served_orders(size: int, revision: int) -> dict[str, dict[str, Any]]:
    """The orders the CLI's sandbox serves with ``--sandbox-size SIZE --sandbox-revision R``,
    by id, as the sandbox library makes them."""
    config = SandboxConfig()
    data = SandboxData(
        seed=config.seed,
        orders=size,
        products_per_line=config.products_per_line,
        package_orders=config.package_orders,
        generated=False,
        revision=revision,
    )
    return {record["id"]: dict(record) for record in data.orders}


@attrs.frozen
class Step:
    """What changed between two versions of a list, by key."""

    new: frozenset[str]
    changed: frozenset[str]
    gone: frozenset[str]


def diff(before: dict[str, dict[str, Any]], after: dict[str, dict[str, Any]]) -> Step:
    return Step(
        new=frozenset(after.keys() - before.keys()),
        changed=frozenset(key for key in after.keys() & before.keys() if after[key] != before[key]),
        gone=frozenset(before.keys() - after.keys()),
    )


# -- the database ----------------------------------------------------------------------------


class Database:
    """A database the tests sync into: the URL the command gets, what its summary line shows
    for it (computed here, not by the code under test), and an engine to look inside."""

    def __init__(self, url: str) -> None:
        self.url = url
        parsed = make_url(url)
        self.password = parsed.password
        self.display = url.replace(f":{self.password}@", ":***@") if self.password else url
        driver = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg"}
        self.dialect = parsed.get_backend_name()
        self.engine: AsyncEngine = create_async_engine(
            parsed.set(drivername=driver[self.dialect]), poolclass=NullPool
        )

    async def rows(self, sql: str, **params: Any) -> list[sa.Row[Any]]:
        async with self.engine.connect() as connection:
            return list((await connection.execute(sa.text(sql), params)).all())

    async def scalar(self, sql: str, **params: Any) -> Any:
        async with self.engine.connect() as connection:
            return (await connection.execute(sa.text(sql), params)).scalar()

    async def execute(self, sql: str, **params: Any) -> None:
        async with self.engine.begin() as connection:
            await connection.execute(sa.text(sql), params)

    async def runs(self, account: str = "default") -> list[sa.Row[Any]]:
        return await self.rows(
            f"SELECT {RUN_COLUMNS} FROM sync_runs WHERE account = :account "
            "AND list = 'orders' ORDER BY id",
            account=account,
        )

    async def orders(self, account: str = "default") -> dict[str, sa.Row[Any]]:
        rows = await self.rows(
            "SELECT id, order_status, total_amount, first_seen_at, "
            "last_seen_at, changed_at, gone_at FROM orders "
            "WHERE account = :account",
            account=account,
        )
        return {row.id: row for row in rows}


def cli_url(sqlalchemy_url: str) -> str:
    """The fixture's ``postgresql+asyncpg://`` URL as a user writes it: ``postgresql://``."""
    return "postgresql://" + sqlalchemy_url.split("://", 1)[1]


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'sync.db'}"
    return cli_url(str(request.getfixturevalue("postgres_url")))


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    database = Database(db_url)
    try:
        yield database
    finally:
        await database.engine.dispose()


def assert_summary(
    result: subprocess.CompletedProcess[str],
    db: Database,
    list_name: str,
    seen: int,
    new: int,
    changed: int,
    unchanged: int,
    gone: int,
) -> None:
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    expected = (
        f"{list_name}: {seen} seen, {new} new, {changed} changed, {unchanged} "
        f"unchanged, {gone} gone in "
    )
    assert re.fullmatch(
        rf"{re.escape(expected)}\d+\.\ds -> {re.escape(db.display)}", result.stderr.rstrip("\n")
    ), result.stderr


def assert_no_password(db: Database, *outputs: str) -> None:
    if db.password:
        for output in outputs:
            assert db.password not in output


# -- 1. first sync, no-op re-sync, a revision later -------------------------------------------


async def test_sync_orders_twice_then_a_revision_later_counts_and_stores_each_step(
    db: Database,
    tmp_path: Path,
) -> None:
    before, after = served_orders(500, 0), served_orders(500, 1)
    step = diff(before, after)
    assert step.new  # a real step: something of each kind
    assert step.changed
    assert step.gone

    first = sync("orders", "--sandbox", "--db", db.url, cwd=tmp_path)
    assert_summary(first, db, "orders", 500, 500, 0, 0, 0)
    stored = await db.orders()
    assert stored.keys() == before.keys()
    first_seen = {key: row.first_seen_at for key, row in stored.items()}

    again = sync("orders", "--sandbox", "--db", db.url, cwd=tmp_path)
    assert_summary(again, db, "orders", 500, 0, 0, 500, 0)
    assert {key: row.changed_at for key, row in (await db.orders()).items()} == {
        key: row.changed_at for key, row in stored.items()
    }  # nothing rewritten

    later = sync("orders", "--sandbox", "--sandbox-revision", "1", "--db", db.url, cwd=tmp_path)
    unchanged = len(after) - len(step.new) - len(step.changed)
    assert_summary(
        later, db, "orders", len(after), len(step.new), len(step.changed), unchanged, len(step.gone)
    )

    stored = await db.orders()
    assert {key for key, row in stored.items() if row.gone_at is None} == after.keys()
    assert {key for key, row in stored.items() if row.gone_at is not None} == step.gone
    for key, record in after.items():  # the stored values are revision 1's
        assert str(stored[key].order_status) == str(record["orderStatus"])
        assert Decimal(str(stored[key].total_amount)) == Decimal(str(record["totalAmount"]))
    # "changed since": changed_at moved past first_seen_at for exactly the changed records,
    # and first_seen_at of every record seen before stayed
    assert {
        key for key, row in stored.items() if row.changed_at > row.first_seen_at
    } == step.changed
    assert all(stored[key].first_seen_at == seen for key, seen in first_seen.items())

    runs = await db.runs()
    assert [(r.status, r.seen, r.new, r.changed, r.unchanged, r.gone, r.error) for r in runs] == [
        ("complete", 500, 500, 0, 0, 0, None),
        ("complete", 500, 0, 0, 500, 0, None),
        ("complete", len(after), len(step.new), len(step.changed), unchanged, len(step.gone), None),
    ]
    assert_no_password(db, *(r.stdout + r.stderr for r in (first, again, later)))


# -- 2. all three lists; accounts kept apart ---------------------------------------------------


async def test_sync_all_writes_every_list_and_accounts_stay_apart(
    db: Database,
    tmp_path: Path,
) -> None:
    config = SandboxConfig()
    data = SandboxData(
        seed=config.seed, orders=20, products_per_line=20, package_orders=20, generated=False
    )
    products = sum(len(line) for line in data.products.values())
    if db.dialect == "sqlite":  # the default --db: yeastar-csss.db in the working directory
        db_args: tuple[str, ...] = ()
        database = Database(f"sqlite:///{tmp_path / 'yeastar-csss.db'}")
        database.display = "sqlite:///yeastar-csss.db"
    else:  # the SQLAlchemy form is accepted as given
        db_args = (
            "--db",
            make_url(db.url)
            .set(drivername="postgresql+asyncpg")
            .render_as_string(hide_password=False),
        )
        database = db
    try:
        result = sync(
            "all", "--sandbox", "--sandbox-size", "20", "--account", "a", *db_args, cwd=tmp_path
        )
        assert result.returncode == 0, result.stderr
        lines = [re.sub(r" in \d+\.\ds -> ", " -> ", line) for line in result.stderr.splitlines()]
        assert lines == [
            f"orders: 20 seen, 20 new, 0 changed, 0 unchanged, 0 gone -> {database.display}",
            f"products: {products} seen, {products} new, 0 changed, 0 unchanged, 0 gone -> "
            f"{database.display}",
            f"package-orders: 20 seen, 20 new, 0 changed, 0 unchanged, 0 gone -> "
            f"{database.display}",
        ]
        keys = {
            "orders": {(o["id"],) for o in data.orders},
            "products": {
                (line, p["productNo"]) for line, records in data.products.items() for p in records
            },
            "package_orders": {(p["orderCode"],) for p in data.package_orders},
        }
        columns = {
            "orders": "id",
            "products": "product_id, product_no",
            "package_orders": "order_code",
        }
        for table, expected in keys.items():
            found = await database.rows(
                f"SELECT {columns[table]} FROM {table} WHERE account = 'a' AND gone_at IS NULL"
            )
            assert {tuple(row) for row in found} == expected, table

        # account b: a revision later, most of the same order ids as a's. Every one is new
        # for b, and b's complete run marks none of a's orders gone (it saw none of them)
        a_before = await database.orders("a")
        b_orders = served_orders(30, 1)
        assert len(b_orders.keys() & a_before.keys()) > 10
        b = sync(
            "orders",
            "--sandbox",
            "--sandbox-size",
            "30",
            "--sandbox-revision",
            "1",
            "--account",
            "b",
            *db_args,
            cwd=tmp_path,
        )
        assert_summary(b, database, "orders", len(b_orders), len(b_orders), 0, 0, 0)
        assert (await database.orders("b")).keys() == b_orders.keys()
        assert await database.orders("a") == a_before  # not one value of a's rows moved
        assert [
            r.account for r in await database.rows("SELECT account FROM sync_runs ORDER BY id")
        ] == ["a", "a", "a", "b"]
        assert_no_password(database, result.stderr, b.stderr)
    finally:
        if database is not db:
            await database.engine.dispose()


# -- 3. exit codes and one-line errors ---------------------------------------------------------


def test_a_database_url_the_command_cannot_use_or_product_id_with_orders_exits_2(
    tmp_path: Path,
) -> None:
    urls = ["mysql://user:secret-pw@host/db", "not a url", "sqlite+pysqlite:///x.db"]
    *results, product_id = together(
        *(
            start_sync("orders", "--sandbox", "--sandbox-size", "3", "--db", url, cwd=tmp_path)
            for url in urls
        ),
        start_sync("orders", "--sandbox", "--product-id", "13", cwd=tmp_path),
    )
    assert product_id.returncode == 2
    assert the_one_line(product_id) == "yeastar-csss: --product-id applies to products only"
    for url, result in zip(urls, results, strict=True):
        assert result.returncode == 2, url
        line = the_one_line(result)
        assert line.startswith("yeastar-csss: ")
        assert (
            "use sqlite:///FILE or postgresql://USER:PASSWORD@HOST/DB" in line
            or "expected sqlite:///FILE or postgresql://USER:PASSWORD@HOST/DB" in line
        )
        assert "secret-pw" not in line
    assert list(tmp_path.iterdir()) == []  # no database, no lock file


@pytest.fixture
def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound, then closed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_an_unreachable_server_or_a_wrong_password_exits_1_with_one_line_hiding_it(
    tmp_path: Path,
    closed_port: int,
    postgres_server: Any,
) -> None:
    wrong = "not-the-password-4f1c"
    unreachable, refused = together(
        *(
            start_sync("orders", "--sandbox", "--sandbox-size", "3", "--db", url, cwd=tmp_path)
            for url in (
                f"postgresql://user:{wrong}@127.0.0.1:{closed_port}/db",
                postgres_server.dsn.replace(f":{postgres_server.password}@", f":{wrong}@"),
            )
        )
    )
    assert unreachable.returncode == 1
    line = the_one_line(unreachable)
    assert line.startswith(f"error: SyncError: postgresql://user:***@127.0.0.1:{closed_port}/db: ")
    assert wrong not in line
    assert refused.returncode == 1
    line = the_one_line(refused)
    assert "password authentication failed" in line
    assert f"{postgres_server.user}:***@" in line  # the database is named, its password hidden
    assert wrong not in line


async def test_a_database_of_a_newer_release_exits_1_and_is_left_alone(
    db: Database,
    tmp_path: Path,
) -> None:
    # 1, not 2: like a wrong password, it is the database found at run time that cannot be
    # used; the command line itself is fine (a newer release of the command would succeed)
    first = sync("orders", "--sandbox", "--sandbox-size", "5", "--db", db.url, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    await db.execute("UPDATE yeastar_csss_schema SET version = 99")
    stored = await db.orders()
    result = sync("orders", "--sandbox", "--sandbox-size", "7", "--db", db.url, cwd=tmp_path)
    assert result.returncode == 1
    line = the_one_line(result)
    assert line == (
        f"error: SchemaVersionError: {db.display}: schema version 99 was written "
        "by a newer release of yeastar-csss-async (this one knows up to 1); "
        "upgrade yeastar-csss-async to use it"
    )
    assert await db.scalar("SELECT version FROM yeastar_csss_schema") == 99
    assert await db.orders() == stored
    assert len(await db.runs()) == 1
    assert_no_password(db, line)


def test_a_read_only_sqlite_database_exits_1_with_one_line_and_keeps_its_data(
    tmp_path: Path,
) -> None:
    path = tmp_path / "ro.db"
    first = sync(
        "orders", "--sandbox", "--sandbox-size", "5", "--db", f"sqlite:///{path}", cwd=tmp_path
    )
    assert first.returncode == 0, first.stderr
    # read-only through SQLite's URI form: the tests run as root, which file modes don't stop
    url = f"sqlite:///file:{path}?mode=ro&uri=true"
    result = sync("orders", "--sandbox", "--sandbox-size", "7", "--db", url, cwd=tmp_path)
    assert result.returncode == 1
    assert the_one_line(result) == (
        f"error: SyncError: {url}: OperationalError: attempt to write a readonly database"
    )
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as connection:
        assert connection.execute("SELECT count(*) FROM orders").fetchone() == (5,)
        assert connection.execute("SELECT status FROM sync_runs").fetchall() == [("complete",)]


# sqlalchemy (or a database driver) made unimportable, as when the [sync] extra is missing.
WITHOUT = """
import sys
blocked = set(sys.argv.pop(1).split(","))
class Blocker:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in blocked:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None
sys.meta_path.insert(0, Blocker())
from yeastar_csss_async import cli
raise SystemExit(cli.main(sys.argv[1:]))
"""
EXTRA = "pip install 'yeastar-csss-async[sync]'"


def test_without_the_sync_extra_the_command_exits_2_naming_it(tmp_path: Path) -> None:
    cases = [
        ("sqlalchemy", "sqlite:///x.db", "yeastar-csss: sync needs the [sync] extra: " + EXTRA),
        (
            "aiosqlite",
            "sqlite:///x.db",
            "yeastar-csss: sqlite databases need aiosqlite, part of the [sync] extra: " + EXTRA,
        ),
        (
            "asyncpg",
            "postgresql://u:secret-pw@127.0.0.1:9/db",
            "yeastar-csss: postgresql databases need asyncpg, part of the [sync] extra: " + EXTRA,
        ),
    ]
    without = "sqlalchemy,aiosqlite,asyncpg"
    *results, exported = together(
        *(
            start_sync(
                "orders",
                "--sandbox",
                "--sandbox-size",
                "3",
                "--db",
                url,
                cwd=tmp_path,
                python=(sys.executable, "-c", WITHOUT, blocked),
            )
            for blocked, url, _ in cases
        ),
        start_sync(
            "orders",
            "--sandbox",
            "--sandbox-size",
            "3",
            "-q",
            "-o",
            "-",
            cwd=tmp_path,
            python=(sys.executable, "-c", WITHOUT, without),
            command="export",
        ),
    )
    for (blocked, _, expected), result in zip(cases, results, strict=True):
        assert result.returncode == 2, blocked
        assert the_one_line(result) == expected
    assert not (tmp_path / "x.db").exists()
    assert exported.returncode == 0, exported.stderr  # export does not need the extra
    assert len(exported.stdout.splitlines()) == 3


def test_the_core_and_the_cli_do_not_import_sqlalchemy() -> None:
    code = (
        "import sys, yeastar_csss_async, yeastar_csss_async.cli, yeastar_csss_async.sandbox\n"
        "from yeastar_csss_async.cli import build_parser\n"
        "build_parser().parse_args(['sync', 'orders'])\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'sqlalchemy', 'aiosqlite', 'asyncpg', 'yeastar_csss_async'} and "
        "(not m.startswith('yeastar_csss_async') or m.startswith('yeastar_csss_async.sync')"
        " or m == 'yeastar_csss_async.cli._sync')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        env=CLEAN_ENV,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "[]\n"


# -- 4. two syncs at once ----------------------------------------------------------------------


async def wait_until_running(
    db: Database,
    process: subprocess.Popen[str],
    *,
    after: int,
    pages: int,
    account: str = "default",
) -> sa.Row[Any]:
    """The run row of ``process`` once it is ``running`` with a page committed (``seen`` >
    0). Bound: START_ALLOWANCE for the process to start, plus the run's own length at the
    sandbox's pace (``pages`` * LATENCY); past it the run hung or never committed a page."""
    deadline = time.monotonic() + START_ALLOWANCE + pages * LATENCY
    while True:
        try:
            rows = await db.rows(
                f"SELECT {RUN_COLUMNS}, started_at FROM sync_runs "
                "WHERE account = :account AND list = 'orders' AND id > :after",
                account=account,
                after=after,
            )
        except sa.exc.DBAPIError:  # the process is still creating the tables
            rows = []
        if rows and rows[-1].status == "running" and rows[-1].seen > 0:
            return rows[-1]
        if process.poll() is not None:
            pytest.fail(f"the sync ended before it was seen running: {finish(process)}")
        assert time.monotonic() < deadline, "the sync never committed a page"
        await asyncio.sleep(LATENCY)


async def last_run_id(db: Database) -> int:
    try:
        return int(await db.scalar("SELECT max(id) FROM sync_runs") or 0)
    except sa.exc.DBAPIError:  # no tables yet
        return 0


@pytest.fixture
def reaper() -> Iterator[list[subprocess.Popen[str]]]:
    """Processes a test started: killed and waited for if the test left them running."""
    processes: list[subprocess.Popen[str]] = []
    yield processes
    for process in processes:
        if process.poll() is None:
            process.kill()
        finish(process)


async def test_a_second_sync_of_the_same_account_is_refused_while_one_runs(
    db: Database,
    tmp_path: Path,
    reaper: list[subprocess.Popen[str]],
) -> None:
    size = 4000  # 400 pages of 10: at least 400 * LATENCY = 20 s, ended by the test
    running = start_sync(
        "orders", "--sandbox", "--sandbox-size", str(size), *SLOW, "--db", db.url, cwd=tmp_path
    )
    reaper.append(running)
    run = await wait_until_running(db, running, after=0, pages=size // 10)

    second, other = together(
        start_sync("orders", "--sandbox", "--sandbox-size", "5", "--db", db.url, cwd=tmp_path),
        start_sync(
            "orders",
            "--sandbox",
            "--sandbox-size",
            "5",
            "--account",
            "other",
            "--db",
            db.url,
            cwd=tmp_path,
        ),
    )
    assert running.poll() is None, "the first sync ended: the refusal proves nothing"

    assert second.returncode == 75  # EX_TEMPFAIL: try again later
    assert the_one_line(second) == (
        "error: SyncLockedError: another sync of orders for "
        "account 'default' is running; try again when it has "
        "finished"
    )
    assert_summary(other, db, "orders", 5, 5, 0, 0, 0)
    runs = await db.rows(f"SELECT {RUN_COLUMNS} FROM sync_runs ORDER BY id")
    assert [(r.id, r.account, r.status) for r in runs] == [
        (run.id, "default", "running"),
        (run.id + 1, "other", "complete"),
    ]  # none for second
    assert await db.scalar("SELECT count(*) FROM orders WHERE account = 'other'") == 5

    running.send_signal(signal.SIGTERM)  # the first one stops as it would when terminated
    stopped = finish(running)
    assert stopped.returncode == 143, stopped.stderr
    assert_no_password(db, second.stderr, other.stderr, stopped.stderr)


# -- 5. a run killed or interrupted midway -----------------------------------------------------

CRASH_SIZE = 500  # 50 pages of 10: the slow run lasts at least 50 * LATENCY = 2.5 s


async def start_revision_1_and_wait(
    db: Database,
    tmp_path: Path,
    reaper: list[subprocess.Popen[str]],
) -> tuple[subprocess.Popen[str], sa.Row[Any]]:
    """Sync revision 0 completely, then start a slow sync of revision 1 and wait until it
    has committed a page."""
    first = sync(
        "orders", "--sandbox", "--sandbox-size", str(CRASH_SIZE), "--db", db.url, cwd=tmp_path
    )
    assert first.returncode == 0, first.stderr
    after = await last_run_id(db)
    process = start_sync(
        "orders",
        "--sandbox",
        "--sandbox-size",
        str(CRASH_SIZE),
        "--sandbox-revision",
        "1",
        *SLOW,
        "--db",
        db.url,
        cwd=tmp_path,
    )
    reaper.append(process)
    run = await wait_until_running(db, process, after=after, pages=CRASH_SIZE // 10)
    return process, run


async def assert_kept_what_it_committed(db: Database, run_id: int, status: str) -> int:
    """The run row has ``status``; every record it counted is stored with its
    ``last_seen_at``, and nothing is marked gone. Returns what it had seen."""
    run = (
        await db.rows(f"SELECT {RUN_COLUMNS}, started_at FROM sync_runs WHERE id = :id", id=run_id)
    )[0]
    assert run.status == status
    assert 0 < run.seen < CRASH_SIZE  # some pages committed, not all
    stored = await db.orders()
    assert len(stored) >= CRASH_SIZE  # nothing lost
    assert sum(row.last_seen_at >= run.started_at for row in stored.values()) == run.seen
    assert all(row.gone_at is None for row in stored.values())
    return int(run.seen)


async def assert_the_next_sync_completes_and_marks_the_removed_gone(
    db: Database,
    tmp_path: Path,
    failed_run: int,
    error: str,
) -> None:
    step = diff(served_orders(CRASH_SIZE, 0), served_orders(CRASH_SIZE, 1))
    result = sync(
        "orders",
        "--sandbox",
        "--sandbox-size",
        str(CRASH_SIZE),
        "--sandbox-revision",
        "1",
        "--db",
        db.url,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    match = re.fullmatch(
        r"orders: (\d+) seen, (\d+) new, (\d+) changed, (\d+) unchanged, "
        rf"(\d+) gone in \d+\.\ds -> {re.escape(db.display)}\n",
        result.stderr,
    )
    assert match is not None, result.stderr
    seen, new, changed, unchanged, gone = map(int, match.groups())
    assert (seen, gone) == (CRASH_SIZE + len(step.new) - len(step.gone), len(step.gone))
    assert new + changed + unchanged == seen
    runs = {r.id: r for r in await db.runs()}
    assert runs[failed_run].status == "failed"
    assert error in runs[failed_run].error
    assert runs[max(runs)].status == "complete"
    stored = await db.orders()
    assert {key for key, row in stored.items() if row.gone_at is not None} == step.gone
    assert {key for key, row in stored.items() if row.gone_at is None} == served_orders(
        CRASH_SIZE, 1
    ).keys()


async def test_a_sync_killed_midway_keeps_what_it_committed_and_the_next_one_completes(
    db: Database,
    tmp_path: Path,
    reaper: list[subprocess.Popen[str]],
) -> None:
    process, run = await start_revision_1_and_wait(db, tmp_path, reaper)
    process.kill()  # SIGKILL: no cleanup at all; the lock dies with the process
    assert finish(process).returncode == -signal.SIGKILL
    await assert_kept_what_it_committed(db, run.id, "running")
    await assert_the_next_sync_completes_and_marks_the_removed_gone(
        db, tmp_path, run.id, "interrupted"
    )


async def test_ctrl_c_midway_exits_130_records_the_run_failed_and_marks_nothing_gone(
    tmp_path: Path,
    reaper: list[subprocess.Popen[str]],
) -> None:
    db = Database(f"sqlite:///{tmp_path / 'sync.db'}")
    try:
        process, run = await start_revision_1_and_wait(db, tmp_path, reaper)
        process.send_signal(signal.SIGINT)
        stopped = finish(process)
        assert stopped.returncode == 130, stopped.stderr
        assert stopped.stderr.splitlines()[-1] == "interrupted"
        assert "Traceback" not in stopped.stderr
        await assert_kept_what_it_committed(db, run.id, "failed")
        await assert_the_next_sync_completes_and_marks_the_removed_gone(
            db, tmp_path, run.id, "CancelledError"
        )
    finally:
        await db.engine.dispose()
