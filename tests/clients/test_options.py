"""Per-call options (``with_options``), the one-event-loop rule and ``from_env()``, against
the sandbox on 127.0.0.1."""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from yeastar_csss_async import (
    APIError,
    ConfigurationError,
    CSSSClient,
    RetryPolicy,
    TransportTimeoutError,
    YeastarCSSSError,
    YeastarPartnerClient,
)
from yeastar_csss_async.sandbox import (
    SANDBOX_ACCESS_CODE,
    SANDBOX_CLIENT_ID,
    SANDBOX_CLIENT_SECRET,
    SANDBOX_SECRET,
    Sandbox,
    SandboxConfig,
)

from tests._support.clients import FAST_RETRY, client_side_tasks

STRICT = RetryPolicy(max_attempts=1)


@pytest.fixture
def sandbox_config() -> SandboxConfig:
    return SandboxConfig(orders=30, products_per_line=10, package_orders=20)


class OrderLog:
    """Order pages the sandbox was asked for; ``hold`` / ``answer`` per page number."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.pages: list[int] = []
        self.hold: dict[int, asyncio.Event] = {}
        self.answer: dict[int, web.Response] = {}
        sandbox.intercept = self._intercept

    async def _intercept(self, request: web.Request) -> web.StreamResponse | None:
        if "/order/" not in request.path:
            return None
        page_no = int(request.query.get("pageNo", "1"))
        self.pages.append(page_no)
        if page_no in self.hold:
            await self.hold[page_no].wait()
        if page_no in self.answer:
            answer = self.answer[page_no]
            return web.Response(
                status=answer.status, text=answer.text, headers=dict(answer.headers)
            )
        return None


@pytest.fixture
def log(sandbox: Sandbox) -> OrderLog:
    return OrderLog(sandbox)


def sandbox_client(sandbox: Sandbox, **options: Any) -> YeastarPartnerClient:
    options.setdefault("retry", FAST_RETRY)
    return YeastarPartnerClient(
        SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET, base_url=sandbox.base_url, **options
    )


async def until(condition: Any, what: str) -> None:
    """Wait (bounded) until ``condition()`` holds."""
    async with asyncio.timeout(10):
        while not condition():  # noqa: ASYNC110 - a counter, nothing to wait on
            await asyncio.sleep(0.005)


# --- with_options -----------------------------------------------------------------------------


async def test_a_view_shares_the_token_one_token_request_in_total(
    sandbox: Sandbox,
    yeastar: YeastarPartnerClient,
) -> None:
    view = yeastar.with_options(timeout=5)
    await view.get_orders_page()  # the view asks first
    await yeastar.get_orders_page()
    await yeastar.with_options(retry=STRICT).get_orders_page()
    assert sandbox.stats.token_requests == 1
    assert yeastar.token_requests == view.token_requests == 1


async def test_a_view_shares_the_session(sandbox: Sandbox) -> None:
    started: list[str] = []

    async def on_start(session: Any, context: Any, params: Any) -> None:
        started.append(params.url.path)

    trace = aiohttp.TraceConfig()
    trace.on_request_start.append(on_start)
    async with aiohttp.ClientSession(trace_configs=[trace]) as session:
        async with sandbox_client(sandbox, session=session) as client:
            async with client.with_options(timeout=3) as view:
                await view.get_orders_page()
            await client.get_orders_page()
            assert len(started) == 3  # token, the view's page, the client's page: one session
        assert not session.closed


async def test_a_view_and_its_client_share_the_concurrency_limit(sandbox: Sandbox) -> None:
    sandbox.config.latency = 0.02
    async with sandbox_client(sandbox, max_concurrency=2) as client:
        view = client.with_options(timeout=5)
        await client.get_orders_page()  # the token first, so that only pages overlap
        calls = [c.get_orders_page(page_no=n % 3 + 1) for c in (client, view) for n in range(6)]
        await asyncio.gather(*calls)
    assert sandbox.stats.peak_in_flight == 2  # not 4: one set of slots for both


async def test_a_view_shares_the_stats_and_the_429_pause(
    sandbox: Sandbox,
    yeastar: YeastarPartnerClient,
    log: OrderLog,
) -> None:
    await yeastar.get_orders_page()  # the token is cached: a request needs no other I/O
    throttled = web.Response(status=429, text="{}", headers={"Retry-After": "30"})
    log.answer[9] = throttled
    view = yeastar.with_options(retry=RetryPolicy(max_attempts=3, max_retry_after=60))
    paused = asyncio.ensure_future(view.get_orders_page(page_no=9))
    await until(lambda: yeastar.stats.rate_limited == 1, "the view's 429")  # shared stats
    sent = yeastar.stats.requests
    other = asyncio.ensure_future(yeastar.get_orders_page(page_no=2))
    for _ in range(50):  # far more steps than a request needs to be counted and sent
        await asyncio.sleep(0)
    assert yeastar.stats.requests == sent  # the client waits out the view's pause
    assert 2 not in log.pages
    for task in (paused, other):
        task.cancel()
    await asyncio.gather(paused, other, return_exceptions=True)


async def test_a_views_timeout_applies_to_its_calls_only(
    yeastar: YeastarPartnerClient,
    log: OrderLog,
) -> None:
    release = asyncio.Event()
    log.hold[2] = log.hold[3] = release
    await yeastar.get_orders_page()
    slow = asyncio.ensure_future(yeastar.get_orders_page(page_no=2))  # timeout 10 s
    view = yeastar.with_options(timeout=0.2, retry=STRICT)
    with pytest.raises(TransportTimeoutError) as caught:
        await asyncio.wait_for(view.get_orders_page(page_no=3), 5)  # the client's is 10 s
    assert isinstance(caught.value, TimeoutError)
    assert "1 attempt" in str(caught.value)
    assert not slow.done()  # held as long, the client's own call is still waiting
    release.set()
    assert (await slow).page_no == 2


async def test_a_views_retry_policy_applies_to_its_calls_and_iterators_only(
    yeastar: YeastarPartnerClient,
    log: OrderLog,
) -> None:
    log.answer[1] = web.Response(status=503, text="down")
    strict = yeastar.with_options(retry=STRICT)
    with pytest.raises(APIError) as caught:
        await strict.get_orders_page()
    assert caught.value.status == 503
    assert log.pages == [1]  # one attempt
    log.pages.clear()
    with pytest.raises(APIError):
        [o async for o in strict.iter_orders(page_size=10)]
    assert log.pages == [1]
    log.pages.clear()
    with pytest.raises(APIError):
        await yeastar.get_orders_page()
    assert log.pages == [1] * FAST_RETRY.max_attempts  # the client's own policy
    assert client_side_tasks() == set()


async def test_leaving_a_views_block_closes_nothing_closing_the_client_closes_the_view(
    sandbox: Sandbox,
) -> None:
    client = sandbox_client(sandbox)
    async with client.with_options(timeout=5) as view:
        await view.get_orders_page()
    await view.aclose()
    assert (await client.get_orders_page()).total == 30
    assert (await view.get_orders_page()).total == 30
    nested = view.with_options(retry=STRICT)
    await client.aclose()
    for closed in (view, nested, client):
        with pytest.raises(RuntimeError, match="closed"):
            await closed.get_orders_page()


async def test_a_csss_view_works_and_shares_the_stats(sandbox: Sandbox, csss: CSSSClient) -> None:
    view = csss.with_options(timeout=5, retry=STRICT)
    assert isinstance(view, CSSSClient)
    assert view is not csss
    page = await view.get_package_orders_page(page_size=5)
    assert page.total == 20
    assert [o.order_code async for o in view.iter_package_orders(page_size=7)] == [
        r["orderCode"] for r in sandbox.package_orders
    ]
    assert csss.stats.requests == 4


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"timeout": 0}, ValueError),
        ({"timeout": -1}, ValueError),
        ({"timeout": math.nan}, ValueError),
        ({"timeout": math.inf}, ValueError),
        ({"timeout": True}, ValueError),
        ({"timeout": "5"}, ValueError),
        ({"retry": 3}, TypeError),
        ({"retry": {"max_attempts": 1}}, TypeError),
    ],
)
def test_with_options_refuses_bad_values(options: dict[str, Any], error: type[Exception]) -> None:
    client = YeastarPartnerClient("id", "secret")
    with pytest.raises(error):
        client.with_options(**options)


# --- one event loop ---------------------------------------------------------------------------


def test_a_client_used_in_a_second_asyncio_run_fails_at_once_with_a_clear_error() -> None:
    async def first() -> SimpleNamespace:
        async with (
            Sandbox(SandboxConfig(orders=5, package_orders=5)) as sandbox,
            aiohttp.ClientSession() as session,
        ):
            yeastar = YeastarPartnerClient(
                SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET, base_url=sandbox.base_url, session=session
            )
            csss = CSSSClient(
                SANDBOX_ACCESS_CODE, SANDBOX_SECRET, base_url=sandbox.base_url, session=session
            )
            await yeastar.get_orders_page()
            await csss.get_package_orders_page()
            return SimpleNamespace(yeastar=yeastar, csss=csss)

    clients = asyncio.run(first())

    async def second() -> list[str]:
        texts = []
        for call in (
            clients.yeastar.get_orders_page(),
            clients.yeastar.with_options(timeout=1).get_orders_page(),
            clients.csss.get_package_orders_page(),
            _drain(clients.yeastar.iter_orders()),
            _drain(clients.csss.iter_package_order_pages()),
        ):
            with pytest.raises(RuntimeError) as caught:
                await asyncio.wait_for(call, 5)  # at once: no hang
            texts.append(str(caught.value))
        assert client_side_tasks() == set()
        return texts

    for text in asyncio.run(second()):
        assert "another event loop" in text
        assert "Event loop is closed" not in text


async def _drain(iterator: AsyncIterator[Any]) -> None:
    async for _ in iterator:
        pass


async def test_a_client_used_from_a_threads_event_loop_fails_and_stays_usable_here(
    yeastar: YeastarPartnerClient,
) -> None:
    await yeastar.get_orders_page()
    with pytest.raises(RuntimeError, match="another event loop"):
        await asyncio.to_thread(asyncio.run, yeastar.get_orders_page())
    with pytest.raises(RuntimeError, match="another event loop"):
        await asyncio.to_thread(asyncio.run, _drain(yeastar.iter_orders()))
    assert (await yeastar.get_orders_page()).total == 30


# --- from_env ---------------------------------------------------------------------------------


async def test_yeastar_from_env_reads_the_clis_variables(sandbox: Sandbox) -> None:
    environ = {
        "YEASTAR_CLIENT_ID": SANDBOX_CLIENT_ID,
        "YEASTAR_CLIENT_SECRET": f" {SANDBOX_CLIENT_SECRET}\n",  # stripped like the CLI
        "YEASTAR_BASE_URL": sandbox.base_url,
    }
    async with YeastarPartnerClient.from_env(
        environ=environ, max_concurrency=3, timeout=7.5, retry=FAST_RETRY
    ) as client:
        assert (client.client_id, client.base_url, client.max_concurrency) == (
            SANDBOX_CLIENT_ID,
            sandbox.base_url,
            3,
        )
        assert (await client.get_orders_page()).total == 30


async def test_csss_from_env_reads_os_environ_and_options_pass_through(
    sandbox: Sandbox,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CSSS_ACCESS_CODE", SANDBOX_ACCESS_CODE)
    monkeypatch.setenv("CSSS_SECRET", SANDBOX_SECRET)
    monkeypatch.setenv("CSSS_BASE_URL", "http://127.0.0.1:9")  # an option wins over it
    async with CSSSClient.from_env(
        base_url=sandbox.base_url, language="de-DE", retry=FAST_RETRY
    ) as client:
        assert (client.access_code, client.base_url, client.language) == (
            SANDBOX_ACCESS_CODE,
            sandbox.base_url,
            "de-DE",
        )
        assert (await client.get_package_orders_page()).total == 20
    monkeypatch.delenv("CSSS_BASE_URL")
    async with CSSSClient.from_env() as client:
        assert client.base_url == "https://apiv3.linksfield.net"  # the default


@pytest.mark.parametrize(
    ("cls", "names"),
    [
        (YeastarPartnerClient, ("YEASTAR_CLIENT_ID", "YEASTAR_CLIENT_SECRET")),
        (CSSSClient, ("CSSS_ACCESS_CODE", "CSSS_SECRET")),
    ],
)
@pytest.mark.parametrize("missing", [0, 1, 2])
@pytest.mark.parametrize("empty", ["absent", "", "  \t"])
def test_from_env_names_what_is_missing_and_never_quotes_a_secret(
    cls: type[YeastarPartnerClient] | type[CSSSClient],
    names: tuple[str, str],
    missing: int,
    empty: str,
) -> None:
    values = {names[0]: "the-id-VALUE", names[1]: "the-secret-VALUE"}
    gone = list(names) if missing == 2 else [names[missing]]
    for name in gone:
        if empty == "absent":
            del values[name]
        else:
            values[name] = empty
    with pytest.raises(ConfigurationError) as caught:
        cls.from_env(environ=values)
    error = caught.value
    assert isinstance(error, ValueError)
    assert isinstance(error, YeastarCSSSError)
    for name in names:
        assert (name in str(error)) == (name in gone)
    assert "VALUE" not in str(error)
    assert "VALUE" not in repr(error.args)


def test_a_bad_credential_from_env_is_refused_without_quoting_it() -> None:
    with pytest.raises(ValueError, match="client_secret") as caught:
        YeastarPartnerClient.from_env(
            environ={"YEASTAR_CLIENT_ID": "id", "YEASTAR_CLIENT_SECRET": "bad\udcffsecret"}
        )
    assert "client_secret" in str(caught.value)
    assert "bad" not in str(caught.value)
