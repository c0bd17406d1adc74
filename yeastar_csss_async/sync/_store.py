"""``SyncStore``: a database opened from a URL, its schema created or upgraded in place."""

from __future__ import annotations

import contextlib
import os
import urllib.parse
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, Self, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from .._redaction import shorten
from ._errors import SchemaVersionError, SyncError
from ._locks import schema_lock
from ._report import SyncReport
from ._tables import METADATA, RUNS, SCHEMA_INFO, TABLES

__all__ = ["DEFAULT_DATABASE", "SCHEMA_VERSION", "SyncStore", "open_store"]

T = TypeVar("T")

DEFAULT_DATABASE = "sqlite:///yeastar-csss.db"
"""The database the CLI uses without ``--db``: a file in the working directory."""

SCHEMA_VERSION = 1
"""The schema this release writes. A database at an older version is upgraded in place by
the steps in :data:`MIGRATIONS`; one at a newer version is refused."""


def _create_v1(connection: Connection) -> None:
    # Version 1 is the first schema: the tables as declared. A later version adds its own
    # step (ALTER TABLE ...), and then this step must keep creating the version 1 tables.
    METADATA.create_all(connection, tables=[*(t.table for t in TABLES.values()), RUNS])


MIGRATIONS: dict[int, Callable[[Connection], None]] = {1: _create_v1}
"""Step ``n`` turns a database at version ``n - 1`` into version ``n`` (0: empty)."""

_DRIVERS = {
    "sqlite": "sqlite+aiosqlite",
    "sqlite+aiosqlite": "sqlite+aiosqlite",
    "postgresql": "postgresql+asyncpg",
    "postgres": "postgresql+asyncpg",
    "postgresql+asyncpg": "postgresql+asyncpg",
}


def _parse(url: str) -> URL:
    try:
        parsed = make_url(url)
    except Exception:  # sqlalchemy's ArgumentError and ValueError alike
        raise SyncError(
            f"not a database URL: {url[:80]!r} (expected sqlite:///FILE or "
            "postgresql://USER:PASSWORD@HOST/DB)"
        ) from None
    driver = _DRIVERS.get(parsed.drivername)
    if driver is None:
        raise SyncError(
            f"unsupported database {parsed.drivername!r}: use sqlite:///FILE or "
            "postgresql://USER:PASSWORD@HOST/DB"
        )
    return parsed.set(drivername=driver)


