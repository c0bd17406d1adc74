"""PageFetcher (``_fetcher``): the fetch tasks of one iteration. At most ``max_ahead`` fetches
in flight and ``read_ahead`` records ahead of the consumer (pages in flight counting as full),
no more than a limit still wants; pages handed over in page order or as they land; the first
error kept and every other fetch cancelled; "no such page" past every reported end is the end.

First through a PageIterator over an in-memory list, then driven directly with fetches that
land when the test says."""

from __future__ import annotations

import asyncio

import pytest

from yeastar_csss_async import APIError, Page

from tests._support.paged_list import FakeList, collect, iterate


async def test_ordered_yields_in_page_order_whatever_order_pages_land() -> None:
    fake = FakeList(100, page_size=10)
    fake.delay = lambda page_no: 0.03 if page_no % 2 else 0.0  # odd pages land late
    records = await collect(iterate(fake, ordered=True))
    assert records == [f"r{i}" for i in range(100)]


async def test_unordered_yields_pages_as_they_land() -> None:
    fake = FakeList(60, page_size=10)
    fake.delay = lambda page_no: {2: 0.08}.get(page_no, 0.0)  # page 2 is slow
    records = await collect(iterate(fake, ordered=False))
    assert sorted(records) == sorted(f"r{i}" for i in range(60))
    assert records[-10:] == [f"r{i}" for i in range(10, 20)]  # page 2 came last


async def test_pages_in_flight_never_exceed_the_read_ahead_window() -> None:
    fake = FakeList(500, page_size=10)
    fake.delay = lambda page_no: 0.002
    iterator = iterate(fake, max_ahead=4)
    seen = 0
    async for _ in iterator:
        seen += 1
        if seen % 10 == 0:
            await asyncio.sleep(0.004)  # a slow consumer
    assert seen == 500
    assert fake.peak <= 4


async def test_a_stalled_page_in_order_does_not_idle_the_others_until_the_budget() -> None:
    """Page 2 waits (a retry backoff, say): with 4 fetches in flight at most and a budget of
    200 records, pages 3.. go on landing until the records ahead (landed, plus 10 for each
    fetch in flight) reach 200; a window of pages would have stopped at 4 pages past the
    consumer."""
    fake = FakeList(1000, page_size=10)
    release = asyncio.Event()

    async def slow_page_two(page_no: int) -> Page[str]:
        if page_no == 2:
            await release.wait()
        return await fetch(page_no)

    fetch, fake.fetch = fake.fetch, slow_page_two  # type: ignore[method-assign]
    iterator = iterate(fake, max_ahead=4, read_ahead=200)
    first = [await iterator.__anext__() for _ in range(10)]  # page 1, then wait on page 2
    waiting = asyncio.create_task(iterator.__anext__())
    for _ in range(100):
        await asyncio.sleep(0)
    landed = len(fake.calls) - 2  # pages past the stalled one
    assert fake.peak <= 4
    assert landed >= 200 // 10 - 4  # kept going: every fetch in flight counts as 10 records
    assert landed <= 200 // 10  # and stopped at the budget
    release.set()
    rest = [await waiting, *[r async for r in iterator]]
    assert first + rest == fake.records


async def test_read_ahead_stops_when_the_consumer_stops_reading() -> None:
    fake = FakeList(1000, page_size=10)
    iterator = iterate(fake, max_ahead=3)
    await iterator.__anext__()
    await asyncio.sleep(0.05)  # the consumer holds still
    assert len(fake.calls) <= 1 + 3
    await iterator.aclose()


async def test_first_error_surfaces_fast_and_cancels_the_other_fetches() -> None:
    fake = FakeList(1000, page_size=10)
    fake.delay = lambda page_no: 0.0 if page_no in (1, 3) else 5.0  # others hang
    fake.fail[3] = APIError("forbidden", status=403, code="permission_denied")
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(APIError) as caught:
        await collect(iterate(fake))
    assert caught.value.code == "permission_denied"
    assert loop.time() - started < 2.0
    assert fake.in_flight == 0  # every other fetch was cancelled and is gone


async def test_an_error_on_a_page_past_everything_reported_ends_the_list() -> None:
    """A strict server may refuse a page number past totalPage instead of answering an empty
    page; the probe past an exactly full last page must then end the list, not fail it."""
    fake = FakeList(40, page_size=10)  # exactly 4 full pages: page 5 is a probe
    fake.fail[5] = APIError("pageNo out of range", status=400, code="parameter_validation_failed")
    records = await collect(iterate(fake))
    assert records == [f"r{i}" for i in range(40)]
    assert 5 in fake.calls


async def test_an_error_on_a_page_the_server_reported_still_fails() -> None:
    fake = FakeList(40, page_size=10)
    fake.fail[4] = APIError("pageNo out of range", status=400, code="parameter_validation_failed")
    with pytest.raises(APIError):
        await collect(iterate(fake))
