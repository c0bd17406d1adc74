"""Hostile servers and careless callers against the promises of the README's Guarantees.

Every server here is a real aiohttp (or raw TCP) server on 127.0.0.1 with hand-written
misbehaviour; each test bounds its own time (``asyncio.wait_for`` as a hang guard, never as a
performance claim) and size.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import math
import pickle
import time
import tracemalloc
from collections.abc import Callable

import pytest
from aiohttp import web

from yeastar_csss_async import (
    APIError,
    AuthenticationError,
    CSSSClient,
    Order,
    RateLimitError,
    ResponseFormatError,
    RetryPolicy,
    TransportError,
    YeastarPartnerClient,
)

from tests._support.clients import client_side_tasks
from tests._support.portal import (
    FAST,
    GUARD,
    RECORDS,
    PageHandler,
    Portal,
    collect,
    envelope,
    orders_page,
    portal_client,
)
from tests._support.servers import serve_app, serve_raw

# --- 1. data loss at the end of a list -------------------------------------------------------


def understating(failure: Callable[[], web.StreamResponse]) -> PageHandler:
    async def pages(page_no: int, page_size: int) -> web.StreamResponse:
        if page_no > 10:
            return failure()
        return orders_page(RECORDS, page_no, page_size, total=100, total_pages=10)

    return pages


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (503, APIError),
        (500, APIError),
        (401, AuthenticationError),
        (429, RateLimitError),
    ],
)
async def test_a_failing_page_past_the_reported_end_raises_instead_of_ending_the_list(
    status: int,
    error: type[APIError],
) -> None:
    portal = Portal(understating(lambda: envelope(None, code="boom", status=status)))
    async with portal_client(portal) as client:
        seen: list[Order] = []

        async def read_all() -> None:
            async for record in client.iter_orders(page_size=10):
                seen.append(record)

        with pytest.raises(error) as caught:
            await asyncio.wait_for(read_all(), GUARD)
    assert caught.value.status == status
    assert len(seen) == 100  # what came before the failure, and no silent end
    assert portal.calls["page 11"] >= 1


@pytest.mark.parametrize("status", [400, 404, 422])
async def test_no_such_page_past_the_reported_end_ends_the_list(status: int) -> None:
    portal = Portal(understating(lambda: envelope(None, code="no_page", status=status)))
    async with portal_client(portal) as client:
        records = await asyncio.wait_for(collect(client.iter_orders(page_size=10)), GUARD)
    assert [r.id for r in records] == [str(n) for n in range(100)]
    assert portal.calls["page 11"] == 1  # not retried


async def test_records_past_an_understated_total_are_still_read() -> None:
    async def pages(page_no: int, page_size: int) -> web.StreamResponse:
        return orders_page(RECORDS, page_no, page_size, total=100, total_pages=10)

    async with portal_client(Portal(pages)) as client:
        records = await asyncio.wait_for(collect(client.iter_orders(page_size=10)), GUARD)
    assert [r.id for r in records] == [str(n) for n in range(150)]


@pytest.mark.parametrize("dedupe", [True, False])
@pytest.mark.parametrize("answered", ["always page 1", "clamped to the last page"])
async def test_a_server_that_ignores_the_page_number_does_not_make_an_endless_list(
    answered: str,
    dedupe: bool,
) -> None:
    """Every page past the reported end comes back full, so the plan would grow forever; a
    page that repeats the one before it ends the list instead."""

    async def pages(page_no: int, page_size: int) -> web.StreamResponse:
        served = 1 if answered == "always page 1" else min(page_no, 10)
        return orders_page(RECORDS, served, page_size, total=100, total_pages=10)

    portal = Portal(pages)
    async with portal_client(portal) as client:
        records = await asyncio.wait_for(
            collect(client.iter_orders(page_size=10, dedupe=dedupe)), GUARD
        )
    expected = 10 if answered == "always page 1" else 100
    assert len({r.id for r in records}) == expected
    # The read-ahead window (2 x 8 pages) bounds what is fetched past the end.
    assert portal.calls["orders"] <= 10 + 2 * 8


async def test_records_without_keys_fail_the_list_instead_of_passing_unchecked() -> None:
    """Keyless records all look alike: they could be neither deduplicated nor told apart from
    a repeated page. The list fails with the record's path instead of passing them along."""
    keyless = [{"orderNo": f"N{n}"} for n in range(150)]

    async def pages(page_no: int, page_size: int) -> web.StreamResponse:
        return orders_page(keyless, page_no, page_size, total=100, total_pages=10)

    async with portal_client(Portal(pages)) as client:
        with pytest.raises(ResponseFormatError) as caught:
            await asyncio.wait_for(collect(client.iter_orders(page_size=10)), GUARD)
    assert caught.value.path == "result.results[0].id"


