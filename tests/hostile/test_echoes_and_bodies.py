"""Hostile servers that echo secrets back, and bodies no parser should choke on.

Every library error must keep secrets out of its text, repr, attributes, traceback and its
whole ``__cause__``/``__context__`` chain; every bad body must give ``ResponseFormatError``
with a path and a bounded quote, never a raw Python error.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable
from urllib.parse import quote, quote_plus

import pytest
from aiohttp import web

from yeastar_csss_async import (
    CSSSClient,
    ResponseFormatError,
    RetryPolicy,
    YeastarCSSSError,
    YeastarPartnerClient,
)

from tests._support.logs import ListHandler
from tests._support.servers import serve_app, serve_raw

FAST = RetryPolicy(max_attempts=2, initial_backoff=0.001, max_backoff=0.01)
GUARD = 20.0  # seconds, a hang guard only
SECRET = "s3cr/t+key=&ü~Zq9"  # characters that every encoding writes differently
CSSS_SECRET = "csss/s3cret+=&é"
TOKEN = "tok-" + "Tq7" * 40  # 124 characters: longer than any quoted snippet
REFRESH = "ref-" + "Rz5" * 40
ORDERS = "/order/openapi/order/v1/page"

Answer = Callable[[web.Request], Awaitable[web.StreamResponse]]


def secret_forms(secret: str) -> list[str]:
    raw = secret.encode()
    return [
        secret,
        quote(secret, safe=""),
        quote_plus(secret),
        json.dumps(secret)[1:-1],
        base64.b64encode(raw).decode(),
    ]


def fragments(secret: str, size: int = 12) -> set[str]:
    """Every run of ``size`` characters of the secret: a secret cut in half still shows."""
    return {secret[i : i + size] for i in range(len(secret) - size + 1)} or {secret}


def chain(error: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def texts_of(error: BaseException) -> str:
    parts = ["".join(traceback.format_exception(error))]
    for link in chain(error):
        parts += [str(link), repr(link), repr(link.args)]
        parts += [f"{k}={v!r}" for k, v in vars(link).items()]
        parts += [repr(getattr(link, "request_info", ""))]
    return "\n".join(parts)


def assert_clean(text: str, *secrets: str) -> None:
    for secret in secrets:
        for form in secret_forms(secret):
            for piece in fragments(form):
                assert piece not in text, f"{piece!r} of a secret leaked: {text[:2000]}"


def token_app(answer: Answer, *, token_answer: Answer | None = None) -> web.Application:
    async def token(request: web.Request) -> web.StreamResponse:
        if token_answer is not None:
            return await token_answer(request)
        return web.json_response(
            {
                "code": "success",
                "status": 200,
                "requestId": "r" * 32,
                "result": {"token": TOKEN, "refreshToken": REFRESH, "expiresIn": "1800"},
            }
        )

    app = web.Application()
    app.router.add_post("/auth/openapi/v1/oauth/token", token)
    app.router.add_get(ORDERS, answer)
    return app


async def failure_of(app: web.Application) -> YeastarCSSSError:
    async with (
        serve_app(app) as url,
        YeastarPartnerClient("client-id", SECRET, base_url=url, retry=FAST) as client,
    ):
        with pytest.raises(YeastarCSSSError) as caught:
            await asyncio.wait_for(client.get_orders_page(), GUARD)
        assert SECRET not in repr(client)
    return caught.value


def echo(status: int, shape: Callable[[str, str], object]) -> Answer:
    """An answer that repeats the request's Authorization header, in ``shape``."""

    async def answer(request: web.Request) -> web.StreamResponse:
        header = request.headers.get("Authorization", "")
        document = shape(header, header.removeprefix("Bearer "))
        if isinstance(document, str):
            return web.Response(status=status, text=document)
        return web.json_response(document, status=status)

    return answer


