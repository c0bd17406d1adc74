"""PageIterator (``_paging``) against an in-memory list that can shift while it is read (no
network): no record lost or repeated, dedupe, stopping early, errors at the consumer."""

from __future__ import annotations

import asyncio
import gc
import random

import pytest

from yeastar_csss_async import APIError, YeastarPartnerClient

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
