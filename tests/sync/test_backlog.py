"""The sync's read-ahead: pages read in their own task, written in groups of what arrived."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from yeastar_csss_async.sync._backlog import Backlog, Batch


async def test_a_page_is_handed_over_alone_when_nothing_else_waits() -> None:
    release = asyncio.Event()

    async def pages() -> AsyncIterator[Batch]:
        yield {}, [1, 2]
        await release.wait()
        yield {}, [3]

    async with Backlog(pages()) as backlog:
        assert await backlog.next_group() == [({}, [1, 2])]  # not held back for page 2
        release.set()
        assert await backlog.next_group() == [({}, [3])]
        assert await backlog.next_group() is None
        assert await backlog.next_group() is None


async def test_pages_that_queued_up_share_one_group_merged_by_scope() -> None:
    async def pages() -> AsyncIterator[Batch]:
        for scope, items in [({"p": 1}, [1]), ({"p": 1}, [2]), ({"p": 2}, [3]), ({"p": 1}, [4])]:
            yield scope, items

    async with Backlog(pages()) as backlog:
        await asyncio.sleep(0)  # let the reader run ahead: everything is waiting now
        await asyncio.sleep(0)
        group = await backlog.next_group()
        assert group == [({"p": 1}, [1, 2]), ({"p": 2}, [3]), ({"p": 1}, [4])]
        assert await backlog.next_group() is None


async def test_a_group_stops_at_max_records() -> None:
    async def pages() -> AsyncIterator[Batch]:
        for n in range(5):
            yield {}, [n] * 10

    async with Backlog(pages(), max_records=25) as backlog:
        for _ in range(3):
            await asyncio.sleep(0)
        sizes = []
        while (group := await backlog.next_group()) is not None:
            sizes.append(sum(len(records) for _, records in group))
        assert sizes[0] == 30  # whole pages: the page that passes the bound ends the group
        assert sum(sizes) == 50


async def test_pages_read_before_an_error_are_handed_over_before_it() -> None:
    async def pages() -> AsyncIterator[Batch]:
        yield {}, [1]
        yield {}, [2]
        raise LookupError("page 3 failed")

    async with Backlog(pages()) as backlog:
        for _ in range(3):
            await asyncio.sleep(0)
        assert await backlog.next_group() == [({}, [1, 2])]
        with pytest.raises(LookupError, match="page 3 failed"):
            await backlog.next_group()


async def test_leaving_early_cancels_the_reader_and_closes_the_pages() -> None:
    closed = asyncio.Event()
    started = asyncio.Event()

    async def pages() -> AsyncIterator[Batch]:
        try:
            yield {}, [1]
            started.set()
            await asyncio.Event().wait()  # a fetch that never ends
            yield {}, [2]
        finally:
            closed.set()

    async with Backlog(pages()) as backlog:
        assert await backlog.next_group() == [({}, [1])]
        await started.wait()
    assert closed.is_set()
    assert [t for t in asyncio.all_tasks() if t is not asyncio.current_task()] == []


async def test_the_reader_waits_while_max_pages_are_unread() -> None:
    produced: list[int] = []

    async def pages() -> AsyncIterator[Batch]:
        for n in range(10):
            produced.append(n)
            yield {}, [n]

    async with Backlog(pages(), max_pages=3) as backlog:
        for _ in range(10):
            await asyncio.sleep(0)
        assert len(produced) == 4  # three waiting, the fourth held until there is room
        group = await backlog.next_group()
        assert group is not None
        assert [records for _, records in group] == [[0, 1, 2]]
