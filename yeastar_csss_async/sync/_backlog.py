"""Pages read ahead of the database: read in a task of their own, written in groups.

The database writer takes every page that has arrived and is waiting when it is ready for
more, up to ``max_records``, and writes them in one transaction. A page is never held back
to wait for others (with a fast database each transaction holds one page, as it arrives);
when the database is the slower side, the pages that queued up meanwhile share one
transaction, which saves the per-transaction work (begin, commit, bookkeeping) that would
otherwise dominate. The reading task is owned here: leaving the block cancels it and waits.
"""

from __future__ import annotations

import asyncio
import contextlib
import typing
from collections.abc import AsyncIterable, Mapping, Sequence
from types import TracebackType
from typing import Any

__all__ = ["Backlog", "Batch"]

Batch = tuple[Mapping[str, object], Sequence[Any]]
"""A page of records and the values of the list's scope columns for them (``{}`` for orders
and package orders, ``{"product_id": 13}`` for a page of products)."""

_END = object()


class Backlog:
    """``async with Backlog(batches) as backlog: while (group := await backlog.next_group())``.

    At most ``max_pages`` batches wait unread; :meth:`next_group` returns the batches that
    arrived (at least one, waiting for it), merged where consecutive ones share a scope, or
    None when ``batches`` is exhausted. An error while reading is raised from there.
    """

    def __init__(
        self, batches: AsyncIterable[Batch], *, max_records: int = 2000, max_pages: int = 64
    ) -> None:
        self._batches = batches
        self._queue: asyncio.Queue[object] = asyncio.Queue()  # bounded by _room
        self._room = asyncio.Semaphore(max_pages)
        self._max_records = max_records
        self._reader: asyncio.Task[None] | None = None
        self._done = False
        self._error: BaseException | None = None

    async def __aenter__(self) -> Backlog:
        self._reader = asyncio.ensure_future(self._read())
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        reader, self._reader = self._reader, None
        if reader is not None and not reader.done():
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
        elif reader is not None and not reader.cancelled():
            reader.exception()  # retrieved: an error was handed over already

    async def _read(self) -> None:
        batches = self._batches
        try:
            async for batch in batches:
                await self._room.acquire()
                self._queue.put_nowait(batch)
        except BaseException as error:  # handed to the writer, which raises it
            self._queue.put_nowait(error)
            if not isinstance(error, Exception):
                raise
            return
        finally:
            close = getattr(batches, "aclose", None)  # an async generator: close it here
            if close is not None:
                await close()
        self._queue.put_nowait(_END)

    async def next_group(self) -> list[Batch] | None:
        """The batches waiting now (at least one), merged by scope; None at the end."""
        if self._error is not None:
            error, self._error = self._error, None
            raise error
        if self._done:
            return None
        group: list[Batch] = []
        count = 0
        item = await self._queue.get()
        while True:
            if item is _END:
                self._done = True
                break
            if isinstance(item, BaseException):
                self._done = True
                if group:  # write what arrived before the error first
                    self._error = item
                    break
                raise item
            self._room.release()
            scope, records = typing.cast(Batch, item)
            if group and group[-1][0] == scope:
                group[-1] = (scope, [*group[-1][1], *records])
            else:
                group.append((scope, records))
            count += len(records)
            if count >= self._max_records or self._queue.empty():
                break
            item = self._queue.get_nowait()
        return group or None
