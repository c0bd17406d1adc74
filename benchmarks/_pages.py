"""Seed-shaped order pages rendered to JSON bytes once, before anything is timed.

The orders are the sandbox's seed-shaped ones (``make_order``): the twelve keys of a seed 000
item, ids like ``"1000499"``, ``createTime`` as epoch-millisecond ints, status, type and
currency as strings, and money as a JSON number with the two decimals sent (``130.00``).
Pages are newest first, like the portal's list, wrapped in the Yeastar envelope.
"""

from __future__ import annotations

import json
import math

from yeastar_csss_async.sandbox._data import make_order

SEED = 0
TOKEN = "benchmark-token-0123456789abcdef"
BEARER = f"Bearer {TOKEN}"


def order_json(index: int) -> str:
    """Order number ``index`` as JSON text; ``totalAmount`` keeps its two decimals."""
    record = make_order(SEED, index)
    amount = record.pop("totalAmount")
    text = json.dumps(record, ensure_ascii=False, separators=(",", ":"))
    return f'{text[:-1]},"totalAmount":{amount}}}'


def envelope(result: str) -> bytes:
    """A successful Yeastar answer around the JSON text of ``result``."""
    return (
        f'{{"code":"success","detailMessage":"","requestId":"{"0" * 32}",'
        f'"result":{result},"status":200}}'
    ).encode()


def page_body(total: int, page_no: int, page_size: int) -> bytes:
    """Page ``page_no`` of a list of ``total`` orders (past the end: no results)."""
    start = (page_no - 1) * page_size
    items = ",".join(order_json(total - 1 - i) for i in range(start, min(start + page_size, total)))
    pages = math.ceil(total / page_size)
    return envelope(
        f'{{"count":{total},"pageNo":{page_no},"pageSize":{page_size},'
        f'"results":[{items}],"total":{total},"totalPage":{pages}}}'
    )


def all_pages(total: int, page_size: int) -> dict[int, bytes]:
    """Every page of the list, by page number."""
    return {n: page_body(total, n, page_size) for n in range(1, math.ceil(total / page_size) + 1)}


def token_body() -> bytes:
    """The answer of the token endpoint: always the same token, valid for 30 minutes."""
    return envelope(
        json.dumps(
            {
                "expiresIn": "1800",
                "refreshToken": "benchmark-refresh",
                "token": TOKEN,
                "tokenHead": "Bearer",
            },
            separators=(",", ":"),
        )
    )


def error_body(code: str, status: int, detail: str) -> bytes:
    """A Yeastar error envelope."""
    return json.dumps(
        {
            "code": code,
            "detailMessage": detail,
            "requestId": "0" * 32,
            "result": None,
            "status": status,
        },
        separators=(",", ":"),
    ).encode()
