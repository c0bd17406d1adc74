"""Paging controls end to end against the sandbox on 127.0.0.1: ``iter_pages`` / PageStream,
``start_page=``, ``limit=`` and ``Page.request_id``; the server's own request log is the
witness of which pages were asked for. How a page's request id is decoded (and masked) is
tested in tests/unit/test_yeastar_protocol.py."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from typing import Any

import pytest
from aiohttp import web

from yeastar_csss_async import (
    CSSSClient,
    Page,
    PageStream,
    PermissionDeniedError,
    YeastarPartnerClient,
)
from yeastar_csss_async._yeastar_protocol import (
    ORDER_LIST_PATH,
    TOKEN_PATH,
)
from yeastar_csss_async.sandbox import Sandbox, SandboxConfig

from tests._support.clients import FAST_RETRY, client_side_tasks
from tests._support.portal import records
from tests._support.servers import serve_app

ORDERS = 40


@pytest.fixture
def sandbox_config() -> SandboxConfig:
    return SandboxConfig(orders=ORDERS, products_per_line=30, package_orders=30)


class PageLog:
    """The pages the sandbox was asked for, per list, in arrival order; ``hold`` makes the
    server wait for an event before answering the given pages."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.pages: dict[str, list[int]] = {"orders": [], "products": []}
        self.hold: dict[int, asyncio.Event] = {}
        self.answer: dict[int, Callable[[], web.StreamResponse]] = {}
        self._arrived = asyncio.Event()
        sandbox.intercept = self._intercept

    async def reached(self, count: int) -> None:
        """Wait until the server was asked for ``count`` order pages."""
        while len(self.orders) < count:
            self._arrived.clear()
            await self._arrived.wait()

    async def _intercept(self, request: web.Request) -> web.StreamResponse | None:
        name = (
            "orders"
            if "/order/" in request.path
            else "products"
            if "/product/" in request.path
            else None
        )
        if name is None:
            return None
        page_no = int(request.query.get("pageNo", "1"))
        self.pages[name].append(page_no)
        self._arrived.set()
        if page_no in self.hold:
            await self.hold[page_no].wait()
        if page_no in self.answer:
            return self.answer[page_no]()
        return None

    @property
    def orders(self) -> list[int]:
        return self.pages["orders"]


@pytest.fixture
def log(sandbox: Sandbox) -> PageLog:
    return PageLog(sandbox)


def order_ids(sandbox: Sandbox) -> list[str]:
    return [record["id"] for record in sandbox.orders]


async def pages_of(stream: PageStream[Any]) -> list[Page[Any]]:
    async with stream:
        return [page async for page in stream]


# --- iter_pages --------------------------------------------------------------------------------


@pytest.mark.parametrize("ordered", [True, False])
async def test_iter_pages_yields_every_page_with_its_number_total_and_request_id(
    sandbox: Sandbox,
    yeastar: YeastarPartnerClient,
    ordered: bool,
) -> None:
    pages = await pages_of(yeastar.iter_order_pages(page_size=7, ordered=ordered))
    assert sorted(page.page_no for page in pages) == [1, 2, 3, 4, 5, 6]
    if ordered:
        assert [page.page_no for page in pages] == [1, 2, 3, 4, 5, 6]
    assert {page.total for page in pages} == {ORDERS}
    ids = [order.id for page in sorted(pages, key=lambda p: p.page_no) for order in page.items]
    assert ids == order_ids(sandbox)
    request_ids = [page.request_id for page in pages]
    assert all(isinstance(rid, str) and len(rid) == 32 for rid in request_ids)
    assert len(set(request_ids)) == len(pages)  # each page carries its own answer's id


async def test_iter_pages_by_name_and_for_products_and_package_orders(
    sandbox: Sandbox,
    yeastar: YeastarPartnerClient,
    csss: CSSSClient,
) -> None:
    orders = await pages_of(yeastar.iter_pages("orders", page_size=15))
    assert [p.page_no for p in orders] == [1, 2, 3]
    products = await pages_of(yeastar.iter_pages("products", product_id=13, page_size=8))
    assert [len(p.items) for p in products] == [8, 8, 8, 6]
    assert [p.product_no for p in products[0].items] == [
        r["productNo"] for r in sandbox.products[13][:8]
    ]
    # without a name: orders, or products when a product line is given
    assert [p.page_no for p in await pages_of(yeastar.iter_pages(page_size=15))] == [1, 2, 3]
    by_line = await pages_of(yeastar.iter_pages(product_id=13, page_size=8))
    assert [len(p.items) for p in by_line] == [8, 8, 8, 6]
    package = await pages_of(csss.iter_pages(page_size=12))
    assert [len(p.items) for p in package] == [12, 12, 6]
    assert {p.request_id for p in package} == {None}  # the CSSS API sends none
    with pytest.raises(ValueError, match="product_id"):
        yeastar.iter_pages("products")  # type: ignore[call-overload]
    with pytest.raises(ValueError, match="product_id"):
        yeastar.iter_pages("orders", product_id=13)  # type: ignore[call-overload]
    with pytest.raises(ValueError, match="orders"):
        yeastar.iter_pages("invoices")  # type: ignore[call-overload]