ECHOES = {
    "in code and requestId": echo(
        403,
        lambda h, t: {
            "code": h,
            "requestId": t,
            "detailMessage": f"denied for {quote(t)}",
            "status": 403,
        },
    ),
    "in a 200 error envelope": echo(
        200,
        lambda h, t: {
            "code": f"bad_{t}",
            "requestId": quote_plus(t),
            "detailMessage": h,
            "status": 200,
        },
    ),
    "at the start of an html body": echo(500, lambda h, t: f"<html>{h} {quote(t)}</html>"),
    "cut by the snippet": echo(500, lambda h, t: "x" * 60 + t),
    "in a field value": echo(
        200,
        lambda h, t: {
            "code": "success",
            "status": 200,
            "result": {"total": 1, "results": [{"id": "1", "createTime": t}]},
        },
    ),
    "in a total": echo(
        200, lambda h, t: {"code": "success", "status": 200, "result": {"total": t, "results": []}}
    ),
    "as non-json in a 200": echo(200, lambda h, t: f"{t} not json"),
}


@pytest.mark.parametrize("name", list(ECHOES))
async def test_tokens_echoed_by_the_server_never_show_in_errors_or_logs(
    name: str,
    debug_log: ListHandler,
) -> None:
    error = await failure_of(token_app(ECHOES[name]))
    assert_clean(texts_of(error), TOKEN, REFRESH, SECRET)
    assert_clean("\n".join(debug_log.texts), TOKEN, REFRESH, SECRET)


async def test_a_token_endpoint_echoing_the_form_never_shows_the_secret() -> None:
    async def echo_form(request: web.Request) -> web.StreamResponse:
        form = (await request.read()).decode()  # client_secret=s3cr%2Ft%2Bkey...
        return web.Response(status=400, text=f"bad request: {form}")

    async def never(request: web.Request) -> web.StreamResponse:
        raise AssertionError("no token, no call")

    error = await failure_of(token_app(never, token_answer=echo_form))
    assert "client_id" in str(error)  # the body is quoted ...
    assert_clean(texts_of(error), SECRET)  # ... with the secret masked in every form


async def test_an_aiohttp_error_carrying_the_authorization_header_is_not_chained() -> None:
    """A malformed status line makes aiohttp raise ClientResponseError, whose request_info
    holds the request headers, Authorization included."""
    garbage = b"HTTP/1.1 2OO OK\r\nContent-Length: 0\r\n\r\n"
    async with (
        serve_raw(garbage) as url,
        CSSSClient("P1", CSSS_SECRET, base_url=url, retry=FAST) as client,
    ):
        with pytest.raises(YeastarCSSSError) as caught:
            await asyncio.wait_for(client.get_package_orders_page(), GUARD)
    assert chain(caught.value) == [caught.value]
    assert_clean(texts_of(caught.value), CSSS_SECRET)


async def test_the_csss_secret_echoed_in_any_form_never_shows() -> None:
    async def echo_body(request: web.Request) -> web.StreamResponse:
        body = await request.text()
        return web.json_response(
            {
                "code": quote(CSSS_SECRET),
                "success": False,
                "message": f"{body} {json.dumps(CSSS_SECRET)}",
            }
        )

    app = web.Application()
    app.router.add_post("/package/queryOrder", echo_body)
    async with (
        serve_app(app) as url,
        CSSSClient("P1", CSSS_SECRET, base_url=url, retry=FAST) as client,
    ):
        with pytest.raises(YeastarCSSSError) as caught:
            await client.get_package_orders_page()
    assert_clean(texts_of(caught.value), CSSS_SECRET)


@pytest.mark.parametrize("make", [YeastarPartnerClient, CSSSClient])
def test_a_secret_that_cannot_be_encoded_is_a_value_error_that_does_not_quote_it(
    make: Callable[[str, str], object],
) -> None:
    bad = "ab\udcffcd-secret-from-a-bad-environment"
    with pytest.raises(ValueError, match="cannot be encoded") as caught:
        make("id", bad)
    text = texts_of(caught.value)
    assert "secret-from-a-bad" not in text
    assert caught.value.__context__ is None
    assert caught.value.__cause__ is None