class SyncStore:
    """A database that lists are synced into (SQLite or PostgreSQL).

    ``async with SyncStore(url) as store:`` (or :func:`open_store`) connects, creates the
    tables in an empty database or upgrades an older one in place, and refuses one written
    by a newer release (:class:`SchemaVersionError`). Every database problem is a
    :class:`SyncError` naming the database with its password hidden. Sync with
    :func:`~yeastar_csss_async.sync.sync_orders` and its siblings, or :meth:`sync`.
    """

    def __init__(self, url: str = DEFAULT_DATABASE) -> None:
        self._url = _parse(url)
        display = self._url.set(drivername=self._url.get_backend_name()).render_as_string(
            hide_password=True
        )
        if self.dialect == "sqlite":  # a file as written (file:/x.db, not file%3A/x.db)
            display = urllib.parse.unquote(display)
        self.display_url = display
        """The URL without its password, for messages."""
        self._engine: AsyncEngine | None = None
        database = self._url.database or ""
        if database.startswith("file:"):  # SQLite's URI form (with ?uri=true)
            database = database.removeprefix("file:").split("?")[0]
            database = (
                ""
                if database == ":memory:" or "memory" in self._url.query.get("mode", "")
                else database
            )
        self.sqlite_path = (
            os.path.abspath(database)
            if self.dialect == "sqlite" and database and database != ":memory:"
            else None
        )
        """The SQLite file (absolute), None for PostgreSQL or an in-memory database."""

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self._url.get_backend_name()

    @property
    def engine(self) -> AsyncEngine:
        """The SQLAlchemy engine (after :meth:`open`)."""
        if self._engine is None:
            raise RuntimeError("the store is not open: use `async with SyncStore(url)`")
        return self._engine

    def __repr__(self) -> str:
        return f"SyncStore({self.display_url!r})"

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def open(self) -> None:
        """Connect, then create or upgrade the schema."""
        if self._engine is not None:
            return
        folder = os.path.dirname(self.sqlite_path) if self.sqlite_path is not None else None
        if folder is not None and not os.path.isdir(folder):  # noqa: ASYNC240 - one stat
            raise SyncError(f"{self.display_url}: no such directory {folder}")
        try:
            engine = create_async_engine(self._url, connect_args=self._connect_args())
        except ImportError as error:  # the driver (aiosqlite, asyncpg) is not installed
            raise ImportError(
                f"{self.dialect} databases need {error.name or 'their driver'}, "
                "part of the [sync] extra: "
                "pip install 'yeastar-csss-async[sync]'"
            ) from error
        if self.dialect == "sqlite":
            sa.event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        self._engine = engine
        try:
            await self.guard(self._upgrade())
        except BaseException:
            self._engine = None
            await engine.dispose()
            raise

    def _connect_args(self) -> dict[str, Any]:
        if self.dialect == "postgresql":
            return {"timeout": 10}
        return {"timeout": 30}

    async def aclose(self) -> None:
        """Close every connection."""
        engine, self._engine = self._engine, None
        if engine is not None:
            await engine.dispose()

    async def guard(self, step: Awaitable[T]) -> T:
        """Await a database step; a database error becomes a one-line :class:`SyncError`."""
        try:
            return await step
        except SyncError:
            raise
        except (sa.exc.SQLAlchemyError, OSError) as error:
            reason = self._reason(error)
        raise SyncError(f"{self.display_url}: {reason}")  # outside the handler: no chain

    def _reason(self, error: BaseException) -> str:
        cause = getattr(error, "orig", None) or error
        text = str(cause).strip().splitlines()[0] if str(cause).strip() else ""
        password = self._url.password
        if password:
            text = text.replace(str(password), "***")
        return shorten(f"{type(cause).__name__}: {text}" if text else type(cause).__name__, 300)

    async def _upgrade(self) -> None:
        async with self.engine.connect() as connection:
            if await connection.run_sync(self._is_current):
                return
        # One upgrader at a time: a lock beside the SQLite file, an advisory lock in
        # PostgreSQL; the schema is read again once it is held.
        async with contextlib.AsyncExitStack() as stack:
            if self.sqlite_path is not None:
                await stack.enter_async_context(schema_lock(self.sqlite_path))
            connection = await stack.enter_async_context(self.engine.begin())
            if self.dialect == "postgresql":
                await connection.execute(sa.select(sa.func.pg_advisory_xact_lock(0x59435353)))
            await connection.run_sync(self._upgrade_schema)

    def _is_current(self, connection: Connection) -> bool:
        """Whether the schema is this release's (nothing to create or upgrade)."""
        if not sa.inspect(connection).has_table(SCHEMA_INFO.name):
            return False
        version = connection.execute(sa.select(SCHEMA_INFO.c.version)).scalar() or 0
        self._refuse_newer(version)
        return bool(version == SCHEMA_VERSION)

    def _refuse_newer(self, version: int) -> None:
        if version > SCHEMA_VERSION:
            raise SchemaVersionError(
                f"{self.display_url}: schema version {version} was written by a newer release "
                f"of yeastar-csss-async (this one knows up to {SCHEMA_VERSION}); upgrade "
                "yeastar-csss-async to use it"
            )

    def _upgrade_schema(self, connection: Connection) -> None:
        inspector = sa.inspect(connection)
        if inspector.has_table(SCHEMA_INFO.name):
            version = connection.execute(sa.select(SCHEMA_INFO.c.version)).scalar() or 0
        else:
            foreign = [t.table.name for t in TABLES.values() if inspector.has_table(t.table.name)]
            foreign += [RUNS.name] if inspector.has_table(RUNS.name) else []
            if foreign:
                raise SyncError(
                    f"{self.display_url}: has tables {', '.join(foreign)} but no "
                    f"{SCHEMA_INFO.name}: not a database of this library"
                )
            SCHEMA_INFO.create(connection)
            version = 0
        self._refuse_newer(version)
        for step in range(version + 1, SCHEMA_VERSION + 1):
            MIGRATIONS[step](connection)
        if version == 0:
            connection.execute(sa.insert(SCHEMA_INFO).values(id=1, version=SCHEMA_VERSION))
        elif version < SCHEMA_VERSION:
            connection.execute(sa.update(SCHEMA_INFO).values(version=SCHEMA_VERSION))

    async def schema_version(self) -> int:
        """The schema version stored in the database."""
        async with self.engine.connect() as connection:
            return int(await self.guard(connection.scalar(sa.select(SCHEMA_INFO.c.version))) or 0)

    async def runs(
        self, *, account: str | None = None, list_name: str | None = None, limit: int = 50
    ) -> list[SyncReport]:
        """The newest runs first (all accounts and lists unless narrowed)."""
        query = sa.select(RUNS).order_by(RUNS.c.id.desc()).limit(limit)
        if account is not None:
            query = query.where(RUNS.c.account == account)
        if list_name is not None:
            query = query.where(RUNS.c.list == list_name)
        async with self.engine.connect() as connection:
            rows = (await self.guard(connection.execute(query))).mappings().all()
        return [report_from_row(row) for row in rows]


def open_store(url: str = DEFAULT_DATABASE) -> SyncStore:
    """``async with open_store("sqlite:///yeastar-csss.db") as store:`` — a :class:`SyncStore`."""
    return SyncStore(url)


def report_from_row(row: Any) -> SyncReport:
    """A :class:`SyncReport` from a ``sync_runs`` row."""
    return SyncReport(
        run_id=row["id"],
        account=row["account"],
        list=row["list"],
        status=row["status"],
        seen=row["seen"],
        new=row["new"],
        changed=row["changed"],
        unchanged=row["unchanged"],
        gone=row["gone"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        scope=row["scope"],
        error=row["error"],
    )


def _sqlite_pragmas(dbapi_connection: Any, record: Any) -> None:
    """WAL: a page's commit appends to the log instead of syncing the database file (a crash
    of the process loses nothing committed; readers never wait for the writer)."""
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA busy_timeout = 30000")
        with contextlib.suppress(Exception):  # a read-only database: writing will say so
            cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
    finally:
        cursor.close()