async def test_iter_pages_yields_each_record_once_and_a_page_of_repeats_comes_empty(
    sandbox: Sandbox,
    yeastar: YeastarPartnerClient,
    log: PageLog,
) -> None:
    def insert_after_page_one(name: str, page_no: int) -> None:
        if name == "orders" and page_no == 1 and len(sandbox.orders) == ORDERS:
            sandbox.orders.add(7)  # page 2 now holds exactly what page 1 held

    sandbox.after_page = insert_after_page_one
    pages = await pages_of(yeastar.iter_order_pages(page_size=7))
    ids = [order.id for page in pages for order in page.items]
    assert len(ids) == len(set(ids))  # nothing twice
    assert set(ids) == set(order_ids(sandbox))  # nothing lost: 40 old and 7 new
    emptied = [page for page in pages if not page.items]
    assert emptied
    assert emptied[0].page_no == 2
    assert emptied[0].total == ORDERS + 7
    # Without dedupe the pages hold what the server sent.
    raw = await pages_of(yeastar.iter_order_pages(page_size=7, dedupe=False))
    assert all(page.items for page in raw)


async def test_a_page_stream_has_one_consumer(
    yeastar: YeastarPartnerClient,
    log: PageLog,
) -> None:
    log.hold[1] = asyncio.Event()
    async with yeastar.iter_order_pages(page_size=10) as stream:
        first = asyncio.ensure_future(anext(stream))
        await log.reached(1)  # the first consumer waits for page 1 now
        with pytest.raises(RuntimeError, match="one consumer"):
            await anext(stream)
        log.hold[1].set()
        assert (await first).page_no == 1
    assert client_side_tasks() == set()


async def test_aclose_from_another_task_releases_a_waiting_page_consumer(
    yeastar: YeastarPartnerClient,
    log: PageLog,
) -> None:
    log.hold[1] = asyncio.Event()
    stream = yeastar.iter_order_pages(page_size=10)
    consumer = asyncio.ensure_future(pages_of(stream))
    await log.reached(1)
    await stream.aclose()
    assert await consumer == []
    log.hold[1].set()
    assert client_side_tasks() == set()


async def test_leaving_a_page_stream_block_early_cancels_and_waits_for_every_fetch(
    yeastar: YeastarPartnerClient,
    log: PageLog,
) -> None:
    release = asyncio.Event()
    for page_no in range(2, 6):
        log.hold[page_no] = release  # pages 2.. stay in flight
    async with yeastar.iter_order_pages(page_size=8) as stream:
        async for page in stream:
            assert page.page_no == 1
            await log.reached(5)  # pages 2-5 reached the server
            break
    assert client_side_tasks() == set()  # cancelled *and* waited for
    sent = yeastar.stats.requests
    release.set()
    await asyncio.sleep(0.05)
    assert yeastar.stats.requests == sent


async def test_the_first_error_of_a_page_surfaces_from_the_page_stream(
    yeastar: YeastarPartnerClient,
    log: PageLog,
) -> None:
    log.answer[3] = lambda: web.json_response(
        {"code": "permission_denied", "detailMessage": "not yours", "requestId": "r-3"}, status=403
    )
    seen: list[int] = []

    async def read_all() -> None:
        async for page in yeastar.iter_order_pages(page_size=8):
            seen.append(page.page_no)

    with pytest.raises(PermissionDeniedError) as caught:
        await read_all()
    assert caught.value.request_id == "r-3"
    assert 3 not in seen
    assert log.orders.count(3) == 1  # a 403 is not retried
    assert client_side_tasks() == set()


async def test_records_and_pages_cannot_be_read_from_one_iterator(
    yeastar: YeastarPartnerClient,
) -> None:
    records = yeastar.iter_orders(page_size=10)
    async with records:
        stream = records.iter_pages()
        with pytest.raises(RuntimeError, match="already read as pages"):
            await anext(records)
        with pytest.raises(RuntimeError, match="already read as pages"):
            records.iter_pages()
        assert (await anext(stream)).page_no == 1
    other = yeastar.iter_orders(page_size=10)
    async with other:
        await anext(other)
        with pytest.raises(RuntimeError, match="already read as records"):
            other.iter_pages()
    assert client_side_tasks() == set()