# --- 9. bad bodies give ResponseFormatError with a path, never a raw Python error -----------


def page_with(**result: object) -> bytes:
    document = {
        "code": "success",
        "status": 200,
        "result": {"total": 1, "pageNo": 1, "pageSize": 25, "results": [{"id": "1"}], **result},
    }
    return json.dumps(document).encode()


BAD_BODIES: dict[str, tuple[bytes, str]] = {
    "json nested 100k deep": (
        b'{"code":"success","result":' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        "",
    ),
    "a total of 400 digits": (page_with(total=int("9" * 400)), "result.total"),
    "a total of superscript two": (page_with(total="²"), "result.total"),
    "a total of 5000 digits in a string": (page_with(total="7" * 5000), "result.total"),
    "a total in arabic-indic digits": (page_with(total="١٢٣"), "result.total"),
    "a page number in arabic-indic digits": (page_with(pageNo="٣"), "result.pageNo"),
    "a time in arabic-indic digits": (
        page_with(results=[{"id": "1", "createTime": "١٧٠٠٠٠٠٠٠٠٠٠٠"}]),
        "result.results[0].createTime",
    ),
    "money in arabic-indic digits": (
        page_with(results=[{"id": "1", "totalAmount": "١٣٠.٠٠"}]),
        "result.results[0].totalAmount",
    ),
    "a 5 MB value": (
        page_with(results=[{"id": "1", "createTime": "x" * 5_000_000}]),
        "result.results[0].createTime",
    ),
    "a value nested 500 deep": (
        b'{"code":"success","result":{"total":1,"results":[{"id":"1","createTime":'
        + b"[" * 500
        + b"]" * 500
        + b"}]}}",
        "result.results[0].createTime",
    ),
    "an integer literal of 5000 digits": (
        b'{"code":"success","result":{"total":' + b"7" * 5000 + b',"results":[]}}',
        "",
    ),
}


@pytest.mark.parametrize("name", list(BAD_BODIES))
async def test_bad_bodies_are_format_errors_with_a_path_and_a_short_quote(name: str) -> None:
    body, path = BAD_BODIES[name]

    async def answer(request: web.Request) -> web.StreamResponse:
        return web.Response(body=body, content_type="application/json")

    error = await failure_of(token_app(answer))
    assert isinstance(error, ResponseFormatError), repr(error)[:300]
    assert error.path == path
    assert len(str(error)) < 300, str(error)[:400]
    assert error.__cause__ is None
    assert error.__context__ is None


async def test_a_product_line_id_with_a_huge_exponent_is_refused_not_expanded() -> None:
    """``1e100000`` is a valid JSON number; turning it into a 100001-digit int id is not."""

    async def lines(request: web.Request) -> web.StreamResponse:
        return web.Response(
            content_type="application/json",
            text=('{"code":"success","status":200,"result":[{"productId":1e100000,"name":"x"}]}'),
        )

    app = token_app(lines)
    app.router.add_get("/pricing/openapi/purchase/v1/product_list", lines)
    async with (
        serve_app(app) as url,
        YeastarPartnerClient("client-id", SECRET, base_url=url, retry=FAST) as client,
    ):
        with pytest.raises(ResponseFormatError) as caught:
            await client.list_subscription_products()
    assert caught.value.path == "result[0].productId"


async def collect(iterator: AsyncIterator[object]) -> list[object]:
    return [item async for item in iterator]


async def test_no_secret_in_logs_at_any_level_during_hostile_runs(
    debug_log: ListHandler,
) -> None:
    logging.getLogger("yeastar_csss_async").setLevel(logging.DEBUG)
    for answer in ECHOES.values():
        await failure_of(token_app(answer))
    assert debug_log.texts  # requests and retries were logged ...
    assert_clean("\n".join(debug_log.texts), TOKEN, REFRESH, SECRET)  # ... without secrets
