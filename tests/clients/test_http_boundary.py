"""Client behaviour at the HTTP boundary, with aioresponses (no server)."""

from __future__ import annotations

import json
import re
from typing import Any

import aiohttp
import pytest
from aioresponses import CallbackResult, aioresponses
from yarl import URL

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
    sign_csss_body,
)

from tests._support.clients import FAST_RETRY
from tests._support.logs import ListHandler
from tests._support.seeds import seed_text

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


async def test_first_call_requests_a_token_with_client_credentials_form(
    mocked: aioresponses,
) -> None:
    mocked.post(TOKEN_URL, payload=token_body())
    mocked.get(ORDERS, payload=orders_page(["1"]))
    async with client(user_agent="MyApp/1.0") as yeastar:
        page = await yeastar.get_orders_page(1, 25)
    assert [o.id for o in page.items] == ["1"]
    (token_call,) = requests_to(mocked, "POST", TOKEN_URL)
    assert token_call.kwargs["data"] == {
        "grant_type": "pp_credentials",
        "client_id": "client-id",
        "client_secret": SECRET,
    }
    (orders_call,) = requests_to(mocked, "GET", f"{BASE}/order")
    assert orders_call.kwargs["headers"]["Authorization"] == "Bearer tok-1"
    assert orders_call.kwargs["headers"]["User-Agent"] == "MyApp/1.0"
    assert orders_call.kwargs["params"] == {"pageNo": "1", "pageSize": "25"}


async def test_default_user_agent_names_the_library(mocked: aioresponses) -> None:
    mocked.post(TOKEN_URL, payload=token_body())
    mocked.get(ORDERS, payload=orders_page([]))
    async with client() as yeastar:
        await yeastar.get_orders_page()
    for call in requests_to(mocked, "POST", TOKEN_URL) + requests_to(mocked, "GET", BASE):
        assert call.kwargs["headers"]["User-Agent"].startswith("yeastar-csss-async/")


async def test_token_is_reused_across_calls(mocked: aioresponses) -> None:
    mocked.post(TOKEN_URL, payload=token_body(expires=1800))  # an int works too
    mocked.get(ORDERS, payload=orders_page(["1"]), repeat=True)
    async with client() as yeastar:
        for _ in range(3):
            await yeastar.get_orders_page()
    assert len(requests_to(mocked, "POST", TOKEN_URL)) == 1


async def test_401_renews_with_refresh_token_and_replays_once(mocked: aioresponses) -> None:
    mocked.post(TOKEN_URL, payload=token_body("tok-1", refresh="ref-1"))
    mocked.get(ORDERS, status=401, payload=envelope(None, code="invalid_token", status=401))
    mocked.post(TOKEN_URL, payload=token_body("tok-2", refresh="ref-2"))
    mocked.get(ORDERS, payload=orders_page(["9"]))
    async with client() as yeastar:
        page = await yeastar.get_orders_page()
    assert [o.id for o in page.items] == ["9"]
    token_calls = requests_to(mocked, "POST", TOKEN_URL)
    assert [c.kwargs["data"]["grant_type"] for c in token_calls] == [
        "pp_credentials",
        "refresh_token",
    ]
    assert token_calls[1].kwargs["data"]["refresh_token"] == "ref-1"
    auths = [c.kwargs["headers"]["Authorization"] for c in requests_to(mocked, "GET", BASE)]
    assert auths == ["Bearer tok-1", "Bearer tok-2"]


async def test_failed_refresh_falls_back_to_the_credentials(mocked: aioresponses) -> None:
    mocked.post(TOKEN_URL, payload=token_body("tok-1"))
    mocked.get(ORDERS, status=401, payload=envelope(None, code="invalid_token", status=401))
    mocked.post(
        TOKEN_URL, status=401, payload=envelope(None, code="invalid_refresh_token", status=401)
    )
    mocked.post(TOKEN_URL, payload=token_body("tok-3"))
    mocked.get(ORDERS, payload=orders_page(["1"]))
    async with client() as yeastar:
        await yeastar.get_orders_page()
    grants = [c.kwargs["data"]["grant_type"] for c in requests_to(mocked, "POST", TOKEN_URL)]
    assert grants == ["pp_credentials", "refresh_token", "pp_credentials"]


async def test_second_401_after_renewal_is_an_authentication_error(
    mocked: aioresponses,
) -> None:
    mocked.post(TOKEN_URL, payload=token_body("tok-1"), repeat=True)
    mocked.get(
        ORDERS,
        status=401,
        repeat=True,
        payload=envelope(None, code="invalid_token", status=401, detail="bad token"),
    )
    async with client() as yeastar:
        with pytest.raises(AuthenticationError) as caught:
            await yeastar.get_orders_page()
    assert caught.value.status == 401
    assert caught.value.code == "invalid_token"
    assert caught.value.request_id == "a" * 32
    assert len(requests_to(mocked, "GET", BASE)) == 2  # one replay, no more


async def test_wrong_credentials_are_an_authentication_error(mocked: aioresponses) -> None:
    mocked.post(
        TOKEN_URL,
        status=401,
        payload=envelope(
            None, code="invalid_client", status=401, detail=f"client secret {SECRET} is wrong"
        ),
    )
    async with client() as yeastar:
        with pytest.raises(AuthenticationError) as caught:
            await yeastar.get_orders_page()
    assert caught.value.code == "invalid_client"
    assert SECRET not in str(caught.value)  # even when the server echoes it
    assert not requests_to(mocked, "GET", BASE)


