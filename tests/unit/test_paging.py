"""PageIterator (``_paging``) against an in-memory list that can shift while it is read (no
network): no record lost or repeated, dedupe, stopping early, errors at the consumer; and a
property (hypothesis): the real iterator over a list whose head moves while fetches land in
any order never loses, repeats or invents a record, and surfaces a failed fetch."""

from __future__ import annotations

import asyncio
import gc
import math
import random

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from yeastar_csss_async import APIError, Page, PageIterator, TransportError, YeastarPartnerClient

from tests._support.paged_list import FakeList, collect, iterate


async def test_seed_shaped_list_with_understated_total_page_yields_all_117() -> None:
    fake = FakeList(117, page_size=5, understate_pages=True)
    records = await collect(iterate(fake))
    assert records == [f"r{i}" for i in range(117)]
    assert sorted(fake.calls) == list(range(1, 25))


def test_read_ahead_must_be_a_positive_int() -> None:
    client = YeastarPartnerClient("id", "secret")
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="read_ahead"):
            client.iter_orders(read_ahead=bad)  # type: ignore[arg-type]


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


# --- a property: the real iterator over a list whose head moves while it is read -------


class ShiftingServer:
    """A paged list, newest first, whose head moves while it is read.

    Records are ints: the initial ones 0..total-1, inserted ones -1, -2, ... Each fetch of the
    real ``PageIterator`` waits in ``pending`` until the test answers it; the answer is cut
    from the list as it is at that moment, like a server that answers when it answers.
    """

    def __init__(self, total: int, page_size: int, reported: str) -> None:
        self.records = list(range(total))
        self.page_size = page_size
        self.reported = reported  # totalPage: "exact", "one" (understated) or "none"
        self.ever = set(self.records)
        self.next_new = -1
        self.pending: list[tuple[int, asyncio.Future[Page[int]]]] = []
        self.calls = 0

    async def fetch(self, page_no: int) -> Page[int]:
        """What the iterator calls: wait until :meth:`answer` or :meth:`fail` settles it."""
        self.calls += 1
        future: asyncio.Future[Page[int]] = asyncio.get_running_loop().create_future()
        entry = (page_no, future)
        self.pending.append(entry)
        try:
            return await future
        finally:
            if entry in self.pending:  # cancelled by the iterator
                self.pending.remove(entry)

    def answer(self, index: int) -> None:
        page_no, future = self.pending.pop(index)
        start = (page_no - 1) * self.page_size
        count = len(self.records)
        reported = {"exact": math.ceil(count / self.page_size), "one": 1, "none": None}
        future.set_result(
            Page.build(
                self.records[start : start + self.page_size],
                page_no=page_no,
                page_size=self.page_size,
                total=count,
                reported_total_pages=reported[self.reported],
            )
        )

    def fail(self, index: int, error: Exception) -> None:
        self.pending.pop(index)[1].set_exception(error)

    def insert(self, n: int) -> None:
        for _ in range(n):
            self.records.insert(0, self.next_new)
            self.ever.add(self.next_new)
            self.next_new -= 1

    def remove(self, n: int) -> None:
        del self.records[:n]


async def _settle(server: ShiftingServer, consumer: asyncio.Task[None], yielded: list[int]) -> None:
    """Let every task run until nothing moves: no timers or I/O are involved, so once the
    visible state stays the same for many loop turns, every task waits on the test."""

    def state() -> tuple[object, ...]:
        return (server.calls, len(server.pending), len(yielded), consumer.done())

    still, last = 0, state()
    while still < 20:
        await asyncio.sleep(0)
        now = state()
        still, last = (still + 1, last) if now == last else (0, now)


def _transient_error(kind: str) -> Exception:
    """A failure that must end the iteration, wherever it happens (after retries ran out)."""
    if kind == "transport":
        return TransportError("connection reset by peer")
    return APIError("service unavailable", status=503, code="unavailable")


async def _read_shifting_list(
    server: ShiftingServer,
    data: st.DataObject,
    *,
    ordered: bool,
    max_ahead: int,
) -> tuple[list[int], BaseException | None, BaseException | None]:
    """Run one iteration; hypothesis picks which fetch answers next, when the head changes,
    and whether a fetch fails. Returns (yielded, the injected error, the error raised)."""
    iterator = PageIterator(
        server.fetch,
        lambda record: record,
        page_size=server.page_size,
        ordered=ordered,
        dedupe=True,
        max_ahead=max_ahead,
        label="t",
    )
    yielded: list[int] = []
    raised: list[BaseException] = []

    async def consume() -> None:
        try:
            async for record in iterator:
                yielded.append(record)
        except Exception as error:  # the property compares it with the injected one
            raised.append(error)

    consumer = asyncio.create_task(consume())
    injected: BaseException | None = None
    mutations = data.draw(st.integers(0, 3), label="mutations")
    # A page that fails the first time it answers (0: none): any page, or one of the pages
    # just past the end, which are read only to prove the end.
    pages = math.ceil(len(server.records) / server.page_size)
    fail_page = data.draw(
        st.just(0) | st.integers(1, pages + 2) | st.sampled_from([pages + 1, pages + 2]),
        label="failing page",
    )
    for _step in range(2000):
        await _settle(server, consumer, yielded)
        if consumer.done():
            break
        assert server.pending, "the consumer waits, but no fetch is in flight"
        if mutations and data.draw(st.booleans(), label="mutate now"):
            mutations -= 1
            amount = data.draw(st.integers(1, 2 * server.page_size), label="amount")
            if data.draw(st.booleans(), label="insert"):
                server.insert(amount)
            else:
                server.remove(amount)
        last = len(server.pending) - 1
        index = data.draw(st.integers(0, last), label="which answers") if last else 0
        if injected is None and server.pending[index][0] == fail_page:
            injected = _transient_error(
                data.draw(st.sampled_from(["transport", "503"]), label="error")
            )
            server.fail(index, injected)
        else:
            server.answer(index)
    else:
        raise AssertionError("the iteration did not end")
    await consumer
    await iterator.aclose()
    event(f"passes: {iterator.passes}; failed: {injected is not None}")
    assert server.pending == [], "a fetch outlived the iteration"
    return yielded, injected, raised[0] if raised else None


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    total=st.integers(0, 90),
    whole_pages=st.booleans(),
    page_size=st.integers(1, 12),
    reported=st.sampled_from(["exact", "one", "none"]),
    ordered=st.booleans(),
    max_ahead=st.integers(1, 6),
    data=st.data(),
)
def test_page_iterator_yields_every_record_present_throughout_exactly_once(
    total: int,
    whole_pages: bool,
    page_size: int,
    reported: str,
    ordered: bool,
    max_ahead: int,
    data: st.DataObject,
) -> None:
    """The real PageIterator over a list that changes at the head while it is read, with
    fetches answering in any order: unless a fetch fails (then the iteration raises exactly
    that error), every record present from start to end is yielded once, no record is
    yielded twice, and nothing that was never in the list is invented."""
    if whole_pages:  # the last page is full: the page after it is read to prove the end
        total -= total % page_size
    server = ShiftingServer(total, page_size, reported)
    initial = set(server.records)
    yielded, injected, raised = asyncio.run(
        _read_shifting_list(server, data, ordered=ordered, max_ahead=max_ahead)
    )
    if injected is not None:
        assert raised is injected
        return
    assert raised is None
    assert len(yielded) == len(set(yielded))
    assert initial & set(server.records) <= set(yielded)
    assert set(yielded) <= server.ever
