"""The throwaway PostgreSQL server of the tests (tests/_support/postgres_server.py) is real and
isolates tests.

These protect the fixtures the sync layer's tests rely on: a real PostgreSQL 15 over TCP with
real password authentication, SQLAlchemy async + asyncpg URLs that work, and one fresh
database per test.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator

import pytest

from tests._support.postgres_server import PostgresServer, skip_or_fail

try:
    import asyncpg
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError
    from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
except ImportError as exc:  # the [sync] extra is absent
    skip_or_fail(f"the [sync] extra (sqlalchemy, asyncpg) is not installed: {exc}")


@pytest.fixture
async def engine(postgres_url: str) -> AsyncIterator[AsyncEngine]:
    """An async engine of the test's own fresh database, disposed after the test."""
    eng = create_async_engine(postgres_url)
    try:
        yield eng
    finally:
        await eng.dispose()


async def test_server_is_postgresql_15_reached_through_sqlalchemy_asyncpg(
    postgres_server: PostgresServer,
) -> None:
    eng = create_async_engine(postgres_server.sqlalchemy_url)
    try:
        async with eng.connect() as conn:
            version = (await conn.execute(text("select version()"))).scalar_one()
            user, database = (
                await conn.execute(text("select current_user, current_database()"))
            ).one()
    finally:
        await eng.dispose()
    assert re.match(r"PostgreSQL 15\.\d+", version), version
    assert (user, database) == (postgres_server.user, postgres_server.database)
    assert postgres_server.version.split("(PostgreSQL) ")[1].split()[0] in version
    assert postgres_server.startup_seconds > 0


async def test_plain_dsn_connects_with_asyncpg(postgres_server: PostgresServer) -> None:
    assert postgres_server.dsn.startswith("postgresql://")
    conn = await asyncpg.connect(postgres_server.dsn)
    try:
        assert await conn.fetchval("select 1") == 1
    finally:
        await conn.close()


async def test_wrong_password_is_refused(postgres_server: PostgresServer) -> None:
    with pytest.raises(asyncpg.InvalidPasswordError):
        await asyncpg.connect(
            host=postgres_server.host,
            port=postgres_server.port,
            user=postgres_server.user,
            password="not-the-password",
            database=postgres_server.database,
        )


async def test_wrong_password_is_refused_through_sqlalchemy(
    postgres_server: PostgresServer,
) -> None:
    url = postgres_server.sqlalchemy_url.replace(
        f":{postgres_server.password}@", ":not-the-password@"
    )
    eng = create_async_engine(url)
    try:
        with pytest.raises(DBAPIError) as caught:
            async with eng.connect():
                pass
    finally:
        await eng.dispose()
    chain: list[BaseException] = []
    err: BaseException | None = caught.value
    while err is not None and len(chain) < 10:
        chain.append(err)
        err = err.__cause__ or getattr(err, "orig", None)
    assert any(isinstance(e, asyncpg.InvalidPasswordError) for e in chain), chain


async def test_postgres_url_is_a_fresh_empty_database_of_its_own(
    postgres_server: PostgresServer,
    postgres_url: str,
    engine: AsyncEngine,
) -> None:
    name = postgres_url.rsplit("/", 1)[1]
    assert re.fullmatch(r"test_[0-9a-f]{32}", name)
    async with engine.begin() as conn:
        tables = (
            await conn.execute(
                text("select count(*) from information_schema.tables where table_schema = 'public'")
            )
        ).scalar_one()
        assert tables == 0
        await conn.execute(text("create table seen (id int primary key)"))
        await conn.execute(text("insert into seen values (1)"))

    with postgres_server.temporary_database() as other:
        other_engine = create_async_engine(postgres_server.sqlalchemy_url_for(other))
        try:
            async with other_engine.connect() as conn:
                visible = (
                    await conn.execute(text("select to_regclass('public.seen')"))
                ).scalar_one()
        finally:
            await other_engine.dispose()
    assert visible is None


async def test_temporary_database_is_dropped_afterwards_even_with_a_connection_open(
    postgres_server: PostgresServer,
) -> None:
    def exists(name: str) -> bool:
        return (
            postgres_server.psql(
                f"select count(*) from pg_database where datname = '{name}'"
            ).strip()
            == "1"
        )

    async with contextlib.AsyncExitStack() as stack:
        with postgres_server.temporary_database() as name:
            conn = await asyncpg.connect(postgres_server.dsn_for(name))
            stack.push_async_callback(conn.close)
            assert await conn.fetchval("select current_database()") == name
            assert exists(name)
        # dropped on leaving the block, although a connection was still open (FORCE)
        assert not exists(name)
