"""The Yeastar wire protocol (``_yeastar_protocol``), without I/O where it can be: the
envelope and page decoding, typed errors for bodies that are not the documented shape, and
the request id of a page."""

from __future__ import annotations

import json

import pytest
from aioresponses import aioresponses

from yeastar_csss_async import APIError, Order, ResponseFormatError

from tests._support.mocked import (
    ORDERS,
    TOKEN_URL,
    client,
    envelope,
    token_body,
)
from tests._support.seeds import seed_text


@pytest.mark.parametrize(
    ("body", "kind", "code"),
    [
        ("<html>oops</html>", ResponseFormatError, None),
        ('{"code": "success", "result": {"results": []', ResponseFormatError, None),
        (
            json.dumps(envelope(None, code="parameter_validation_failed", status=400)),
            APIError,
            "parameter_validation_failed",
        ),
        (json.dumps({"code": "success", "status": 200}), ResponseFormatError, None),
        (json.dumps(envelope({"results": {"a": 1}, "total": 1})), ResponseFormatError, None),
        (json.dumps(envelope({"results": [], "total": -1})), ResponseFormatError, None),
        (json.dumps(envelope({"results": []})), ResponseFormatError, None),
        (json.dumps(envelope([1, 2])), ResponseFormatError, None),
    ],
)
async def test_bad_bodies_give_typed_errors(
    mocked: aioresponses,
    body: str,
    kind: type[Exception],
    code: str | None,
) -> None:
    mocked.post(TOKEN_URL, payload=token_body())
    mocked.get(ORDERS, body=body, status=200)
    async with client() as yeastar:
        with pytest.raises(kind) as caught:
            await yeastar.get_orders_page()
    if code is not None:
        assert isinstance(caught.value, APIError)
        assert caught.value.code == code


async def test_seed_000_body_decodes_into_a_page_with_the_corrected_plan(
    mocked: aioresponses,
) -> None:
    mocked.post(TOKEN_URL, payload=token_body())
    mocked.get(ORDERS, body=seed_text("seed_000_order_list.json"))
    async with client() as yeastar:
        page = await yeastar.get_orders_page(1, 5)
    assert (page.page_no, page.page_size, page.total) == (1, 5, 117)
    assert page.reported_total_pages == 1
    assert page.total_pages == 24  # ceil(117 / 5): the larger wins
    assert isinstance(page.items[0], Order)
