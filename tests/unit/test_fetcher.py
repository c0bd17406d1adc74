"""PageFetcher (``_fetcher``): the fetch tasks of one iteration. At most ``max_ahead`` fetches
in flight and ``read_ahead`` records ahead of the consumer (pages in flight counting as full),
no more than a limit still wants; pages handed over in page order or as they land; the first
error kept and every other fetch cancelled; "no such page" past every reported end is the end.

First through a PageIterator over an in-memory list, then driven directly with fetches that
land when the test says."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from yeastar_csss_async import APIError, Page
from yeastar_csss_async._fetcher import NO_SUCH_PAGE_STATUSES, PageFetcher
from yeastar_csss_async._page_plan import PagePlan

from tests._support.paged_list import FakeList, collect, iterate

GUARD = 20.0  # seconds: a hang guard only; every wait here ends in milliseconds


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


# --- PageFetcher on its own: fetches that land when the test says -------------------------


class HeldPages:
    """A list of ``total`` records whose page fetches each wait until the test answers (or
    fails) them, so which fetches are in flight is known at every step, without timing."""

    def __init__(self, total: int, page_size: int = 10) -> None:
        self.total = total
        self.page_size = page_size
        self.started: list[int] = []
        self.cancelled: list[int] = []
        self._waiting: dict[int, asyncio.Future[Page[int]]] = {}
        self._changed = asyncio.Condition()

    async def fetch(self, page_no: int) -> Page[int]:
        future: asyncio.Future[Page[int]] = asyncio.get_running_loop().create_future()
        self._waiting[page_no] = future
        async with self._changed:
            self.started.append(page_no)
            self._changed.notify_all()
        try:
            return await future
        except asyncio.CancelledError:
            self.cancelled.append(page_no)
            raise
        finally:
            del self._waiting[page_no]

    async def until_started(self, *pages: int) -> None:
        """Wait until the fetches of ``pages`` have begun (a hang guard bounds the wait)."""
        async with asyncio.timeout(GUARD), self._changed:
            await self._changed.wait_for(lambda: set(pages) <= set(self.started))

    def in_flight(self) -> list[int]:
        return sorted(self._waiting)

    def answer(self, page_no: int) -> None:
        start = (page_no - 1) * self.page_size
        records = list(range(start, min(start + self.page_size, self.total)))
        page = Page.build(
            records,
            page_no=page_no,
            page_size=self.page_size,
            total=self.total,
            reported_total_pages=None,
        )
        self._waiting[page_no].set_result(page)

    def fail(self, page_no: int, error: Exception) -> None:
        self._waiting[page_no].set_exception(error)


def fetcher_of(
    pages: HeldPages,
    *,
    ordered: bool = True,
    max_ahead: int = 8,
    read_ahead: int | None = 1000,
    wanted: int | None = None,
) -> PageFetcher[int]:
    return PageFetcher(
        pages.fetch,
        PagePlan(pages.page_size),
        ordered=ordered,
        max_ahead=max_ahead,
        label="test",
        key=lambda record: record,
        read_ahead=read_ahead,
        wanted=wanted,
    )


async def first_page(fetcher: PageFetcher[int], pages: HeldPages) -> Page[int]:
    """Page 1, read alone (it decides the plan), handed to the consumer."""
    consumer = asyncio.ensure_future(fetcher.next_page())
    await pages.until_started(1)
    assert pages.in_flight() == [1]
    pages.answer(1)
    page = await asyncio.wait_for(consumer, GUARD)
    assert page is not None
    assert page.page_no == 1
    return page


async def drain(fetcher: PageFetcher[int]) -> AsyncIterator[Page[int]]:
    """The pages the fetcher hands over, as a consumer that takes each one reads them."""
    while (page := await fetcher.next_page()) is not None:
        fetcher.refill()
        yield page


async def waiting(fetcher: PageFetcher[int]) -> None:
    """Return once a consumer waits in ``next_page`` (checked after each turn of the loop:
    there is no event to wait on; bounded, so a consumer that never waits fails the test)."""
    for _ in range(1000):
        if fetcher.waiter is not None:
            return
        await asyncio.sleep(0)
    pytest.fail("the consumer never waited")


async def test_at_most_max_ahead_fetches_are_in_flight() -> None:
    pages = HeldPages(200)
    fetcher = fetcher_of(pages, max_ahead=3)
    await first_page(fetcher, pages)
    await pages.until_started(2, 3, 4)
    assert pages.in_flight() == [2, 3, 4]
    pages.answer(3)  # one lands: one more may start, no more
    await pages.until_started(5)
    assert pages.in_flight() == [2, 4, 5]
    assert len(fetcher.tasks) == 3
    await fetcher.aclose()
    assert sorted(pages.cancelled) == [2, 4, 5]


async def test_pages_in_flight_count_as_full_against_the_read_ahead_budget() -> None:
    """A budget of 25 records and pages of 10: with page 1 landed and waiting for the
    consumer (10), one fetch in flight (counted as 10 more) is all the budget allows."""
    pages = HeldPages(200)
    fetcher = fetcher_of(pages, max_ahead=8, read_ahead=25)
    consumer = asyncio.ensure_future(fetcher.next_page())
    await pages.until_started(1)
    pages.answer(1)
    page = await asyncio.wait_for(
        consumer, GUARD
    )  # page 1 landed with 10 records, and page 2 was launched
    assert page is not None
    assert len(fetcher.tasks) == 1
    await pages.until_started(2)
    fetcher.refill()  # the consumer took page 1: 0 landed + 2 x 10 in flight <= 25
    await pages.until_started(3)
    assert pages.in_flight() == [2, 3]
    assert len(fetcher.tasks) == 2  # a third would make 30
    assert pages.started == [1, 2, 3]
    await fetcher.aclose()


async def test_no_page_is_launched_once_what_landed_or_is_coming_covers_the_limit() -> None:
    """``wanted`` 15 records of pages of 10: page 1 and page 2 cover it, page 3 is never
    read (the consumer lowers ``wanted`` as it takes records, as PageIterator does)."""
    pages = HeldPages(200)
    fetcher = fetcher_of(pages, max_ahead=8, wanted=15)
    await first_page(fetcher, pages)
    assert len(fetcher.tasks) == 1  # 10 landed + 10 coming >= 15
    await pages.until_started(2)
    fetcher.wanted = 5
    fetcher.refill()
    assert len(fetcher.tasks) == 1
    consumer = asyncio.ensure_future(fetcher.next_page())
    pages.answer(2)
    page = await asyncio.wait_for(consumer, GUARD)
    assert page is not None
    assert page.page_no == 2
    fetcher.wanted = 0
    fetcher.refill()
    assert await fetcher.next_page() is None  # done: nothing more is wanted
    assert pages.started == [1, 2]


@pytest.mark.parametrize(("ordered", "handed_over"), [(True, [2, 3, 4]), (False, [3, 2, 4])])
async def test_pages_are_handed_over_in_page_order_or_as_they_land(
    ordered: bool, handed_over: list[int]
) -> None:
    pages = HeldPages(30)
    fetcher = fetcher_of(pages, ordered=ordered)
    await first_page(fetcher, pages)
    await pages.until_started(2, 3, 4)
    consumer = asyncio.ensure_future(fetcher.next_page())
    pages.answer(3)  # page 3 lands before page 2
    pages.answer(2)
    pages.answer(4)  # empty: the end
    first = await asyncio.wait_for(consumer, GUARD)
    assert first is not None
    fetcher.refill()
    rest = [page async for page in drain(fetcher)]
    assert [page.page_no for page in [first, *rest]] == handed_over


async def test_the_first_error_reaches_the_consumer_and_cancels_every_other_fetch() -> None:
    pages = HeldPages(200)
    fetcher = fetcher_of(pages, max_ahead=3)
    await first_page(fetcher, pages)
    await pages.until_started(2, 3, 4)
    first = APIError("service unavailable", status=503, code="first")
    second = APIError("service unavailable", status=503, code="second")
    pages.fail(3, first)
    pages.fail(2, second)  # settled too, but cancelled before its error is seen
    with pytest.raises(APIError) as caught:
        await fetcher.next_page()
    assert caught.value is first
    assert sorted(pages.cancelled) == [2, 4]
    assert fetcher.tasks == {}  # failing waits for the cancelled fetches
    assert await fetcher.next_page() is None


@pytest.mark.parametrize("status", sorted(NO_SUCH_PAGE_STATUSES))
async def test_no_such_page_for_a_page_read_only_to_prove_the_end_ends_the_list(
    status: int,
) -> None:
    pages = HeldPages(30)  # 3 full pages: page 4 is read to prove the end
    fetcher = fetcher_of(pages)
    await first_page(fetcher, pages)
    await pages.until_started(2, 3, 4)
    pages.answer(2)
    pages.answer(3)
    pages.fail(4, APIError("no such page", status=status, code="no_page"))
    got = [(page.page_no, len(page.items)) async for page in drain(fetcher)]
    assert got == [(2, 10), (3, 10), (4, 0)]  # an empty page 4: the end


@pytest.mark.parametrize(
    ("status", "total"),
    [
        *[(status, 40) for status in sorted(NO_SUCH_PAGE_STATUSES)],  # page 4 was reported
        (401, 30),
        (403, 30),
        (429, 30),
        (500, 30),
        (503, 30),
    ],
)
async def test_other_failures_of_the_last_page_fail_the_list(status: int, total: int) -> None:
    """Only "no such page" (400, 404, 422) for a page past every reported end is an end; the
    same answer for a page the server reported, or any other failure, is an error."""
    pages = HeldPages(total)
    fetcher = fetcher_of(pages)
    await first_page(fetcher, pages)
    await pages.until_started(2, 3, 4)
    pages.answer(2)
    pages.answer(3)
    error = APIError("refused", status=status, code="refused")
    pages.fail(4, error)
    with pytest.raises(APIError) as caught:
        [page async for page in drain(fetcher)]
    assert caught.value is error


async def test_shutdown_releases_a_waiting_consumer_and_aclose_waits_for_the_fetches() -> None:
    pages = HeldPages(200)
    fetcher = fetcher_of(pages, max_ahead=4)
    await first_page(fetcher, pages)
    await pages.until_started(2, 3, 4, 5)
    consumer = asyncio.ensure_future(fetcher.next_page())
    await waiting(fetcher)  # the consumer waits for page 2
    fetcher.shutdown()
    assert await asyncio.wait_for(consumer, GUARD) is None  # released, as if the list ended
    await fetcher.aclose()
    assert fetcher.tasks == {}
    assert sorted(pages.cancelled) == [2, 3, 4, 5]