async def test_a_bad_body_past_the_reported_end_raises() -> None:
    portal = Portal(understating(lambda: web.Response(text="<html>oops</html>")))
    async with portal_client(portal) as client:
        with pytest.raises(ResponseFormatError):
            await collect(client.iter_orders(page_size=10))


# --- 3. hangs: Retry-After without a ceiling, impossible timings -----------------------------


@pytest.mark.parametrize("retry_after", ["1000000000", "inf", "Thu, 01 Jan 2099 00:00:00 GMT"])
@pytest.mark.parametrize("status", [429, 503])
async def test_a_retry_after_beyond_the_ceiling_fails_at_once_and_pauses_nobody(
    retry_after: str,
    status: int,
) -> None:
    async def pages(page_no: int, page_size: int) -> web.StreamResponse:
        if page_no == 1:
            return web.json_response(
                {"code": "slow_down"}, status=status, headers={"Retry-After": retry_after}
            )
        return orders_page(RECORDS, page_no, page_size, total=150)

    async with portal_client(Portal(pages), retry=RetryPolicy()) as client:
        with pytest.raises(RateLimitError) as caught:
            await asyncio.wait_for(client.get_orders_page(1), GUARD)
        # The client is not paused for years: the next request goes out at once.
        page = await asyncio.wait_for(client.get_orders_page(2), GUARD)
    assert caught.value.retry_after is not None
    assert caught.value.retry_after > RetryPolicy().max_retry_after
    assert caught.value.status == status
    assert page.page_no == 2


async def test_a_retry_after_within_the_ceiling_is_honoured() -> None:
    answers = iter(
        [web.json_response({"code": "slow"}, status=429, headers={"Retry-After": "0.2"})]
    )

    async def pages(page_no: int, page_size: int) -> web.StreamResponse:
        return next(answers, None) or orders_page(RECORDS, page_no, page_size, total=150)

    async with portal_client(Portal(pages), retry=RetryPolicy(max_retry_after=0.5)) as client:
        page = await asyncio.wait_for(client.get_orders_page(1), GUARD)
    assert page.total == 150
    assert client.stats.rate_limited == 1


BAD_SECONDS = [0, -1, math.inf, -math.inf, math.nan, True, "1"]


@pytest.mark.parametrize("value", BAD_SECONDS)
@pytest.mark.parametrize("name", ["initial_backoff", "max_backoff", "max_retry_after"])
def test_impossible_retry_timings_are_rejected_at_construction(name: str, value: object) -> None:
    with pytest.raises(ValueError, match=name):
        RetryPolicy(**{name: value})  # type: ignore[arg-type]


@pytest.mark.parametrize("value", BAD_SECONDS)
def test_impossible_timeouts_are_rejected_at_construction(value: object) -> None:
    with pytest.raises(ValueError, match="timeout"):
        YeastarPartnerClient("id", "secret", timeout=value)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="timeout"):
        CSSSClient("P1", "secret", timeout=value)  # type: ignore[arg-type]


# --- 4. one iterator, two tasks; aclose from another task -----------------------------------


def held_after_page_one(release: asyncio.Event) -> PageHandler:
    async def pages(page_no: int, page_size: int) -> web.StreamResponse:
        if page_no > 1:
            await release.wait()
        return orders_page(RECORDS, page_no, page_size, total=150)

    return pages


