"""A Yeastar portal written by hand on 127.0.0.1: each test writes its token endpoint and its
order pages (a :class:`Portal`), and reads it with a client (:func:`portal_client`)."""

from __future__ import annotations

import contextlib
import math
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import Any

from aiohttp import web

from yeastar_csss_async import Order, RetryPolicy, YeastarPartnerClient

from tests._support.servers import serve_app

FAST = RetryPolicy(max_attempts=3, initial_backoff=0.001, max_backoff=0.01)
GUARD = 20.0  # seconds: a hang guard only; every call here returns in well under a second
ORDERS = "/order/openapi/order/v1/page"
TOKEN = "/auth/openapi/v1/oauth/token"

PageHandler = Callable[[int, int], Awaitable[web.StreamResponse]]


def envelope(
    result: object,
    *,
    code: str = "success",
    status: int = 200,
    http: int | None = None,
    **extra: object,
) -> web.Response:
    document = {
        "code": code,
        "detailMessage": "",
        "requestId": "r" * 32,
        "result": result,
        "status": status,
        **extra,
    }
    return web.json_response(document, status=http or status)


def order(n: int) -> dict[str, object]:
    return {"id": str(n), "orderNo": f"N{n}", "createTime": 1_700_000_000_000 + n}


def orders_page(
    records: Sequence[Mapping[str, object]],
    page_no: int,
    page_size: int,
    *,
    total: int,
    total_pages: int | None = None,
) -> web.Response:
    chunk = records[(page_no - 1) * page_size : page_no * page_size]
    return envelope(
        {
            "count": total,
            "pageNo": page_no,
            "pageSize": page_size,
            "results": chunk,
            "total": total,
            "totalPage": total_pages or math.ceil(total / page_size),
        }
    )


class Portal:
    """A Yeastar portal whose token endpoint and order pages each test writes by hand."""

    def __init__(self, pages: PageHandler) -> None:
        self.pages = pages
        self.token_answer: Callable[[], Awaitable[web.StreamResponse]] = self.good_token
        self.calls: Counter[str] = Counter()
        self.expires_in: object = "1800"
        self.issued = 0

    async def good_token(self) -> web.StreamResponse:
        self.issued += 1
        return envelope(
            {
                "token": f"tok{self.issued:04d}" + "A" * 60,
                "refreshToken": f"ref{self.issued:04d}" + "B" * 60,
                "expiresIn": self.expires_in,
                "tokenHead": "Bearer",
            }
        )

    def app(self) -> web.Application:
        async def token(request: web.Request) -> web.StreamResponse:
            self.calls["token"] += 1
            await request.read()
            return await self.token_answer()

        async def orders(request: web.Request) -> web.StreamResponse:
            page_no = int(request.query.get("pageNo", "1"))
            self.calls[f"page {page_no}"] += 1
            self.calls["orders"] += 1
            return await self.pages(page_no, int(request.query.get("pageSize", "25")))

        app = web.Application()
        app.router.add_post(TOKEN, token)
        app.router.add_get(ORDERS, orders)
        return app


@contextlib.asynccontextmanager
async def portal_client(portal: Portal, **options: Any) -> AsyncIterator[YeastarPartnerClient]:
    options.setdefault("retry", FAST)
    async with (
        serve_app(portal.app()) as url,
        YeastarPartnerClient("id", "secret-xyz", base_url=url, **options) as client,
    ):
        yield client


async def collect(iterator: AsyncIterator[Order]) -> list[Order]:
    return [record async for record in iterator]


RECORDS = [order(n) for n in range(150)]
"""150 orders on the server; the tests that understate say 100 in 10 pages."""


def records(count: int, start: int = 0) -> list[dict[str, Any]]:
    """``count`` order records (id and order number) from ``start`` on, as a server sends them."""
    return [{"id": str(i), "orderNo": f"N{i}"} for i in range(start, start + count)]
