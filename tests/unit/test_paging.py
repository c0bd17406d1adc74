"""The page engine against an in-memory list that can shift while it is read (no network)."""

from __future__ import annotations

import asyncio
import gc
import math
import random
from collections.abc import Callable

import pytest

from yeastar_csss_async import APIError, Page, YeastarPartnerClient
from yeastar_csss_async._page_plan import PagePlan
from yeastar_csss_async._paging import PageIterator


class FakeList:
    """A paged list like the APIs serve: slices of a Python list, newest first."""

    def __init__(self, total: int, *, page_size: int, understate_pages: bool = False) -> None:
        self.records = [f"r{i}" for i in range(total)]
        self.page_size = page_size
        self.understate_pages = understate_pages
        self.calls: list[int] = []
        self.in_flight = 0
        self.peak = 0
        self.before_answer: Callable[[int], None] | None = None
        self.delay: Callable[[int], float] = lambda page_no: 0.0
        self.fail: dict[int, Exception] = {}
        self._new = 0

    def insert_at_head(self, n: int) -> None:
        for _ in range(n):
            self.records.insert(0, f"new{self._new}")
            self._new += 1

    def remove_at_head(self, n: int) -> None:
        del self.records[:n]

    async def fetch(self, page_no: int) -> Page[str]:
        self.calls.append(page_no)
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            await asyncio.sleep(self.delay(page_no))
            if page_no in self.fail:
                raise self.fail[page_no]
            if self.before_answer is not None:
                self.before_answer(page_no)
            start = (page_no - 1) * self.page_size
            items = self.records[start : start + self.page_size]
            total = len(self.records)
            reported = 1 if self.understate_pages else math.ceil(total / self.page_size)
            return Page.build(
                items,
                page_no=page_no,
                page_size=self.page_size,
                total=total,
                reported_total_pages=reported,
            )
        finally:
            self.in_flight -= 1


def iterate(
    fake: FakeList,
    *,
    ordered: bool = True,
    dedupe: bool = True,
    max_ahead: int = 8,
    read_ahead: int | None = None,
) -> PageIterator[str]:
    return PageIterator(
        fake.fetch,
        lambda r: r,
        page_size=fake.page_size,
        ordered=ordered,
        dedupe=dedupe,
        max_ahead=max_ahead,
        label="test",
        read_ahead=read_ahead,
    )


async def collect(iterator: PageIterator[str]) -> list[str]:
    return [record async for record in iterator]


# --- the plan, without I/O --------------------------------------------------------------------


def test_plan_reads_page_one_alone_then_the_rest() -> None:
    plan = PagePlan(10)
    assert plan.take() == 1
    assert plan.take() is None  # nothing more until page 1 says how many there are
    plan.record(1, total=35, reported_pages=4, count=10)
    assert [plan.take() for _ in range(4)] == [2, 3, 4, None]


def test_plan_trusts_the_larger_of_total_pages_and_total() -> None:
    plan = PagePlan(5)
    plan.take()
    plan.record(1, total=117, reported_pages=1, count=5)  # seed 000: totalPage 1
    pages = []
    while (p := plan.take()) is not None:
        pages.append(p)
    assert pages == list(range(2, 25))


def test_plan_probes_one_page_past_an_exactly_full_last_page() -> None:
    plan = PagePlan(10)
    plan.take()
    plan.record(1, total=30, reported_pages=3, count=10)
    assert [plan.take() for _ in range(4)] == [2, 3, 4, None]


def test_plan_grows_when_a_later_page_reports_more() -> None:
    plan = PagePlan(10)
    plan.take()
    plan.record(1, total=25, reported_pages=3, count=10)
    assert [plan.take(), plan.take(), plan.take()] == [2, 3, None]
    plan.record(3, total=45, reported_pages=5, count=10)
    assert [plan.take(), plan.take(), plan.take()] == [4, 5, None]


def test_plan_ends_where_a_page_past_the_end_repeats_its_predecessor_in_any_order() -> None:
    plan = PagePlan(10)
    assert plan.take() == 1
    plan.record(1, total=20, reported_pages=2, count=10)
    assert [plan.take(), plan.take(), plan.take(), plan.take()] == [2, 3, None, None]
    same = tuple(str(n) for n in range(10))
    assert not plan.wants_keys(1)
    assert plan.wants_keys(3)
    plan.record(3, total=20, reported_pages=2, count=10, keys=same)  # lands first, full
    assert plan.take() == 4  # a full page past the end: the list may go on
    plan.record(2, total=20, reported_pages=2, count=10, keys=same)  # page 3 repeated it
    assert plan.take() is None
    plan.record(4, total=20, reported_pages=2, count=10, keys=same)
    assert plan.finished
    assert plan.repeated_at == 3


