"""The contenders: what a user writes by hand, and the library.

* raw: aiohttp + ``json.loads`` -> dicts. Page 1 first (to learn the total), then every other
  page at once under an ``asyncio.Semaphore`` on one session whose connector limit is the
  library's (``concurrency + 2``).
* raw + hand-written attrs: the same fetch, plus what a careful user writes to get typed
  values: a frozen attrs class with the library's twelve fields and the same conversions
  (Decimal money with the digits sent, aware UTC datetimes, documented enum values as enums).
* the library: ``[o async for o in client.iter_orders(page_size=...)]``.
"""

from __future__ import annotations

import asyncio
import gc
import json
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import aiohttp
import attrs
from _server import ORDERS_PATH, TOKEN_PATH, ServerHandle, Usage

from yeastar_csss_async import (
    CurrencyCode,
    Order,
    OrderStatus,
    OrderType,
    YeastarPartnerClient,
)
from yeastar_csss_async.sandbox import SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET

Decode = Callable[[bytes], tuple[int, list[Any]]]


@attrs.frozen
class HandOrder:
    """A careful user's own order class: the library's twelve fields, the same types."""

    id: str | None
    order_no: str | None
    order_status: OrderStatus | str | None
    order_type: OrderType | str | None
    create_time: datetime | None
    currency_code: CurrencyCode | str | None
    total_amount: Decimal | None
    custom_reference_no: str | None
    invoice_no: str | None
    product_model: str | None
    product_name: str | None
    product_no: str | None


_STATUSES = {m.value: m for m in OrderStatus}
_TYPES = {m.value: m for m in OrderType}
_CURRENCIES = {m.value: m for m in CurrencyCode}


def hand_order(r: dict[str, Any]) -> HandOrder:
    """One record -> HandOrder, as a careful user writes it (unknown enum values kept)."""
    ms = r.get("createTime")
    status, kind, currency = r.get("orderStatus"), r.get("orderType"), r.get("currencyCode")
    return HandOrder(
        id=r.get("id"),
        order_no=r.get("orderNo"),
        order_status=_STATUSES.get(status, status),
        order_type=_TYPES.get(kind, kind),
        create_time=None if ms is None else datetime.fromtimestamp(ms / 1000, tz=UTC),
        currency_code=_CURRENCIES.get(currency, currency),
        total_amount=r.get("totalAmount"),
        custom_reference_no=r.get("customReferenceNo"),
        invoice_no=r.get("invoiceNo"),
        product_model=r.get("productModel"),
        product_name=r.get("productName"),
        product_no=r.get("productNo"),
    )


def decode_dicts(body: bytes) -> tuple[int, list[dict[str, Any]]]:
    """raw: the page's total and its records as dicts."""
    result = json.loads(body)["result"]
    return result["total"], result["results"]


def decode_hand_attrs(body: bytes) -> tuple[int, list[HandOrder]]:
    """raw + hand-written attrs: the page's total and its records as HandOrder."""
    result = json.loads(body, parse_float=Decimal)["result"]
    return result["total"], [hand_order(r) for r in result["results"]]


def raw_session(concurrency: int) -> aiohttp.ClientSession:
    """A session with the library's connector limit."""
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency + 2))


async def get_token(session: aiohttp.ClientSession, base_url: str) -> str:
    """A token from the token endpoint (the page server always answers the same one)."""
    form = {
        "grant_type": "pp_credentials",
        "client_id": SANDBOX_CLIENT_ID,
        "client_secret": SANDBOX_CLIENT_SECRET,
    }
    async with session.post(base_url + TOKEN_PATH, data=form) as response:
        return str(json.loads(await response.read())["result"]["token"])


async def raw_concurrent(
    session: aiohttp.ClientSession,
    base_url: str,
    token: str,
    decode: Decode,
    *,
    page_size: int,
    concurrency: int,
) -> list[Any]:
    """Page 1, then every other page at once under a semaphore; all records in page order."""
    slots = asyncio.Semaphore(concurrency)
    headers = {"Authorization": f"Bearer {token}"}

    async def page(page_no: int) -> list[Any]:
        params = {"pageNo": page_no, "pageSize": page_size}
        async with (
            slots,
            session.get(base_url + ORDERS_PATH, headers=headers, params=params) as response,
        ):
            response.raise_for_status()
            total, records = decode(await response.read())
        totals.append(total)
        return records

    totals: list[int] = []
    records = await page(1)
    pages = math.ceil(totals[0] / page_size)
    for rest in await asyncio.gather(*(page(n) for n in range(2, pages + 1))):
        records.extend(rest)
    return records


async def raw_sequential(
    session: aiohttp.ClientSession, base_url: str, token: str, decode: Decode, *, page_size: int
) -> list[Any]:
    """The loop a user writes first: one page after another, until a short page."""
    headers = {"Authorization": f"Bearer {token}"}
    records: list[Any] = []
    page_no = 1
    while True:
        params = {"pageNo": page_no, "pageSize": page_size}
        async with session.get(base_url + ORDERS_PATH, headers=headers, params=params) as response:
            response.raise_for_status()
            _, page = decode(await response.read())
        records.extend(page)
        if len(page) < page_size:
            return records
        page_no += 1


def library_client(base_url: str, concurrency: int = 8) -> YeastarPartnerClient:
    """The library with default options (retry policy, timeouts) but the base URL."""
    return YeastarPartnerClient(
        SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET, base_url=base_url, max_concurrency=concurrency
    )


async def warm(client: YeastarPartnerClient) -> YeastarPartnerClient:
    """Fetch the token (and open a connection) before anything is timed."""
    await client.get_orders_page(1, 1)
    return client


async def library_list(client: YeastarPartnerClient, *, page_size: int = 100) -> list[Order]:
    """What a user of the library writes to get every order."""
    return [o async for o in client.iter_orders(page_size=page_size)]


async def library_count(
    client: YeastarPartnerClient, *, page_size: int = 100, ordered: bool = True
) -> int:
    """What a user of the library writes to stream every order (and count them)."""
    count = 0
    async for _ in client.iter_orders(page_size=page_size, ordered=ordered):
        count += 1
    return count


@dataclass(frozen=True)
class Run:
    """One timed run: client CPU and wall seconds, records, and the server's usage."""

    cpu: float
    wall: float
    records: int
    server: Usage

    @property
    def client_share(self) -> float:
        """Client CPU seconds per wall second (1.0: the client kept one core busy)."""
        return self.cpu / self.wall


async def timed(
    server: ServerHandle, work: Callable[[], Awaitable[Sequence[Any] | int]], expected: int
) -> Run:
    """Run ``work`` once; client CPU from ``time.process_time()`` in this process."""
    gc.collect()
    server.mark()
    cpu, wall = time.process_time(), time.perf_counter()
    result = await work()
    records = result if isinstance(result, int) else len(result)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    usage = server.usage()
    if records != expected:
        raise RuntimeError(f"expected {expected} records, got {records}")
    return Run(cpu, wall, records, usage)
