"""Transport (``_transport``): one session, a concurrency limit, a shared pause, retries.

First through a client against an aioresponses mock: what is retried (5xx, 429, connection
errors, timeouts) and what is not, and the error when the retries run out. Then a Transport
on its own against small servers on 127.0.0.1, the order of each attempt's steps: built
before its slot, rendered inside it after any pause, timed only then; a 429's pause set
before its slot is free; the slot given up while backing off. Last, the pause gate."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from types import SimpleNamespace

import aiohttp
import attrs
import pytest
from aiohttp import web
from aioresponses import aioresponses

from yeastar_csss_async import (
    APIError,
    AuthenticationError,
    LocalCoordinator,
    RateLimitError,
    RetryPolicy,
    TransportConnectionError,
    TransportError,
    _transport,
)
from yeastar_csss_async._coordination import AccountLink, SharedToken
from yeastar_csss_async._redaction import Redactor
from yeastar_csss_async._transport import PauseGate, RawResponse, RequestSpec, Transport

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
from tests._support.servers import serve_app

GUARD = 20.0  # seconds: a hang guard only; every wait here ends well within a second


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


# --- Transport on its own, against small servers on 127.0.0.1 ----------------------------------

QUICK = RetryPolicy(max_attempts=3, initial_backoff=0.001, max_backoff=0.01)


def describe(raw: RawResponse) -> APIError:
    return APIError(f"HTTP {raw.status}", status=raw.status)


def make_transport(
    base_url: str, *, max_concurrency: int = 1, retry: RetryPolicy = QUICK, timeout: float = 10.0
) -> Transport:
    return Transport(
        base_url,
        max_concurrency=max_concurrency,
        retry=retry,
        timeout=timeout,
        session=None,
        user_agent=None,
        redactor=Redactor(),
        describe_error=describe,
    )


@contextlib.asynccontextmanager
async def opened(transport: Transport) -> AsyncIterator[Transport]:
    try:
        yield transport
    finally:
        await transport.aclose()


def get(path: str) -> Callable[[], Awaitable[RequestSpec]]:
    async def build() -> RequestSpec:
        return RequestSpec("GET", path)

    return build


class Server:
    """``/held`` answers once ``release`` is set (``held`` tells it was reached); ``/flaky``
    answers 503 once, then 200, keeping each request's body; every arrival is logged."""

    def __init__(self) -> None:
        self.held = asyncio.Event()
        self.release = asyncio.Event()
        self.arrivals: list[tuple[str, float]] = []
        self.bodies: list[bytes] = []
        self.failed_once = False

    def app(self) -> web.Application:
        async def held(request: web.Request) -> web.StreamResponse:
            self.arrivals.append(("held", time.monotonic()))
            self.held.set()
            await self.release.wait()
            return web.Response(text="held")

        async def flaky(request: web.Request) -> web.StreamResponse:
            self.arrivals.append(("flaky", time.monotonic()))
            self.bodies.append(await request.read())
            if not self.failed_once:
                self.failed_once = True
                return web.Response(status=503, text="down")
            return web.Response(text="ok")

        app = web.Application()
        app.router.add_get("/held", held)
        app.router.add_post("/flaky", flaky)
        return app


async def test_each_attempt_builds_its_request_afresh_before_taking_a_slot() -> None:
    """The only slot is held by a request the server holds: the next request is built all the
    same (a build may need a slot of its own: a token renewal), and built again for its retry."""
    server = Server()
    built = asyncio.Event()
    builds = 0

    async def build() -> RequestSpec:
        nonlocal builds
        builds += 1
        built.set()
        return RequestSpec("POST", "/flaky", data=b"x")

    async with serve_app(server.app()) as url, opened(make_transport(url)) as transport:
        holder = asyncio.ensure_future(transport.send(get("/held"), label="held"))
        await asyncio.wait_for(server.held.wait(), GUARD)  # the holder has the only slot
        queued = asyncio.ensure_future(transport.send(build, label="flaky"))
        await asyncio.wait_for(built.wait(), GUARD)
        assert not holder.done()
        assert builds == 1
        server.release.set()
        assert (await holder).status == 200
        assert (await queued).status == 200
    assert builds == 2  # the retry after the 503 was built again


