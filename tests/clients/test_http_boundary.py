"""Client behaviour at the HTTP boundary, with aioresponses (no server): arguments checked
before any request, CSSS requests signed (afresh for each retry), and secrets kept out of
reprs, errors and logs. The token's, the retries' and the decoding's own tests are in
tests/unit (test_auth, test_transport, test_yeastar_protocol)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from aioresponses import CallbackResult, aioresponses
from yarl import URL

from yeastar_csss_async import (
    APIError,
    CSSSClient,
    YeastarPartnerClient,
    sign_csss_body,
)

from tests._support.clients import FAST_RETRY
from tests._support.logs import ListHandler
from tests._support.mocked import (
    CSSS_BASE,
    CSSS_SECRET,
    ORDERS,
    SECRET,
    TOKEN_URL,
    client,
    envelope,
    token_body,
)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda c: c.get_orders_page(0), "page_no"),
        (lambda c: c.get_orders_page(1, 0), "page_size"),
        (lambda c: c.get_products_page(0), "product_id"),
        (lambda c: c.get_products_page(True), "product_id"),
    ],
)
async def test_bad_arguments_raise_value_error_before_any_request(
    mocked: aioresponses,
    call: Any,
    message: str,
) -> None:
    async with client() as yeastar:
        with pytest.raises(ValueError, match=message):
            await call(yeastar)
    assert not mocked.requests


async def test_iterators_check_their_arguments_at_once() -> None:
    async with client() as yeastar:
        with pytest.raises(ValueError, match="page_size"):
            yeastar.iter_orders(page_size=0)
        with pytest.raises(ValueError, match="product_id"):
            yeastar.iter_products(-3)
        for method in (
            yeastar.iter_orders,
            yeastar.iter_order_pages,
            lambda **kw: yeastar.iter_product_pages(13, **kw),
        ):
            with pytest.raises(ValueError, match="start_page"):
                method(start_page=0)
            with pytest.raises(ValueError, match="limit"):
                method(limit=0)


async def test_views_and_page_streams_send_nothing_until_read(
    mocked: aioresponses,
) -> None:
    async with client() as yeastar:
        view = yeastar.with_options(timeout=1.5)
        assert type(view) is YeastarPartnerClient
        assert repr(view) == repr(yeastar)  # no secret, same client
        async with view.iter_order_pages(limit=3, start_page=2):
            pass
    assert not mocked.requests


@pytest.mark.parametrize(
    "kwargs",
    [
        {"client_id": ""},
        {"client_secret": " "},
        {"max_concurrency": 0},
        {"timeout": 0},
        {"base_url": "ftp://x"},
    ],
)
def test_bad_construction_raises_value_error(kwargs: dict[str, Any]) -> None:
    args = {"client_id": "id", "client_secret": "secret", **kwargs}
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        YeastarPartnerClient(args.pop("client_id"), args.pop("client_secret"), **args)


def test_csss_construction_checks_credentials() -> None:
    with pytest.raises(ValueError, match="access_code"):
        CSSSClient("", "secret")
    with pytest.raises(ValueError, match="secret"):
        CSSSClient("P1", "")


# --- CSSS ------------------------------------------------------------------------------------


def csss_answer(items: list[dict[str, Any]], *, total: int) -> dict[str, Any]:
    return {
        "code": "0000",
        "message": "success",
        "success": True,
        "data": {
            "page": {"cur_page_no": 1, "page_size": 50, "total_count": total, "total_pages": 1},
            "sign": "x",
            "package_order": items,
            "package_order_num": len(items),
        },
    }


async def test_csss_request_is_signed_and_carries_filters_and_language(
    mocked: aioresponses,
) -> None:
    seen: list[dict[str, Any]] = []

    def answer(url: URL, **kwargs: Any) -> CallbackResult:
        seen.append({"body": json.loads(kwargs["data"]), "headers": kwargs["headers"]})
        return CallbackResult(payload=csss_answer([{"orderCode": "L1"}], total=1))

    mocked.post(f"{CSSS_BASE}/package/queryOrder", callback=answer, repeat=True)
    async with CSSSClient("P000270", CSSS_SECRET, base_url=CSSS_BASE, language="zh-CN") as c:
        page = await c.get_package_orders_page(2, 10, device_id="8986", order_status="")
    assert [o.order_code for o in page.items] == ["L1"]
    body, headers = seen[0]["body"], seen[0]["headers"]
    assert headers["Accept-Language"] == "zh-CN"
    assert headers["Content-Type"] == "application/json"
    assert body["device_id"] == "8986"
    assert "order_status" not in body  # "" is left out of body and sign
    assert (body["page_no"], body["page_size"], body["version"]) == (2, 10, "2.0")
    assert re.fullmatch(r"\d{10}", body["timestamp"])
    sign = body.pop("sign")
    assert sign == sign_csss_body(body, CSSS_SECRET)


async def test_csss_business_error_is_an_api_error_with_the_csss_code(
    mocked: aioresponses,
) -> None:
    mocked.post(
        f"{CSSS_BASE}/package/queryOrder",
        payload={"code": "1002", "message": "sign error", "success": False, "data": None},
    )
    async with CSSSClient("P000270", CSSS_SECRET, base_url=CSSS_BASE) as c:
        with pytest.raises(APIError) as caught:
            await c.get_package_orders_page()
    assert caught.value.code == "1002"
    assert caught.value.message == "sign error"
    assert len(mocked.requests) == 1  # business errors are not retried


async def test_csss_retries_are_signed_afresh(mocked: aioresponses) -> None:
    bodies: list[bytes] = []

    def answer(url: URL, **kwargs: Any) -> CallbackResult:
        bodies.append(kwargs["data"])
        if len(bodies) == 1:
            return CallbackResult(status=502, body="bad gateway")
        return CallbackResult(payload=csss_answer([], total=0))

    mocked.post(f"{CSSS_BASE}/package/queryOrder", callback=answer, repeat=True)
    async with CSSSClient("P000270", CSSS_SECRET, base_url=CSSS_BASE, retry=FAST_RETRY) as c:
        await c.get_package_orders_page()
    assert len(bodies) == 2
    for raw in bodies:
        body = json.loads(raw)
        assert body.pop("sign") == sign_csss_body(body, CSSS_SECRET)


# --- secrets -----------------------------------------------------------------------------


async def test_no_secret_or_token_in_reprs_errors_or_debug_logs(
    mocked: aioresponses,
    debug_log: ListHandler,
) -> None:
    access, refresh = "acc-T0KEN-abcdef", "ref-T0KEN-uvwxyz"
    mocked.post(TOKEN_URL, payload=token_body(access, refresh=refresh))
    mocked.get(
        ORDERS,
        status=401,
        payload=envelope(None, code="invalid_token", status=401, detail=f"token {access} expired"),
    )
    mocked.post(TOKEN_URL, payload=token_body(access + "2", refresh=refresh + "2"))
    mocked.get(
        ORDERS,
        status=403,
        payload=envelope(
            None, code="permission_denied", status=403, detail=f"{access}2 may not; {SECRET}"
        ),
    )
    texts: list[str] = []
    async with client() as yeastar:
        with pytest.raises(APIError) as caught:
            await yeastar.get_orders_page()
        texts += [repr(yeastar), str(yeastar.__dict__), repr(yeastar._tokens)]
    texts += [str(caught.value), repr(caught.value), caught.value.message]
    async with CSSSClient("P000270", CSSS_SECRET, base_url=CSSS_BASE) as csss:
        texts.append(repr(csss))
    texts += debug_log.texts
    assert any("token" in t for t in debug_log.texts)  # renewals were logged
    for secret in (SECRET, CSSS_SECRET, access, refresh, access + "2", refresh + "2"):
        for text in texts:
            assert secret not in text


async def test_csss_error_text_never_shows_the_secret_even_when_echoed(
    mocked: aioresponses,
) -> None:
    mocked.post(
        f"{CSSS_BASE}/package/queryOrder",
        payload={
            "code": "1002",
            "success": False,
            "data": None,
            "message": f"sign error: expected secret {CSSS_SECRET}",
        },
    )
    async with CSSSClient("P000270", CSSS_SECRET, base_url=CSSS_BASE) as c:
        with pytest.raises(APIError) as caught:
            await c.get_package_orders_page()
    assert caught.value.code == "1002"
    assert CSSS_SECRET not in str(caught.value)
    assert CSSS_SECRET not in caught.value.message
    assert CSSS_SECRET not in repr(caught.value)
