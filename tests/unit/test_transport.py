"""Transport (``_transport``): one session, a concurrency limit, a shared pause, retries.

First through a client against an aioresponses mock: what is retried (5xx, 429, connection
errors, timeouts) and what is not, and the error when the retries run out."""

from __future__ import annotations

import aiohttp
import pytest
from aioresponses import aioresponses

from yeastar_csss_async import (
    APIError,
    AuthenticationError,
    RateLimitError,
    RetryPolicy,
    TransportError,
)

from tests._support.mocked import (
    BASE,
    ORDERS,
    TOKEN_URL,
    client,
    envelope,
    orders_page,
    requests_to,
    token_body,
)


async def test_default_user_agent_names_the_library(mocked: aioresponses) -> None:
    mocked.post(TOKEN_URL, payload=token_body())
    mocked.get(ORDERS, payload=orders_page([]))
    async with client() as yeastar:
        await yeastar.get_orders_page()
    for call in requests_to(mocked, "POST", TOKEN_URL) + requests_to(mocked, "GET", BASE):
        assert call.kwargs["headers"]["User-Agent"].startswith("yeastar-csss-async/")


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