# --- start_page --------------------------------------------------------------------------------


@pytest.mark.parametrize("ordered", [True, False])
async def test_start_page_skips_the_earlier_pages_without_asking_for_them(
    sandbox: Sandbox,
    yeastar: YeastarPartnerClient,
    log: PageLog,
    ordered: bool,
) -> None:
    ids = [o.id async for o in yeastar.iter_orders(page_size=7, start_page=3, ordered=ordered)]
    assert sorted(ids) == sorted(order_ids(sandbox)[14:])
    if ordered:
        assert ids == order_ids(sandbox)[14:]
    assert log.orders[0] == 3
    assert min(log.orders) == 3
    pages = await pages_of(yeastar.iter_order_pages(page_size=7, start_page=5))
    assert [p.page_no for p in pages] == [5, 6]


async def test_start_page_past_the_end_yields_nothing(
    yeastar: YeastarPartnerClient,
    log: PageLog,
) -> None:
    assert [o async for o in yeastar.iter_orders(page_size=10, start_page=9)] == []
    assert log.orders == [9]


async def test_start_page_grows_the_plan_when_a_later_page_reports_more(
    sandbox: Sandbox,
    yeastar: YeastarPartnerClient,
    log: PageLog,
) -> None:
    line = sandbox.products[13]
    before = [r["productNo"] for r in line]

    def append_after_page_three(name: str, page_no: int) -> None:
        if name == "products" and page_no == 3 and len(line) == 30:
            line.add(9)  # new products go to the end: the list now has 39

    sandbox.after_page = append_after_page_three
    got = [p.product_no async for p in yeastar.iter_products(13, page_size=6, start_page=3)]
    assert len(got) == len(set(got))
    assert set(got) == set(before[12:]) | {r["productNo"] for r in line[30:]}
    assert min(log.pages["products"]) == 3
    assert max(log.pages["products"]) >= 7  # past the end page 3 reported (page 5)


@pytest.mark.parametrize("change", [-15, -4, 6])
async def test_start_page_loses_nothing_from_there_when_the_list_shifts(
    sandbox: Sandbox,
    yeastar: YeastarPartnerClient,
    log: PageLog,
    change: int,
) -> None:
    original = order_ids(sandbox)
    ours = original[20:]  # from page 3 of 10 on

    def shift_after_page_three(name: str, page_no: int) -> None:
        if name == "orders" and page_no == 3 and len(sandbox.orders) == ORDERS:
            if change > 0:
                sandbox.orders.add(change)
            for key in original[:-change] if change < 0 else ():
                sandbox.orders.remove(key)

    sandbox.after_page = shift_after_page_three
    got = [o.id async for o in yeastar.iter_orders(page_size=10, start_page=3)]
    assert len(got) == len(set(got))  # no duplicates
    still_there = set(order_ids(sandbox))
    assert {key for key in ours if key in still_there} <= set(got)  # no loss from page 3 on


# --- limit ------------------------------------------------------------------------------------


@pytest.mark.parametrize("limit", [1, 9, 10, 25, 39, 40])
@pytest.mark.parametrize("ordered", [True, False])
async def test_limit_yields_exactly_n_and_asks_only_for_the_pages_it_needs(
    sandbox: Sandbox,
    yeastar: YeastarPartnerClient,
    log: PageLog,
    limit: int,
    ordered: bool,
) -> None:
    ids = [o.id async for o in yeastar.iter_orders(page_size=10, limit=limit, ordered=ordered)]
    assert len(ids) == limit == len(set(ids))
    needed = math.ceil(limit / 10)
    # The bound: pages in flight count as full, and no page is launched once what landed or
    # is coming covers the limit; so an unchanging list costs ceil(limit / page_size) pages.
    assert sorted(log.orders) == list(range(1, needed + 1))
    if ordered:
        assert ids == order_ids(sandbox)[:limit]
    else:
        assert set(ids) <= set(order_ids(sandbox)[: needed * 10])
    assert client_side_tasks() == set()


async def test_limit_above_the_total_yields_everything(
    sandbox: Sandbox,
    yeastar: YeastarPartnerClient,
    log: PageLog,
) -> None:
    ids = [o.id async for o in yeastar.iter_orders(page_size=10, limit=1000)]
    assert ids == order_ids(sandbox)
    assert sorted(log.orders) == [1, 2, 3, 4, 5]  # 4 full pages, and the empty 5th ends it