async def test_a_second_concurrent_reader_of_one_iterator_gets_runtime_error() -> None:
    release = asyncio.Event()
    async with (
        portal_client(Portal(held_after_page_one(release))) as client,
        client.iter_orders(page_size=10) as orders,
    ):
        first = [await orders.__anext__() for _ in range(10)]  # page 1, no wait
        waiting = asyncio.create_task(orders.__anext__())  # waits for page 2
        await asyncio.sleep(0.05)
        assert not waiting.done()
        with pytest.raises(RuntimeError, match="another task"):
            await asyncio.wait_for(orders.__anext__(), GUARD)
        release.set()
        eleventh = await asyncio.wait_for(waiting, GUARD)
        rest = await asyncio.wait_for(collect(orders), GUARD)
    assert [r.id for r in [*first, eleventh, *rest]] == [str(n) for n in range(150)]


async def test_aclose_from_another_task_releases_a_waiting_consumer() -> None:
    release = asyncio.Event()
    try:
        async with portal_client(Portal(held_after_page_one(release))) as client:
            orders = client.iter_orders(page_size=10)
            for _ in range(10):
                await orders.__anext__()
            waiting = asyncio.create_task(orders.__anext__())
            await asyncio.sleep(0.05)
            assert not waiting.done()  # it waits for page 2, which the server holds
            await asyncio.wait_for(orders.aclose(), GUARD)
            with pytest.raises(StopAsyncIteration):
                await asyncio.wait_for(waiting, GUARD)
            assert client_side_tasks() == set()
    finally:
        release.set()


# --- 7. CSSS requests are signed after the slot and the pause --------------------------------