def test_plan_keeps_going_while_pages_past_the_end_bring_new_records() -> None:
    plan = PagePlan(10)
    plan.take()
    plan.record(1, total=20, reported_pages=2, count=10)
    for page in (2, 3, 4):
        assert plan.take() == page
        plan.record(
            page, total=20, reported_pages=2, count=10, keys=tuple(f"{page}-{n}" for n in range(10))
        )
    assert plan.take() == 5
    assert plan.repeated_at is None


def test_plan_ends_at_an_empty_page() -> None:
    plan = PagePlan(10)
    plan.take()
    plan.record(1, total=10**9, reported_pages=10**8, count=10)  # an absurd total
    taken = [plan.take() for _ in range(3)]
    assert taken == [2, 3, 4]
    plan.record(2, total=10**9, reported_pages=10**8, count=0)
    assert plan.take() is None  # nothing past an empty page
    plan.record(3, total=10**9, reported_pages=10**8, count=0)
    plan.record(4, total=10**9, reported_pages=10**8, count=0)
    assert plan.finished


def test_plan_with_an_empty_list_is_done_after_page_one() -> None:
    plan = PagePlan(10)
    plan.take()
    plan.record(1, total=0, reported_pages=0, count=0)
    assert plan.finished
    assert plan.take() is None


def test_plan_rereads_from_before_the_shift_when_totals_disagree() -> None:
    plan = PagePlan(10)
    plan.take()
    plan.record(1, total=48, reported_pages=5, count=10)
    assert [plan.take() for _ in range(5)] == [2, 3, 4, 5, None]
    plan.record(2, total=48, reported_pages=5, count=10)
    plan.record(3, total=48, reported_pages=5, count=10)
    plan.record(4, total=45, reported_pages=5, count=10)  # 3 removed before page 4 was read
    plan.record(5, total=45, reported_pages=5, count=5)
    assert not plan.finished
    assert plan.pass_no == 2
    # pages 1..3 saw 48; 3 records may have slid from page 4 onto page 3
    assert plan.reread_from == 3
    assert [plan.take() for _ in range(4)] == [3, 4, 5, None]
    for page in (3, 4, 5):
        plan.record(page, total=45, reported_pages=5, count=10 if page < 5 else 5)
    assert plan.finished
    assert not plan.unstable


def test_plan_gives_up_after_max_passes_and_says_so() -> None:
    plan = PagePlan(10, max_passes=2)
    plan.take()
    plan.record(1, total=20, reported_pages=2, count=10)
    plan.take()
    plan.record(2, total=21, reported_pages=3, count=10)
    while (p := plan.take()) is not None:
        plan.record(p, total=22 + p, reported_pages=3, count=3)  # totals never settle
    assert plan.finished
    assert plan.unstable


def test_plan_from_a_start_page_reads_it_alone_then_the_rest_never_before() -> None:
    plan = PagePlan(10, start_page=3)
    assert plan.take() == 3
    assert plan.take() is None
    plan.record(3, total=60, reported_pages=6, count=10)
    assert [plan.take() for _ in range(5)] == [4, 5, 6, 7, None]  # 7 proves the end
    for page in (4, 5, 6, 7):
        plan.record(page, total=60, reported_pages=6, count=10 if page < 7 else 0)
    assert plan.finished
    assert plan.pass_no == 1


def test_plan_from_a_start_page_rereads_before_it_only_as_far_as_records_were_removed() -> None:
    shrunk = PagePlan(10, start_page=3)
    shrunk.take()
    shrunk.record(3, total=60, reported_pages=6, count=10)
    while (p := shrunk.take()) is not None:  # 15 removed at the head after page 3
        shrunk.record(p, total=45, reported_pages=5, count=10 if p < 5 else 5)
    # records of page 4 and on slid back by up to 15: onto page 2 (before the start page)
    assert shrunk.pass_no == 2
    assert shrunk.reread_from == 2
    grown = PagePlan(10, start_page=3)
    grown.take()
    grown.record(3, total=60, reported_pages=6, count=10)
    while (p := grown.take()) is not None:  # 15 added: records only moved forward
        grown.record(p, total=75, reported_pages=8, count=10 if p < 8 else 5)
    assert grown.pass_no == 2
    assert grown.reread_from == 3