async def test_each_attempt_renders_its_body_inside_the_slot() -> None:
    """A body rendered at the last moment (a CSSS body signed with the current time) is not
    rendered while the request waits for a slot, and is rendered anew for each attempt."""
    server = Server()
    built = asyncio.Event()
    renders: list[float] = []

    def render() -> bytes:
        renders.append(time.monotonic())
        return f"attempt {len(renders)}".encode()

    async def build() -> RequestSpec:
        built.set()
        return RequestSpec("POST", "/flaky", render=render, data=b"never sent")

    async with serve_app(server.app()) as url, opened(make_transport(url)) as transport:
        holder = asyncio.ensure_future(transport.send(get("/held"), label="held"))
        await asyncio.wait_for(server.held.wait(), GUARD)
        queued = asyncio.ensure_future(transport.send(build, label="flaky"))
        await asyncio.wait_for(built.wait(), GUARD)
        assert renders == []  # waiting for the slot: not rendered yet
        server.release.set()
        await holder
        assert (await queued).status == 200
    assert server.bodies == [b"attempt 1", b"attempt 2"]


async def test_a_pause_is_waited_out_before_rendering_and_before_the_timeout_starts() -> None:
    """Paused for 0.5 s with a 0.2 s timeout and no retries: the request is rendered and sent
    after the pause, and the time paused is not counted against its timeout."""
    server = Server()
    server.failed_once = True  # /flaky answers 200 at once
    renders: list[float] = []

    def render() -> bytes:
        renders.append(time.monotonic())
        return b"{}"

    async def build() -> RequestSpec:
        return RequestSpec("POST", "/flaky", render=render)

    strict = RetryPolicy(max_attempts=1)
    async with (
        serve_app(server.app()) as url,
        opened(make_transport(url, timeout=0.2, retry=strict)) as transport,
    ):
        transport.gate.pause(0.5)
        pause_end = transport.gate.until
        response = await asyncio.wait_for(transport.send(build, label="flaky"), GUARD)
    assert response.status == 200
    assert renders[0] >= pause_end
    assert server.arrivals[0][1] >= pause_end


class NetworkLink:
    """An :class:`AccountLink` (a LocalCoordinator's) whose calls each take a turn of the
    event loop, as a store across the network does: releasing a slot, too."""

    def __init__(self, inner: AccountLink) -> None:
        self.inner = inner

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        await asyncio.sleep(0)
        async with self.inner.slot():
            yield
        await asyncio.sleep(0)  # the release's round trip: the slot is free already

    async def pause(self, seconds: float) -> None:
        await asyncio.sleep(0)
        await self.inner.pause(seconds)

    async def load_token(self) -> SharedToken | None:
        return await self.inner.load_token()

    async def store_token(self, token: SharedToken) -> None:
        await self.inner.store_token(token)

    def renewal(self) -> contextlib.AbstractAsyncContextManager[None]:
        return self.inner.renewal()

    async def aclose(self) -> None:
        await self.inner.aclose()


async def test_a_429_pauses_the_account_before_its_slot_is_free() -> None:
    """Two requests of one account, one slot: the first is answered 429 with Retry-After
    0.3 s. The pause is in place before that request gives its slot up, so the second,
    which queued for the slot meanwhile, is not sent until the pause is over."""
    first_in = asyncio.Event()
    answer_429 = asyncio.Event()
    limited_at: list[float] = []
    arrivals: list[float] = []

    async def orders(request: web.Request) -> web.StreamResponse:
        if not limited_at:
            limited_at.append(0.0)
            first_in.set()
            await answer_429.wait()
            limited_at[0] = time.monotonic()
            return web.Response(status=429, headers={"Retry-After": "0.3"})
        arrivals.append(time.monotonic())
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/orders", orders)
    built = asyncio.Event()

    async def build() -> RequestSpec:
        built.set()
        return RequestSpec("GET", "/orders")

    link = NetworkLink(LocalCoordinator().link("acct", max_concurrency=1, lease_seconds=30))
    async with serve_app(app) as url, opened(make_transport(url, max_concurrency=4)) as transport:
        transport.link = link
        first = asyncio.ensure_future(transport.send(get("/orders"), label="first"))
        await asyncio.wait_for(first_in.wait(), GUARD)  # it holds the account's only slot
        second = asyncio.ensure_future(transport.send(build, label="second"))
        await asyncio.wait_for(built.wait(), GUARD)  # and the second waits for it
        answer_429.set()
        responses = await asyncio.wait_for(asyncio.gather(first, second), GUARD)
    assert [r.status for r in responses] == [200, 200]
    assert len(arrivals) == 2  # the first one's retry, and the second
    assert min(arrivals) >= limited_at[0] + 0.3


class BacksOffUntil(Transport):
    """A transport whose backoff, instead of a random wait, lasts until ``over`` is set."""

    over: asyncio.Event

    async def _backoff(self, delay: float) -> None:
        await asyncio.wait_for(self.over.wait(), GUARD)
        await super()._backoff(0.0)


