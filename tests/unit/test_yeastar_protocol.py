"""The Yeastar wire protocol (``_yeastar_protocol``), without I/O where it can be: the
envelope and page decoding, typed errors for bodies that are not the documented shape, and
the request id of a page."""

from __future__ import annotations

import json

import pytest
from aiohttp import web
from aioresponses import aioresponses

from yeastar_csss_async import APIError, Order, ResponseFormatError, YeastarPartnerClient
from yeastar_csss_async._yeastar_protocol import (
    ORDER_LIST_PATH,
    TOKEN_PATH,
    _fast_page,
    decode_page_answer,
)

from tests._support.clients import FAST_RETRY
from tests._support.mocked import (
    ORDERS,
    TOKEN_URL,
    client,
    envelope,
    token_body,
)
from tests._support.portal import records
from tests._support.seeds import seed_text
from tests._support.servers import serve_app


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


# --- Page.request_id ----------------------------------------------------------------------------


def page_body(request_id: object, *, general: bool = False) -> bytes:
    rows = records(2)
    if general:  # epoch milliseconds as a string: only the general decode path takes it
        rows[0]["createTime"] = "1700000000000"
    return json.dumps(
        {
            "code": "success",
            "requestId": request_id,
            "result": {
                "results": rows,
                "total": 2,
                "pageNo": 1,
                "pageSize": 25,
                "totalPage": 1,
            },
        }
    ).encode()


@pytest.mark.parametrize("general", [False, True], ids=["fast", "general"])
def test_page_request_id_is_the_answers_on_both_decode_paths(general: bool) -> None:
    body = page_body("7f0c1d", general=general)
    fast = _fast_page(200, body, Order, 1, 25, None)
    assert (fast is None) == general  # the two bodies really take the two paths
    page = decode_page_answer(200, body, Order, page_no=1, page_size=25)
    assert page.request_id == "7f0c1d"
    assert (
        decode_page_answer(
            200, page_body(None, general=general), Order, page_no=1, page_size=25
        ).request_id
        is None
    )
    assert (
        decode_page_answer(
            200, page_body(17, general=general), Order, page_no=1, page_size=25
        ).request_id
        is None
    )  # not a string: none


@pytest.mark.parametrize("general", [False, True], ids=["fast", "general"])
async def test_page_request_id_echoing_a_secret_or_the_token_is_masked(general: bool) -> None:
    secret = "s3cr3t-value-Zq"
    token = "tok-Abc123456789"
    echo: list[str] = [secret]

    async def get_token(request: web.Request) -> web.Response:
        return web.json_response(
            {
                "code": "success",
                "result": {"token": token, "refreshToken": "r-Xyz98765432", "expiresIn": 1800},
            }
        )

    async def orders(request: web.Request) -> web.Response:
        return web.Response(
            body=page_body(echo.pop(0) + " tail", general=general), content_type="application/json"
        )

    app = web.Application()
    app.router.add_post(TOKEN_PATH, get_token)
    app.router.add_get(ORDER_LIST_PATH, orders)
    async with (
        serve_app(app) as url,
        YeastarPartnerClient("id", secret, base_url=url, retry=FAST_RETRY) as client,
    ):
        page = await client.get_orders_page()
        assert page.request_id == "*** tail"
        echo.append(token)
        page = await client.get_orders_page()
        assert page.request_id == "*** tail"
