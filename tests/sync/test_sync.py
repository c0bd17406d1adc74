"""The sync layer against SQLite and a real PostgreSQL server: first sync, no-op re-sync,
adds/changes/removals, failed runs, locks, the schema version, exact money and times."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from yeastar_csss_async import CSSSClient, Order, YeastarPartnerClient
from yeastar_csss_async.sandbox import Sandbox, SandboxConfig
from yeastar_csss_async.sync import (
    SchemaVersionError,
    SyncError,
    SyncLockedError,
    SyncReport,
    SyncStore,
    sync_batches,
    sync_orders,
    sync_package_orders,
    sync_products,
)
from yeastar_csss_async.sync import _store as store_module
from yeastar_csss_async.sync._tables import TABLES

BOOKKEEPING = ("content_hash", "payload", "first_seen_at", "changed_at", "gone_at")


@pytest.fixture
def sandbox_config() -> SandboxConfig:
    return SandboxConfig(orders=45, products_per_line=7, package_orders=23)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'sync.db'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
async def store(db_url: str) -> AsyncIterator[SyncStore]:
    async with SyncStore(db_url) as store:
        yield store


async def rows(store: SyncStore, table: str, account: str = "default") -> dict[str, Any]:
    """The rows of a list table for an account, by key."""
    listed = next(t for t in TABLES.values() if t.table.name == table)
    async with store.engine.connect() as connection:
        result = await connection.execute(
            sa.select(listed.table).where(listed.table.c.account == account)
        )
        return {row[listed.key]: dict(row) for row in result.mappings()}


def counts(report: SyncReport) -> tuple[int, int, int, int, int]:
    return report.seen, report.new, report.changed, report.unchanged, report.gone


async def test_first_sync_stores_every_order_with_typed_columns(
    store: SyncStore,
    sandbox: Sandbox,
    yeastar: YeastarPartnerClient,
) -> None:
    report = await sync_orders(store, yeastar, page_size=10)
    assert counts(report) == (45, 45, 0, 0, 0)
    assert report.status == "complete"
    assert report.summary().startswith("orders: 45 seen, 45 new, 0 changed, 0 unchanged, 0 gone")
    stored = await rows(store, "orders")
    expected = {order.id: order async for order in yeastar.iter_orders()}
    assert stored.keys() == expected.keys()
    for key, order in expected.items():
        row = stored[key]
        assert row["total_amount"] == order.total_amount
        assert str(row["total_amount"]) == str(order.total_amount)  # the digits, not a float
        assert row["create_time"] == order.create_time
        assert row["create_time"].utcoffset() == timedelta(0)
        assert row["order_status"] == order.order_status
        assert row["payload"]["id"] == key
        assert row["gone_at"] is None
        assert row["first_seen_at"] == row["last_seen_at"] == row["changed_at"]
    [run] = await store.runs()
    assert run == report


async def test_a_no_op_resync_rewrites_nothing_and_only_moves_last_seen_at(
    store: SyncStore,
    sandbox: Sandbox,
    yeastar: YeastarPartnerClient,
) -> None:
    await sync_orders(store, yeastar, page_size=10)
    before = await rows(store, "orders")
    report = await sync_orders(store, yeastar, page_size=10)
    assert counts(report) == (45, 0, 0, 45, 0)
    after = await rows(store, "orders")
    for key, row in after.items():
        assert {c: row[c] for c in BOOKKEEPING} == {c: before[key][c] for c in BOOKKEEPING}
        assert row["last_seen_at"] > before[key]["last_seen_at"]
        assert row["last_seen_at"] >= report.started_at


async def test_adds_changes_and_removals_are_counted_and_marked(
    store: SyncStore,
    sandbox: Sandbox,
    yeastar: YeastarPartnerClient,
) -> None:
    await sync_orders(store, yeastar, page_size=10)
    before = await rows(store, "orders")
    added = sandbox.orders.add(2)
    keys = list(before)
    changed_key, removed_key = keys[3], keys[20]
    sandbox.orders.change(changed_key, total_amount=Decimal("0.10"))
    sandbox.orders.remove(removed_key)
    report = await sync_orders(store, yeastar, page_size=10)
    assert counts(report) == (46, 2, 1, 43, 1)
    after = await rows(store, "orders")
    assert {record["id"] for record in added} <= after.keys()
    assert after[removed_key]["gone_at"] is not None
    assert after[removed_key]["last_seen_at"] == before[removed_key]["last_seen_at"]
    changed = after[changed_key]
    assert str(changed["total_amount"]) == "0.10"
    assert changed["changed_at"] > before[changed_key]["changed_at"]
    assert changed["first_seen_at"] == before[changed_key]["first_seen_at"]
    assert changed["content_hash"] != before[changed_key]["content_hash"]
    # a gone record that comes back clears gone_at (and counts as new)
    sandbox.orders.add(1, id=removed_key)
    report = await sync_orders(store, yeastar, page_size=10)
    assert (report.new, report.gone) == (1, 0)
    assert (await rows(store, "orders"))[removed_key]["gone_at"] is None


async def test_a_failed_run_keeps_what_it_read_and_marks_nothing_gone(
    store: SyncStore,
    sandbox: Sandbox,
    yeastar: YeastarPartnerClient,
) -> None:
    await sync_orders(store, yeastar, page_size=10)
    removed = sandbox.orders.remove(sandbox.orders[0]["id"])["id"]
    changed = sandbox.orders[30]["id"]
    sandbox.orders.change(changed, total_amount=Decimal("7.77"))
    served: list[int] = []

    async def fail_page_4(request: Any) -> Any:
        if request.path.endswith("/order/v1/page") and request.query.get("pageNo") == "4":
            from aiohttp import web

            return web.json_response(
                {"code": "parameter_validation_failed", "detailMessage": "no"}, status=400
            )
        served.append(1)
        return None

    sandbox.intercept = fail_page_4
    with pytest.raises(Exception, match="no"):
        await sync_orders(store, yeastar, page_size=10)
    [failed, _first] = await store.runs()
    assert failed.status == "failed"
    assert failed.error is not None
    assert "no" in failed.error
    assert failed.finished_at is not None
    assert failed.gone == 0
    stored = await rows(store, "orders")
    assert stored[removed]["gone_at"] is None  # a failed run marks nothing gone
    # the pages that arrived before the error were written, one transaction each
    assert failed.seen % 10 == 0
    assert 0 < failed.seen < 45
    assert failed.started_at is not None
    touched = [row for row in stored.values() if row["last_seen_at"] >= failed.started_at]
    assert len(touched) == failed.seen
    sandbox.intercept = None
    report = await sync_orders(store, yeastar, page_size=10)
    assert report.status == "complete"
    assert report.gone == 1
    assert str((await rows(store, "orders"))[changed]["total_amount"]) == "7.77"


async def test_a_run_cancelled_midway_is_recorded_failed_and_the_next_completes(
    store: SyncStore,
    sandbox: Sandbox,
    yeastar: YeastarPartnerClient,
) -> None:
    await sync_orders(store, yeastar, page_size=5)
    sandbox.orders.remove(sandbox.orders[44]["id"])
    pages_written = asyncio.Event()

    def progress(report: SyncReport) -> None:
        if report.seen >= 10:
            pages_written.set()

    sandbox.config.latency = 0.02
    task = asyncio.ensure_future(sync_orders(store, yeastar, page_size=5, progress=progress))
    await pages_written.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    [cancelled, _] = await store.runs()
    assert (cancelled.status, cancelled.gone) == ("failed", 0)
    assert cancelled.error == "CancelledError"
    assert sum(row["gone_at"] is not None for row in (await rows(store, "orders")).values()) == 0
    sandbox.config.latency = 0.0
    report = await sync_orders(store, yeastar, page_size=5)
    assert (report.status, report.gone) == ("complete", 1)


async def test_a_run_cancelled_in_a_batch_transaction_counts_only_what_was_committed(
    store: SyncStore,
) -> None:
    """Ctrl-C can land while a batch's transaction is open: the batch rolls back, and the
    failed run keeps the counts of the batches that were committed."""
    first_written = asyncio.Event()

    async def batches() -> AsyncIterator[tuple[dict[str, object], list[Order]]]:
        yield {}, [Order(id=str(n)) for n in range(5)]
        await first_written.wait()
        yield {}, [Order(id=str(n)) for n in range(5, 10)]

    def cancel_the_commit(*args: object) -> None:
        raise asyncio.CancelledError  # as the cancellation of Ctrl-C would, at this await

    def progress(report: SyncReport) -> None:  # the first batch is committed
        sa.event.listen(store.engine.sync_engine, "commit", cancel_the_commit, once=True)
        first_written.set()

    with pytest.raises(asyncio.CancelledError):
        await sync_batches(store, "orders", batches(), progress=progress)
    [failed] = await store.runs()
    assert (failed.status, failed.error) == ("failed", "CancelledError")
    assert counts(failed) == (5, 5, 0, 0, 0)
    assert sorted(await rows(store, "orders")) == [str(n) for n in range(5)]


async def test_a_run_left_running_by_a_dead_process_is_marked_failed_by_the_next(
    store: SyncStore,
    sandbox: Sandbox,
    yeastar: YeastarPartnerClient,
) -> None:
    from yeastar_csss_async.sync._tables import RUNS

    async with store.engine.begin() as connection:  # what a killed process leaves behind
        await connection.execute(
            sa.insert(RUNS).values(
                account="default", list="orders", started_at=datetime.now(UTC), status="running"
            )
        )
    report = await sync_orders(store, yeastar)
    runs = await store.runs()
    assert [run.status for run in runs] == ["complete", "failed"]
    assert runs[1].error is not None
    assert "interrupted" in runs[1].error
    assert report.run_id == runs[0].run_id


async def test_a_second_sync_of_the_same_account_and_list_is_refused(
    store: SyncStore,
    sandbox: Sandbox,
    yeastar: YeastarPartnerClient,
    db_url: str,
) -> None:
    release = asyncio.Event()
    first_page = asyncio.Event()

    async def slow_batches() -> AsyncIterator[tuple[dict[str, object], list[Order]]]:
        yield {}, [Order(id="1")]
        first_page.set()
        await release.wait()

    first = asyncio.ensure_future(sync_batches(store, "orders", slow_batches()))
    await first_page.wait()
    with pytest.raises(SyncLockedError, match="another sync of orders for account 'default'"):
        await sync_orders(store, yeastar)
    async with SyncStore(db_url) as other:  # another store (connection pool) alike
        with pytest.raises(SyncLockedError):
            await sync_orders(other, yeastar)
        # another account, or another list, is not held up
        assert (await sync_orders(other, yeastar, account="other")).status == "complete"
        products = await sync_products(other, yeastar, [13])
        assert products.status == "complete"
    release.set()
    assert (await first).status == "complete"
    assert (await sync_orders(store, yeastar)).status == "complete"  # the lock is free again
    statuses = [run.status for run in await store.runs(account="default", list_name="orders")]
    assert statuses == ["complete", "complete"]  # the refused ones left no run behind


async def test_money_digits_and_times_round_trip_exactly(store: SyncStore) -> None:
    amounts = ["130.00", "0.10", "12345678901234567890.123456789", "1E+3", "-0.5", "7"]
    created = [
        datetime(2023, 3, 28, 18, 57, 45, 777000, UTC),
        datetime(1999, 12, 31, 23, 59, 59, 999999, UTC),
        datetime(2099, 1, 1, tzinfo=UTC),
        datetime(1, 1, 1, tzinfo=UTC),
        datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC),
        datetime(2024, 2, 29, tzinfo=UTC),
    ]
    orders = [
        Order(id=str(i), total_amount=Decimal(text), create_time=when)
        for i, (text, when) in enumerate(zip(amounts, created, strict=True))
    ]

    async def batches() -> AsyncIterator[tuple[dict[str, object], list[Order]]]:
        yield {}, orders

    await sync_batches(store, "orders", batches())
    stored = await rows(store, "orders")
    for order in orders:
        row = stored[order.id]
        assert row["total_amount"] == order.total_amount
        if "E" not in str(order.total_amount):  # PostgreSQL writes 1E+3 as 1000
            assert str(row["total_amount"]) == str(order.total_amount)
        assert row["create_time"] == order.create_time
        assert row["create_time"].tzinfo is not None
        assert row["payload"]["total_amount"] == str(order.total_amount)


async def test_products_are_keyed_by_line_and_a_one_line_run_marks_gone_only_there(
    store: SyncStore,
    sandbox: Sandbox,
    yeastar: YeastarPartnerClient,
) -> None:
    lines = sorted(sandbox.products)
    report = await sync_products(store, yeastar)
    assert counts(report) == (7 * len(lines), 7 * len(lines), 0, 0, 0)
    stored = await rows(store, "products")
    assert {row["product_id"] for row in stored.values()} == set(lines)
    gone_13 = sandbox.products[13].remove(sandbox.products[13][0]["productNo"])["productNo"]
    gone_other = sandbox.products[lines[0]].remove(sandbox.products[lines[0]][0]["productNo"])[
        "productNo"
    ]
    report = await sync_products(store, yeastar, [13])
    assert (report.seen, report.gone, report.scope) == (6, 1, "product_id=13")
    stored = await rows(store, "products")
    assert stored[gone_13]["gone_at"] is not None
    assert stored[gone_other]["gone_at"] is None  # line not read: nothing marked there
    report = await sync_products(store, yeastar)
    assert report.gone == 1
    services = next(row for row in stored.values() if row["service_list"])["service_list"]
    assert isinstance(services, list)
    assert isinstance(services[0], dict)


async def test_filtered_package_orders_mark_nothing_gone(
    store: SyncStore,
    sandbox: Sandbox,
    csss: CSSSClient,
) -> None:
    report = await sync_package_orders(store, csss)
    assert counts(report) == (23, 23, 0, 0, 0)
    status = sandbox.package_orders[0]["orderStatus"]
    report = await sync_package_orders(store, csss, order_status=status)
    assert report.gone == 0 < report.seen < 23
    assert report.scope == "partial"
    assert (
        sum(row["gone_at"] is not None for row in (await rows(store, "package_orders")).values())
        == 0
    )


async def test_a_database_of_a_newer_release_is_refused(db_url: str) -> None:
    async with SyncStore(db_url) as store, store.engine.begin() as connection:
        await connection.execute(sa.text("UPDATE yeastar_csss_schema SET version = 99"))
    with pytest.raises(SchemaVersionError, match=r"schema version 99 .* newer release"):
        async with SyncStore(db_url):
            pass


async def test_an_older_database_is_upgraded_in_place(
    db_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def one_order() -> AsyncIterator[tuple[dict[str, object], list[Order]]]:
        yield {}, [Order(id="42", total_amount=Decimal("1.00"))]

    async with SyncStore(db_url) as store:
        await sync_batches(store, "orders", one_order())
        assert await store.schema_version() == 1

    def add_note_column(connection: sa.Connection) -> None:
        connection.execute(sa.text("ALTER TABLE orders ADD COLUMN note TEXT"))

    monkeypatch.setattr(store_module, "SCHEMA_VERSION", 2)
    monkeypatch.setitem(store_module.MIGRATIONS, 2, add_note_column)
    async with SyncStore(db_url) as store:
        assert await store.schema_version() == 2
        async with store.engine.connect() as connection:
            row = (
                await connection.execute(sa.text("SELECT id, total_amount, note FROM orders"))
            ).one()
        assert (row[0], str(row[1]), row[2]) == ("42", "1.00", None)
    async with SyncStore(db_url) as store:  # upgraded once: opening again changes nothing
        assert await store.schema_version() == 2


async def test_tables_of_something_else_are_not_touched(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'theirs.db'}"
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        connection.execute(sa.text("CREATE TABLE orders (x INTEGER)"))
    engine.dispose()
    with pytest.raises(SyncError, match="not a database of this library"):
        async with SyncStore(url):
            pass


async def test_bad_urls_and_unusable_databases_are_one_line_sync_errors(
    tmp_path: Path,
) -> None:
    for url, expected in [
        ("mysql://u:p@h/db", "unsupported database 'mysql'"),
        ("not a url", "not a database URL"),
        (f"sqlite:///{tmp_path}/missing/x.db", "no such directory"),
    ]:
        with pytest.raises(SyncError, match=expected) as caught:
            async with SyncStore(url):
                pass
        assert "\n" not in str(caught.value)
    read_only = tmp_path / "ro.db"
    async with SyncStore(f"sqlite:///{read_only}"):
        pass
    # opened read-only (SQLite's URI form: the tests run as root, which file modes don't stop)
    async with SyncStore(f"sqlite:///file:{read_only}?mode=ro&uri=true") as store:
        with pytest.raises(SyncError, match="readonly database") as caught:
            await sync_batches(store, "orders", _one_batch())
        assert "\n" not in str(caught.value)
        assert [run.status for run in await store.runs()] == []  # nothing was written


async def _one_batch() -> AsyncIterator[tuple[dict[str, object], list[Order]]]:
    yield {}, [Order(id="1")]


async def test_a_wrong_password_or_an_unreachable_server_is_a_sync_error_without_secrets(
    postgres_server: Any,
) -> None:
    wrong = (
        f"postgresql://{postgres_server.user}:not-the-password-xyz@127.0.0.1:"
        f"{postgres_server.port}/{postgres_server.database}"
    )
    with pytest.raises(SyncError, match="password authentication failed") as caught:
        async with SyncStore(wrong):
            pass
    assert "not-the-password-xyz" not in str(caught.value)
    assert "***" in str(caught.value)  # the URL is named, its password hidden
    assert caught.value.__cause__ is None
    assert caught.value.__context__ is None
    with socket_closed_port() as port, pytest.raises(SyncError, match=r"127\.0\.0\.1") as caught:
        async with SyncStore(f"postgresql://u:secret-pw@127.0.0.1:{port}/db"):
            pass
    assert "secret-pw" not in str(caught.value)


class socket_closed_port:
    """A port on 127.0.0.1 that nothing listens on (bound, then closed)."""

    def __enter__(self) -> int:
        import socket

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            return int(sock.getsockname()[1])

    def __exit__(self, *exc: object) -> None:
        return None


async def test_text_no_database_can_hold_is_stored_with_a_replacement_character(
    store: SyncStore,
) -> None:
    """A hostile server can send a NUL (PostgreSQL text cannot hold it) or an escaped lone
    surrogate (not UTF-8 at all); the run completes, and a re-sync sees nothing changed."""
    orders = [
        Order(id="1", order_no="a\x00b"),
        Order(id="2", order_no="c\ud800d"),
        Order(id="3\x00", product_name="fine"),
    ]

    async def batches() -> AsyncIterator[tuple[dict[str, object], list[Order]]]:
        yield {}, orders

    assert counts(await sync_batches(store, "orders", batches())) == (3, 3, 0, 0, 0)
    stored = await rows(store, "orders")
    assert stored["1"]["order_no"] == "a\ufffdb"
    assert stored["2"]["order_no"] == "c\ufffdd"
    assert stored["2"]["payload"]["order_no"] == "c\ufffdd"
    assert stored["3\ufffd"]["product_name"] == "fine"
    assert counts(await sync_batches(store, "orders", batches())) == (3, 0, 0, 3, 0)


async def test_processes_opening_a_new_sqlite_database_at_once_all_succeed(
    tmp_path: Path,
) -> None:
    """SQLite runs DDL outside a transaction: without the schema lock, two processes creating
    the tables of a new database at once fail with "table ... already exists"."""
    import sys

    url = f"sqlite:///{tmp_path / 'shared.db'}"
    script = (
        "import asyncio, sys\n"
        "from yeastar_csss_async.sync import SyncStore\n"
        "async def main():\n"
        "    async with SyncStore(sys.argv[1]) as store:\n"
        "        print(await store.schema_version())\n"
        "asyncio.run(main())\n"
    )
    processes = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            script,
            url,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        for _ in range(6)
    ]
    outcomes = [await asyncio.wait_for(process.communicate(), 120) for process in processes]
    for process, (out, err) in zip(processes, outcomes, strict=True):
        assert process.returncode == 0, err.decode()[-1000:]
        assert out.decode().strip() == "1"