async def test_a_request_backing_off_gives_its_slot_to_the_next() -> None:
    """One slot; the first request is answered 503 and backs off until the request queued
    behind it has reached the server, which it can only do if the slot was given up."""
    held = asyncio.Event()
    hold_first = asyncio.Event()
    second_arrived = asyncio.Event()
    order: list[str] = []

    async def first_then_retry(request: web.Request) -> web.StreamResponse:
        order.append("first")
        if order.count("first") == 1:
            held.set()
            await hold_first.wait()
            return web.Response(status=503, text="down")
        return web.Response(text="ok")

    async def second(request: web.Request) -> web.StreamResponse:
        order.append("second")
        second_arrived.set()
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/first", first_then_retry)
    app.router.add_get("/second", second)
    built = asyncio.Event()

    async def build_second() -> RequestSpec:
        built.set()
        return RequestSpec("GET", "/second")

    async with serve_app(app) as url:
        transport = BacksOffUntil(
            url,
            max_concurrency=1,
            retry=QUICK,
            timeout=10.0,
            session=None,
            user_agent=None,
            redactor=Redactor(),
            describe_error=describe,
        )
        transport.over = second_arrived
        async with opened(transport):
            first = asyncio.ensure_future(transport.send(get("/first"), label="first"))
            await asyncio.wait_for(held.wait(), GUARD)  # the first has the only slot
            queued = asyncio.ensure_future(transport.send(build_second, label="second"))
            await asyncio.wait_for(built.wait(), GUARD)  # the second waits for it
            hold_first.set()
            responses = await asyncio.wait_for(asyncio.gather(first, queued), GUARD)
    assert [r.status for r in responses] == [200, 200]
    assert order == ["first", "second", "first"]
    assert transport.stats.retries == 1


async def test_an_invalid_url_fails_at_once_without_a_retry(mocked: aioresponses) -> None:
    url = "https://transport.test/x"
    mocked.get(url, exception=aiohttp.InvalidURL(url), repeat=True)
    many = RetryPolicy(max_attempts=5, initial_backoff=0.001)
    async with opened(make_transport("https://transport.test", retry=many)) as transport:
        with pytest.raises(TransportConnectionError, match="after 1 attempt"):
            await transport.send(get("/x"), label="GET /x")
    assert transport.stats.requests == 1
    assert transport.stats.retries == 0


async def test_stats_count_requests_retries_and_429s(mocked: aioresponses) -> None:
    url = "https://transport.test/x"
    mocked.get(url, status=429, headers={"Retry-After": "0"}, body="{}")
    mocked.get(url, status=503, body="down")
    mocked.get(url, status=200, body="ok")
    async with opened(make_transport("https://transport.test")) as transport:
        response = await transport.send(get("/x"), label="GET /x")
    assert response.status == 200
    assert attrs.asdict(transport.stats) == {"requests": 3, "retries": 2, "rate_limited": 1}


# --- the pause gate ------------------------------------------------------------------------


def test_a_pause_is_never_shortened() -> None:
    gate = PauseGate()
    assert gate.until <= time.monotonic()  # not paused
    gate.pause(30)
    long = gate.until
    gate.pause(1)  # a shorter ask later does not end the longer pause
    assert gate.until == long
    gate.pause(60)
    assert gate.until > long


async def test_wait_returns_without_suspending_unless_paused() -> None:
    gate = PauseGate()
    waiting = gate.wait()
    with pytest.raises(StopIteration):
        waiting.send(None)  # ran to its end in one step: it never slept
    gate.pause(30)
    waiting = gate.wait()
    try:
        assert waiting.send(None) is not None  # suspended: sleeping out the pause
    finally:
        waiting.close()


def test_a_pause_extended_while_waiting_is_waited_out_whole(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A second 429 lengthens the pause while a request sleeps out the first: the request
    sleeps again until the longer pause ends (a fake clock: no time passes for real)."""
    clock = [100.0]
    slept: list[float] = []
    gate = PauseGate()

    async def sleep(delay: float) -> None:
        slept.append(delay)
        if len(slept) == 1:
            gate.pause(5.0)  # from t=100: until 105
        clock[0] += delay

    monkeypatch.setattr(_transport, "time", SimpleNamespace(monotonic=lambda: clock[0]))
    monkeypatch.setattr(_transport, "asyncio", SimpleNamespace(sleep=sleep))
    gate.pause(1.0)  # until 101
    with pytest.raises(StopIteration):
        gate.wait().send(None)
    assert slept == [1.0, 4.0]
    assert clock[0] == gate.until == 105.0