async def test_limit_with_start_page_counts_from_there(
    sandbox: Sandbox,
    yeastar: YeastarPartnerClient,
    log: PageLog,
) -> None:
    ids = [o.id async for o in yeastar.iter_orders(page_size=10, start_page=2, limit=15)]
    assert ids == order_ids(sandbox)[10:25]
    assert sorted(log.orders) == [2, 3]


async def test_limit_with_dedupe_counts_unique_records(
    sandbox: Sandbox,
    yeastar: YeastarPartnerClient,
    log: PageLog,
) -> None:
    def insert_after_page_one(name: str, page_no: int) -> None:
        if name == "orders" and page_no == 1 and len(sandbox.orders) == ORDERS:
            sandbox.orders.add(5)  # page 2 starts with 5 records of page 1

    sandbox.after_page = insert_after_page_one
    ids = [o.id async for o in yeastar.iter_orders(page_size=10, limit=20)]
    assert len(ids) == 20 == len(set(ids))
    assert 3 in log.orders  # page 2 brought 5 new records only: page 3 was needed
    assert client_side_tasks() == set()


async def test_limit_with_iter_pages_cuts_the_last_page(
    sandbox: Sandbox,
    yeastar: YeastarPartnerClient,
    log: PageLog,
) -> None:
    pages = await pages_of(yeastar.iter_order_pages(page_size=10, limit=23))
    assert [len(p.items) for p in pages] == [10, 10, 3]
    assert [p.page_no for p in pages] == [1, 2, 3]
    assert pages[-1].total == ORDERS  # the metadata stays the server's
    assert [o.id for p in pages for o in p.items] == order_ids(sandbox)[:23]
    assert sorted(log.orders) == [1, 2, 3]


async def test_limit_must_be_a_positive_int(
    yeastar: YeastarPartnerClient, csss: CSSSClient
) -> None:
    for bad in (0, -1, 1.5, True, "3"):
        with pytest.raises(ValueError, match="limit"):
            yeastar.iter_orders(limit=bad)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="start_page"):
            yeastar.iter_orders(start_page=bad)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="limit"):
            csss.iter_package_order_pages(limit=bad)  # type: ignore[arg-type]


async def test_limit_reached_cancels_a_fetch_still_in_flight_and_leaves_no_task() -> None:
    """A server that sends twice the page size asked for: page 2 then covers the limit while
    page 3, launched when pages counted as ``page_size`` records, is still in flight."""
    page_three = asyncio.Event()
    cancelled = asyncio.Event()

    async def token(request: web.Request) -> web.Response:
        return web.json_response(
            {"code": "success", "result": {"token": "t", "refreshToken": "r", "expiresIn": 1800}}
        )

    async def orders(request: web.Request) -> web.Response:
        page_no = int(request.query["pageNo"])
        if page_no == 3:
            page_three.set()
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                cancelled.set()
                raise
        result = {
            "results": records(20, 20 * (page_no - 1)),
            "total": 200,
            "pageNo": page_no,
            "pageSize": 10,
            "totalPage": 20,
        }
        return web.json_response({"code": "success", "requestId": "x", "result": result})

    app = web.Application(handler_args={"handler_cancellation": True})
    app.router.add_post(TOKEN_PATH, token)
    app.router.add_get(ORDER_LIST_PATH, orders)
    async with (
        serve_app(app) as url,
        YeastarPartnerClient("id", "secret", base_url=url, retry=FAST_RETRY) as client,
    ):
        orders_seen = client.iter_orders(page_size=10, limit=35)
        got: list[str] = []
        async for order in orders_seen:
            got.append(order.id)
            if len(got) == 20:  # page 1 is handed out: wait until page 3 reached the server
                await page_three.wait()
            if len(got) == 35:  # the limit: page 3 is abandoned now, not at the next step
                await asyncio.wait_for(cancelled.wait(), 5)
        assert got == [str(i) for i in range(35)]
        assert client_side_tasks() == set()


# --- Page.request_id ----------------------------------------------------------------------------


async def test_page_request_id_from_the_sandbox_is_a_fresh_string_per_answer(
    yeastar: YeastarPartnerClient,
) -> None:
    first, second = await yeastar.get_orders_page(), await yeastar.get_orders_page()
    assert first.request_id
    assert second.request_id
    assert first.request_id != second.request_id


async def test_page_stream_type_and_helpers(yeastar: YeastarPartnerClient) -> None:
    stream = yeastar.iter_order_pages(page_size=20)
    assert isinstance(stream, PageStream)
    total_before = stream.total  # a local: mypy would keep stream.total narrowed to None
    assert total_before is None
    assert stream.pages_read == 0
    assert "PageStream" in repr(stream)
    async with stream:
        assert aiter(stream) is stream
        await anext(stream)
        assert stream.total == ORDERS
        assert stream.pages_read >= 1
