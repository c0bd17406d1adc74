"""One sync per account and list at a time, across processes.

PostgreSQL: a session advisory lock (``pg_try_advisory_lock``) held on a connection of its
own for the whole run. SQLite: an exclusive byte-range lock (Linux open-file-description
lock, ``F_OFD_SETLK``) on a ``.sync-lock`` file beside the database, one byte per account and
list. Both are released by the operating system or the server when the process dies, so a
run left ``running`` by a dead process is recognised: its lock is free.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import os
import struct
import threading
from collections.abc import AsyncIterator, Iterator

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from ._errors import SyncError, SyncLockedError

__all__ = ["lock_key", "schema_lock", "sync_lock"]

_HELD: set[tuple[str, int]] = set()
"""Locks this process holds (database, key): refused before the operating system is asked,
so that two tasks of one process exclude each other wherever the lock is a process lock."""
_HELD_GUARD = threading.Lock()


def lock_key(account: str, list_name: str) -> int:
    """A signed 64-bit number for (account, list), the same in every process."""
    digest = hashlib.sha256(f"{account}\0{list_name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


@contextlib.asynccontextmanager
async def sync_lock(
    engine: AsyncEngine, database: str, sqlite_path: str | None, account: str, list_name: str
) -> AsyncIterator[None]:
    """Hold the lock of (account, list) for the block, or raise :class:`SyncLockedError`."""
    key = lock_key(account, list_name)
    with _process_lock(database, key, account, list_name):
        if engine.dialect.name == "postgresql":
            async with _advisory_lock(engine, key, account, list_name):
                yield
        elif sqlite_path is not None:
            with _file_lock(sqlite_path, key, account, list_name):
                yield
        else:  # an in-memory database lives in this process only
            yield


def _busy(account: str, list_name: str) -> SyncLockedError:
    return SyncLockedError(
        f"another sync of {list_name} for account {account!r} is running; "
        "try again when it has finished"
    )


@contextlib.contextmanager
def _process_lock(database: str, key: int, account: str, list_name: str) -> Iterator[None]:
    token = (database, key)
    with _HELD_GUARD:
        if token in _HELD:
            raise _busy(account, list_name)
        _HELD.add(token)
    try:
        yield
    finally:
        with _HELD_GUARD:
            _HELD.discard(token)


@contextlib.asynccontextmanager
async def _advisory_lock(
    engine: AsyncEngine, key: int, account: str, list_name: str
) -> AsyncIterator[None]:
    async with engine.connect() as connection:
        got = (await connection.execute(sa.select(sa.func.pg_try_advisory_lock(key)))).scalar()
        await connection.commit()
        if not got:
            raise _busy(account, list_name)
        try:
            yield
        finally:
            with contextlib.suppress(Exception):  # a lost connection released it already
                await connection.execute(sa.select(sa.func.pg_advisory_unlock(key)))
                await connection.commit()


_F_OFD_SETLK = getattr(fcntl, "F_OFD_SETLK", None)


def _open_lock_file(sqlite_path: str) -> int:
    """The descriptor of ``<database>.sync-lock`` (created if missing)."""
    path = sqlite_path + ".sync-lock"
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as error:
        raise SyncError(f"cannot create the lock file {path}: {error.strerror or error}") from None


@contextlib.contextmanager
def _file_lock(sqlite_path: str, key: int, account: str, list_name: str) -> Iterator[None]:
    fd = _open_lock_file(sqlite_path)
    try:
        offset = 1 + (key & 0x7FFF_FFFF_FFFE)  # a byte in a sparse range (0: the schema's)
        if _F_OFD_SETLK is not None:
            request = struct.pack("hhxxxxqqixxxx", fcntl.F_WRLCK, os.SEEK_SET, offset, 1, 0)
            try:
                fcntl.fcntl(fd, _F_OFD_SETLK, request)
            except OSError:
                raise _busy(account, list_name) from None
        else:  # no open-file-description locks: a process lock (the set above covers tasks)
            try:
                fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, offset)
            except OSError:
                raise _busy(account, list_name) from None
        yield
    finally:
        os.close(fd)  # releases the lock


@contextlib.asynccontextmanager
async def schema_lock(sqlite_path: str) -> AsyncIterator[None]:
    """Hold byte 0 of the SQLite file's ``.sync-lock`` while the schema is created or
    upgraded, waiting for another process doing the same (SQLite runs DDL outside a
    transaction, so two processes opening a new database at once would both create it)."""
    fd = _open_lock_file(sqlite_path)
    try:
        if _F_OFD_SETLK is not None:
            request = struct.pack("hhxxxxqqixxxx", fcntl.F_WRLCK, os.SEEK_SET, 0, 1, 0)
            await asyncio.to_thread(fcntl.fcntl, fd, fcntl.F_OFD_SETLKW, request)
        else:
            await asyncio.to_thread(fcntl.lockf, fd, fcntl.LOCK_EX, 1, 0)
        yield
    finally:
        os.close(fd)
