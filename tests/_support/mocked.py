"""A Yeastar portal mocked with aioresponses (no server): its answers, a client of it, and the
requests it saw."""

from __future__ import annotations

import re
from typing import Any

from aioresponses import aioresponses

from yeastar_csss_async import YeastarPartnerClient

from tests._support.clients import FAST_RETRY

BASE = "https://yeastar.test"
CSSS_BASE = "https://csss.test"
TOKEN_URL = f"{BASE}/auth/openapi/v1/oauth/token"
ORDERS = re.compile(r"^https://yeastar\.test/order/openapi/order/v1/page\?.*$")
SECRET = "s3cr3t-client-secret"
CSSS_SECRET = "csss-s3cr3t-value"


def envelope(
    result: Any, *, code: str = "success", status: int = 200, detail: str = ""
) -> dict[str, Any]:
    return {
        "code": code,
        "detailMessage": detail,
        "requestId": "a" * 32,
        "result": result,
        "status": status,
    }


def token_body(
    token: str = "tok-1", *, expires: Any = "1800", refresh: str = "ref-1"
) -> dict[str, Any]:
    return envelope(
        {"expiresIn": expires, "refreshToken": refresh, "token": token, "tokenHead": "Bearer"}
    )


def orders_page(ids: list[str], *, total: int | None = None) -> dict[str, Any]:
    total = len(ids) if total is None else total
    return envelope(
        {
            "count": total,
            "pageNo": 1,
            "pageSize": 25,
            "results": [{"id": i} for i in ids],
            "total": total,
            "totalPage": 1,
        }
    )


def client(**kwargs: Any) -> YeastarPartnerClient:
    kwargs.setdefault("retry", FAST_RETRY)
    return YeastarPartnerClient("client-id", SECRET, base_url=BASE, **kwargs)


def requests_to(mock: aioresponses, method: str, url: str) -> list[Any]:
    return [
        call
        for (m, u), calls in mock.requests.items()
        for call in calls
        if m == method and str(u).startswith(url)
    ]