async def test_5xx_is_retried_then_succeeds(mocked: aioresponses) -> None:
    mocked.post(TOKEN_URL, payload=token_body())
    mocked.get(
        ORDERS, status=503, body="<html>Service Unavailable</html>", content_type="text/html"
    )
    mocked.get(ORDERS, status=500, payload=envelope(None, code="internal_error", status=500))
    mocked.get(ORDERS, payload=orders_page(["1"]))
    async with client() as yeastar:
        page = await yeastar.get_orders_page()
        assert yeastar.stats.retries == 2
    assert [o.id for o in page.items] == ["1"]


async def test_5xx_that_outlasts_the_retries_is_an_api_error_with_its_code(
    mocked: aioresponses,
) -> None:
    mocked.post(TOKEN_URL, payload=token_body())
    mocked.get(
        ORDERS,
        status=500,
        repeat=True,
        payload=envelope(None, code="internal_error", status=500, detail="boom"),
    )
    async with client(retry=RetryPolicy(max_attempts=3, initial_backoff=0.001)) as yeastar:
        with pytest.raises(APIError) as caught:
            await yeastar.get_orders_page()
    assert (caught.value.status, caught.value.code) == (500, "internal_error")
    assert caught.value.request_id == "a" * 32
    assert len(requests_to(mocked, "GET", BASE)) == 3


async def test_429_that_outlasts_the_retries_is_a_rate_limit_error(
    mocked: aioresponses,
) -> None:
    mocked.post(TOKEN_URL, payload=token_body())
    mocked.get(
        ORDERS,
        status=429,
        repeat=True,
        headers={"Retry-After": "0.01"},
        payload=envelope(None, code="too_many_requests", status=429),
    )
    async with client(retry=RetryPolicy(max_attempts=2, initial_backoff=0.001)) as yeastar:
        with pytest.raises(RateLimitError) as caught:
            await yeastar.get_orders_page()
    assert caught.value.status == 429
    assert caught.value.retry_after == pytest.approx(0.01)


async def test_other_4xx_is_not_retried(mocked: aioresponses) -> None:
    mocked.post(TOKEN_URL, payload=token_body())
    mocked.get(
        ORDERS,
        status=403,
        repeat=True,
        payload=envelope(None, code="permission_denied", status=403),
    )
    async with client() as yeastar:
        with pytest.raises(APIError) as caught:
            await yeastar.get_orders_page()
    assert caught.value.code == "permission_denied"
    assert not isinstance(caught.value, AuthenticationError)
    assert len(requests_to(mocked, "GET", BASE)) == 1


async def test_connection_errors_outlasting_retries_are_transport_errors(
    mocked: aioresponses,
) -> None:
    mocked.post(TOKEN_URL, payload=token_body())
    mocked.get(ORDERS, exception=aiohttp.ServerDisconnectedError(), repeat=True)
    async with client(retry=RetryPolicy(max_attempts=3, initial_backoff=0.001)) as yeastar:
        with pytest.raises(TransportError) as caught:
            await yeastar.get_orders_page()
    # Named in the text, but not chained: aiohttp's errors carry the request headers.
    assert "ServerDisconnectedError" in str(caught.value)
    assert caught.value.__cause__ is None
    assert caught.value.__context__ is None
    assert len(requests_to(mocked, "GET", BASE)) == 3


async def test_timeouts_are_retried(mocked: aioresponses) -> None:
    mocked.post(TOKEN_URL, payload=token_body())
    mocked.get(ORDERS, exception=TimeoutError())
    mocked.get(ORDERS, payload=orders_page(["1"]))
    async with client() as yeastar:
        page = await yeastar.get_orders_page()
    assert len(page.items) == 1


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


async def test_a_task_that_reused_someone_elses_renewal_may_still_renew_once_itself(
    mocked: aioresponses,
) -> None:
    """While our request is on the wire with tok-1, another task renews to tok-2; our 401
    reuses tok-2 (no renewal of our own), and tok-2 turns out revoked too. This request never
    re-authenticated itself, so it renews once (tok-3) and succeeds."""
    mocked.post(TOKEN_URL, payload=token_body("tok-1", refresh="ref-1"))
    async with client() as yeastar:

        def other_task_renews(url: URL, **kwargs: Any) -> CallbackResult:
            yeastar._tokens._access = "tok-2"
            return CallbackResult(
                status=401, payload=envelope(None, code="invalid_token", status=401)
            )

        mocked.get(ORDERS, callback=other_task_renews)
        mocked.get(ORDERS, status=401, payload=envelope(None, code="invalid_token", status=401))
        mocked.post(TOKEN_URL, payload=token_body("tok-3", refresh="ref-3"))
        mocked.get(ORDERS, payload=orders_page(["7"]))
        page = await yeastar.get_orders_page()
    assert [o.id for o in page.items] == ["7"]
    auths = [c.kwargs["headers"]["Authorization"] for c in requests_to(mocked, "GET", BASE)]
    assert auths == ["Bearer tok-1", "Bearer tok-2", "Bearer tok-3"]
    assert len(requests_to(mocked, "POST", TOKEN_URL)) == 2  # tok-1, and our one renewal