async def test_csss_requests_queued_behind_a_pause_are_signed_after_it() -> None:
    """The first request gets ``429 Retry-After: 2``. A request signed after the pause carries
    ``timestamp >= floor(arrival + 2)``; one signed while it queued carries
    ``floor(arrival + d)`` with ``d < 1``, which is smaller: the check is exact, not timed."""
    state: dict[str, float] = {}
    stale: list[int] = []

    async def query(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        if "pause_end" not in state:
            state["pause_end"] = time.time() + 2
            return web.json_response({"code": "9999"}, status=429, headers={"Retry-After": "2"})
        if int(body["timestamp"]) < math.floor(state["pause_end"]):
            stale.append(int(body["timestamp"]))
            return web.json_response(
                {"code": "1003", "message": "timestamp expired", "success": False, "data": None}
            )
        return web.json_response(
            {
                "code": "0000",
                "success": True,
                "message": "ok",
                "data": {
                    "page": {
                        "cur_page_no": body["page_no"],
                        "page_size": 1,
                        "total_count": 4,
                        "total_pages": 4,
                    },
                    "package_order": [],
                    "package_order_num": 0,
                },
            }
        )

    app = web.Application()
    app.router.add_post("/package/queryOrder", query)
    async with (
        serve_app(app) as url,
        CSSSClient("P1", "csss-secret", base_url=url, max_concurrency=1, retry=FAST) as client,
    ):
        pages = await asyncio.wait_for(
            asyncio.gather(*(client.get_package_orders_page(n, 1) for n in range(1, 5))), GUARD
        )
    assert stale == []
    assert [p.page_no for p in pages] == [1, 2, 3, 4]


# --- 10. bounded bodies ----------------------------------------------------------------------


def test_the_default_body_limit_is_documented_tens_of_mib() -> None:
    client = YeastarPartnerClient("id", "secret")
    assert client.max_response_bytes == 32 * 1024 * 1024
    assert CSSSClient("P1", "secret").max_response_bytes == 32 * 1024 * 1024
    with pytest.raises(ValueError, match="max_response_bytes"):
        YeastarPartnerClient("id", "secret", max_response_bytes=0)


async def test_a_declared_length_over_the_limit_is_refused_unread() -> None:
    """The server declares 2 GB, sends 10 bytes and holds the connection: reading it would
    wait for the 30 s timeout; refusing it from the header returns at once."""
    answer = (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        b'Content-Length: 2000000000\r\n\r\n{"code":1'
    )
    async with (
        serve_raw(answer, hold=True) as url,
        CSSSClient("P1", "secret", base_url=url, max_response_bytes=1 << 20, retry=FAST) as client,
    ):
        with pytest.raises(ResponseFormatError, match="max_response_bytes"):
            await asyncio.wait_for(client.get_package_orders_page(), 10)


async def test_a_huge_chunked_body_is_cut_at_the_limit_with_bounded_memory() -> None:
    """64 MiB sent chunked (no Content-Length) against a 4 MiB limit. Reading it whole would
    hold 64 MiB; the client holds at most the limit plus one chunk before refusing, so the
    traced peak stays under 3 x the limit (the server's own buffers are a few chunks)."""
    limit, chunk = 4 << 20, b"x" * (64 << 10)

    async def endless(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        with contextlib.suppress(ConnectionError):
            for _ in range(1024):  # 64 MiB
                await response.write(chunk)
        return response

    app = web.Application()
    app.router.add_post("/package/queryOrder", endless)
    async with (
        serve_app(app) as url,
        CSSSClient("P1", "secret", base_url=url, max_response_bytes=limit, retry=FAST) as client,
    ):
        tracemalloc.start()
        try:
            with pytest.raises(ResponseFormatError, match="max_response_bytes"):
                await asyncio.wait_for(client.get_package_orders_page(), GUARD)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert peak < 3 * limit, f"peak {peak / 2**20:.1f} MiB"


async def test_a_compressed_body_that_inflates_past_the_limit_is_refused() -> None:
    """8 MiB of zeros gzipped to a few KiB, with an honest Content-Length of the compressed
    size: the limit counts what the body inflates to."""
    inflated = b"0" * (8 << 20)

    async def bomb(request: web.Request) -> web.StreamResponse:
        return web.Response(
            body=gzip.compress(inflated),
            content_type="application/json",
            headers={"Content-Encoding": "gzip"},
        )

    app = web.Application()
    app.router.add_post("/package/queryOrder", bomb)
    async with (
        serve_app(app) as url,
        CSSSClient("P1", "secret", base_url=url, max_response_bytes=1 << 20, retry=FAST) as client,
    ):
        with pytest.raises(ResponseFormatError, match="max_response_bytes"):
            await asyncio.wait_for(client.get_package_orders_page(), GUARD)


# --- 11. stopping early ----------------------------------------------------------------------


@pytest.mark.parametrize("closer", ["async with", "aclosing"])
async def test_stopping_early_in_a_block_cancels_and_waits_for_every_fetch(closer: str) -> None:
    async def slow(page_no: int, page_size: int) -> web.StreamResponse:
        await asyncio.sleep(0.05)
        return orders_page(RECORDS, page_no, page_size, total=150)

    portal = Portal(slow)
    async with portal_client(portal) as client:
        orders = client.iter_orders(page_size=10)
        block = orders if closer == "async with" else contextlib.aclosing(orders)
        async with block:
            async for _ in orders:
                break
        assert client_side_tasks() == set()  # cancelled *and* waited for
        sent = client.stats.requests  # counted just before a request goes out
        await asyncio.sleep(0.2)  # four server latencies: a fetch still alive would land
        assert client.stats.requests == sent
        assert portal.calls["orders"] + portal.calls["token"] <= sent


# --- 13. errors survive pickling -------------------------------------------------------------


def test_errors_survive_pickling_with_every_attribute() -> None:
    errors = [
        RateLimitError("slow down", status=429, code="rate", request_id="r1", retry_after=3.5),
        AuthenticationError("no", status=401, code="invalid_client", request_id="r2"),
        APIError("boom", status=503, code="x"),
        ResponseFormatError("bad", path="result.total", status=200),
        TransportError("GET /x failed"),
    ]
    for error in errors:
        copy = pickle.loads(pickle.dumps(error))
        assert type(copy) is type(error)
        assert str(copy) == str(error)
        assert vars(copy) == vars(error)
    assert pickle.loads(pickle.dumps(errors[0])).retry_after == 3.5


def test_json_nested_too_deep_is_not_a_recursion_error_anywhere() -> None:
    from yeastar_csss_async._wire import decode_json

    deep = b"[" * 100_000 + b"]" * 100_000
    with pytest.raises(ResponseFormatError, match="nested too deep"):
        decode_json(deep)
    json.dumps([])  # the interpreter is fine afterwards