# --- the iterator -------------------------------------------------------------------------


async def test_seed_shaped_list_with_understated_total_page_yields_all_117() -> None:
    fake = FakeList(117, page_size=5, understate_pages=True)
    records = await collect(iterate(fake))
    assert records == [f"r{i}" for i in range(117)]
    assert sorted(fake.calls) == list(range(1, 25))


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


def test_read_ahead_must_be_a_positive_int() -> None:
    client = YeastarPartnerClient("id", "secret")
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="read_ahead"):
            client.iter_orders(read_ahead=bad)  # type: ignore[arg-type]


async def test_read_ahead_stops_when_the_consumer_stops_reading() -> None:
    fake = FakeList(1000, page_size=10)
    iterator = iterate(fake, max_ahead=3)
    await iterator.__anext__()
    await asyncio.sleep(0.05)  # the consumer holds still
    assert len(fake.calls) <= 1 + 3
    await iterator.aclose()


@pytest.mark.parametrize("ordered", [True, False])
async def test_insertions_at_the_head_mid_iteration_lose_and_repeat_nothing(
    ordered: bool,
) -> None:
    fake = FakeList(200, page_size=10)
    original = set(fake.records)
    rng = random.Random(7)
    fake.delay = lambda page_no: rng.random() * 0.01  # pages land in any order
    fake.before_answer = lambda page_no: fake.insert_at_head(3) if page_no % 4 == 0 else None
    records = await collect(iterate(fake, ordered=ordered))
    assert len(records) == len(set(records))  # no duplicate
    assert original <= set(records)  # no loss


@pytest.mark.parametrize("ordered", [True, False])
async def test_removals_at_the_head_mid_iteration_lose_nothing_that_stayed(
    ordered: bool,
) -> None:
    fake = FakeList(200, page_size=10)
    removed: set[str] = set()

    def remove(page_no: int) -> None:
        if page_no in (3, 9, 14):
            removed.update(fake.records[:4])
            fake.remove_at_head(4)

    rng = random.Random(3)
    fake.delay = lambda page_no: rng.random() * 0.01
    original = set(fake.records)
    fake.before_answer = remove
    records = await collect(iterate(fake, ordered=ordered))
    assert len(records) == len(set(records))
    assert original - removed <= set(records)


async def test_dedupe_false_yields_what_the_pages_hold() -> None:
    fake = FakeList(30, page_size=10)
    fake.records[12] = fake.records[3]  # the server repeats a record
    with_dupes = await collect(iterate(fake, dedupe=False))
    assert len(with_dupes) == 30
    fake.calls.clear()
    deduped = await collect(iterate(fake, dedupe=True))
    assert len(deduped) == 29


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


async def test_break_cancels_every_fetch_at_once() -> None:
    fake = FakeList(10_000, page_size=10)
    fake.delay = lambda page_no: 0.0 if page_no == 1 else 0.05
    async for _ in iterate(fake):
        break
    gc.collect()
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    calls = len(fake.calls)
    assert fake.in_flight == 0
    await asyncio.sleep(0.1)
    assert len(fake.calls) == calls  # nothing fetched after the break
    assert asyncio.all_tasks() == {asyncio.current_task()}


async def test_cancelling_the_consumer_cancels_the_fetches() -> None:
    fake = FakeList(10_000, page_size=10)
    fake.delay = lambda page_no: 0.0 if page_no == 1 else 10.0

    async def consume() -> None:
        async for _ in iterate(fake):
            await asyncio.sleep(0.001)

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(0)
    assert fake.in_flight == 0
    assert asyncio.all_tasks() == {asyncio.current_task()}


async def test_aclose_waits_for_cancelled_fetches() -> None:
    fake = FakeList(10_000, page_size=10)
    fake.delay = lambda page_no: 0.0 if page_no == 1 else 10.0
    async with iterate(fake) as iterator:
        await iterator.__anext__()
    assert fake.in_flight == 0
    with pytest.raises(StopAsyncIteration):
        await iterator.__anext__()


async def test_an_error_on_page_one_reaches_the_consumer() -> None:
    fake = FakeList(10, page_size=10)
    fake.fail[1] = APIError("nope", status=400, code="parameter_validation_failed")
    iterator = iterate(fake)
    with pytest.raises(APIError):
        await iterator.__anext__()
    with pytest.raises(StopAsyncIteration):
        await iterator.__anext__()


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
