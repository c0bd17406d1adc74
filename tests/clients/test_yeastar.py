"""YeastarPartnerClient end to end against the sandbox on 127.0.0.1 (real HTTP)."""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Awaitable, Callable
from types import SimpleNamespace
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from yeastar_csss_async import (
    APIError,
    AuthenticationError,
    Order,
    ResponseFormatError,
    RetryPolicy,
    YeastarPartnerClient,
)
from yeastar_csss_async.sandbox import (
    SANDBOX_CLIENT_ID,
    SANDBOX_CLIENT_SECRET,
    Sandbox,
    SandboxConfig,
)

from tests._support.clients import FAST_RETRY, client_side_tasks
from tests._support.logs import ListHandler

ORDER_PATH = "/order/openapi/order/v1/page"
Intercept = Callable[[web.Request], Awaitable[web.StreamResponse | None]]


def make_client(sandbox: Sandbox, **kwargs: Any) -> YeastarPartnerClient:
    kwargs.setdefault("retry", FAST_RETRY)
    return YeastarPartnerClient(
        SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET, base_url=sandbox.base_url, **kwargs
    )


def envelope_error(status: int, code: str) -> web.Response:
    return web.json_response(
        {
            "code": code,
            "detailMessage": code,
            "requestId": "f" * 32,
            "result": None,
            "status": status,
        },
        status=status,
    )


def page_of(request: web.Request) -> int:
    return int(request.query.get("pageNo", "1"))


async def test_iter_orders_yields_every_order_once_in_page_order(
    sandbox: Sandbox,
    yeastar: YeastarPartnerClient,
) -> None:
    orders = [order async for order in yeastar.iter_orders(page_size=37)]
    assert all(isinstance(order, Order) for order in orders)
    assert [o.id for o in orders] == [o["id"] for o in sandbox.data.orders]


async def test_unordered_yields_every_order_once(
    sandbox: Sandbox,
    yeastar: YeastarPartnerClient,
) -> None:
    ids = [order.id async for order in yeastar.iter_orders(page_size=20, ordered=False)]
    assert sorted(ids) == sorted(o["id"] for o in sandbox.data.orders)
    assert len(ids) == len(set(ids))


@pytest.fixture
def sandbox_config() -> SandboxConfig:
    return SandboxConfig(orders=500, latency=0.01)


async def test_in_flight_requests_never_exceed_max_concurrency_across_iterators(
    sandbox: Sandbox,
) -> None:
    async with make_client(sandbox, max_concurrency=4) as client:
        await client.get_orders_page()  # the token, out of the way
        sandbox.stats.reset()

        async def drain() -> int:
            return len([o async for o in client.iter_orders(page_size=10)])

        counts = await asyncio.gather(drain(), drain(), drain())
    assert list(counts) == [500, 500, 500]
    assert sandbox.stats.peak_in_flight == 4  # reached, and never passed


async def test_understated_total_page_like_seed_000_still_yields_all(sandbox: Sandbox) -> None:
    sandbox.config.understate_total_pages = True
    async with make_client(sandbox) as client:
        first = await client.get_orders_page(1, 5)
        assert first.reported_total_pages == 1
        ids = [o.id async for o in client.iter_orders(page_size=5)]
    assert len(ids) == len(set(ids)) == 500


@pytest.mark.parametrize("ordered", [True, False])
async def test_orders_inserted_at_the_head_mid_iteration_cause_no_loss_or_duplicate(
    sandbox: Sandbox,
    ordered: bool,
) -> None:
    before = {o["id"] for o in sandbox.data.orders}

    def insert(name: str, page_no: int) -> None:
        if name == "orders" and page_no % 3 == 0:
            sandbox.data.insert_orders_at_head(2)

    sandbox.after_page = insert
    async with make_client(sandbox) as client:
        ids = [o.id async for o in client.iter_orders(page_size=20, ordered=ordered)]
    assert len(ids) == len(set(ids))
    assert before <= set(ids)


async def test_transient_faults_are_retried_without_loss(sandbox: Sandbox) -> None:
    sandbox.config.fault_rate = 0.3
    async with make_client(
        sandbox, retry=RetryPolicy(max_attempts=10, initial_backoff=0.001, max_backoff=0.01)
    ) as client:
        ids = [o.id async for o in client.iter_orders(page_size=25)]
        retries = client.stats.retries
    assert len(ids) == len(set(ids)) == 500
    assert retries > 0
    assert set(sandbox.stats.faults) >= {"500", "503", "429", "drop"}


async def test_one_retry_after_pauses_every_task_of_the_client(sandbox: Sandbox) -> None:
    arrivals: list[float] = []
    pause = 0.4
    state = {"sent": False, "at": 0.0}

    async def intercept(request: web.Request) -> web.StreamResponse | None:
        if not request.path.startswith("/order"):
            return None
        arrivals.append(time.monotonic())
        if page_of(request) == 3 and not state["sent"]:
            state["sent"], state["at"] = True, time.monotonic()
            return web.json_response(
                {
                    "code": "too_many_requests",
                    "detailMessage": "",
                    "requestId": "0" * 32,
                    "result": None,
                    "status": 429,
                },
                status=429,
                headers={"Retry-After": str(pause)},
            )
        return None

    sandbox.config.latency = 0.05
    sandbox.intercept = intercept
    async with make_client(sandbox, max_concurrency=4) as client:
        ids = [o.id async for o in client.iter_orders(page_size=10)]
    assert len(ids) == 500
    assert state["sent"]
    # Requests already on the wire may land just after the 429; none starts during the pause.
    quiet = [t for t in arrivals if state["at"] + 0.1 < t < state["at"] + pause - 0.02]
    assert quiet == []
    assert max(arrivals) > state["at"] + pause  # and the work went on afterwards


async def test_expired_token_hit_by_many_concurrent_requests_renews_once(
    sandbox: Sandbox,
) -> None:
    async with make_client(sandbox, max_concurrency=16) as client:
        await client.get_orders_page()
        grants_before = sum(sandbox.stats.grants.values())
        sandbox.expire_tokens()
        pages = await asyncio.gather(*(client.get_orders_page(n, 10) for n in range(1, 41)))
    assert [len(p.items) for p in pages] == [10] * 40
    assert sum(sandbox.stats.grants.values()) - grants_before == 1


async def test_tokens_are_refreshed_ahead_of_expiry(
    sandbox: Sandbox,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A token is renewed in the last 10% of its lifetime, while the server still accepts it.

    Time is driven by hand: the sandbox's token expiry and the client's TokenManager read one
    fake clock, so no sleep decides the outcome. Lifetime 100 s: renewal is due at
    100 - min(60, 10% of 100) = 90 s and the token expires at 100 s. A request at 85 s must
    reuse the token; one at 95 s must renew it first (without early renewal it would go out
    with the old token, which the server still accepts, and no refresh grant would happen).
    """
    from yeastar_csss_async import _auth

    now = {"offset": 0.0}

    def fake_monotonic() -> float:
        return time.monotonic() + now["offset"]

    sandbox.clock = fake_monotonic
    monkeypatch.setattr(_auth, "time", SimpleNamespace(monotonic=fake_monotonic))
    sandbox.config.token_lifetime = 100.0
    async with make_client(sandbox) as client:
        await client.get_orders_page()
        now["offset"] = 85.0  # before the renewal point: the token is reused
        await client.get_orders_page()
        assert sandbox.stats.grants["refresh_token"] == 0
        now["offset"] = 95.0  # in the last 10%, before expiry
        await client.get_orders_page()
    assert sandbox.stats.grants["pp_credentials"] == 1
    assert sandbox.stats.grants["refresh_token"] == 1
    assert sandbox.stats.by_path.get(ORDER_PATH) == 3  # no request was refused (no 401 replay)


async def test_wrong_credentials_raise_authentication_error(sandbox: Sandbox) -> None:
    async with YeastarPartnerClient(
        SANDBOX_CLIENT_ID, "wrong-secret-value", base_url=sandbox.base_url
    ) as client:
        with pytest.raises(AuthenticationError) as caught:
            await client.get_orders_page()
    assert caught.value.code == "invalid_client"
    assert "wrong-secret-value" not in str(caught.value)


async def test_permanent_403_on_page_3_surfaces_fast_and_cancels_the_rest(
    sandbox: Sandbox,
) -> None:
    async def intercept(request: web.Request) -> web.StreamResponse | None:
        if request.path.startswith("/order") and page_of(request) == 3:
            return envelope_error(403, "permission_denied")
        if request.path.startswith("/order") and page_of(request) > 3:
            await asyncio.sleep(2.0)  # the other pages are slow
        return None

    sandbox.intercept = intercept
    async with make_client(sandbox, max_concurrency=8) as client:
        started = time.monotonic()
        with pytest.raises(APIError) as caught:
            async for _ in client.iter_orders(page_size=10):
                pass
        elapsed = time.monotonic() - started
        requests_at_error = sandbox.stats.requests
        await asyncio.sleep(0.3)
    assert caught.value.status == 403
    assert caught.value.code == "permission_denied"
    assert caught.value.request_id == "f" * 32
    assert elapsed < 1.5  # did not wait for the slow pages
    assert sandbox.stats.requests == requests_at_error  # nothing sent afterwards
    assert client_side_tasks() == set()


async def test_break_after_a_few_records_leaves_no_request_task_or_warning(
    sandbox: Sandbox,
) -> None:
    sandbox.config.latency = 0.05
    async with make_client(sandbox, max_concurrency=8) as client:
        seen = 0
        async for _ in client.iter_orders(page_size=10):
            seen += 1
            if seen == 3:
                break
        gc.collect()
        await asyncio.sleep(0.01)
        requests_after_break = sandbox.stats.requests
        await asyncio.sleep(0.3)
        assert sandbox.stats.requests == requests_after_break
        assert client_side_tasks() == set()
        assert sandbox.stats.in_flight == 0
        # the client still works afterwards
        page = await client.get_orders_page(2, 10)
    assert len(page.items) == 10


async def test_products_of_one_line_and_the_product_lines(
    sandbox: Sandbox,
    yeastar: YeastarPartnerClient,
) -> None:
    lines = await yeastar.list_subscription_products()
    assert 13 in {line.product_id for line in lines}
    assert all(line.name for line in lines)
    products = [p async for p in yeastar.iter_products(13, page_size=25)]
    assert [p.product_no for p in products] == [p["productNo"] for p in sandbox.data.products[13]]


async def test_product_list_without_product_id_is_rejected_by_the_server(
    sandbox: Sandbox,
) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.get(
            f"{sandbox.base_url}/product/openapi/instance_product/v1/client/instance_product_list",
            headers={"User-Agent": "t"},
        ) as response,
    ):
        assert response.status in (400, 401)


async def test_borrowed_session_is_left_open_and_user_agent_is_sent(sandbox: Sandbox) -> None:
    async with aiohttp.ClientSession() as session:
        async with make_client(sandbox, session=session, user_agent="Exporter/2") as client:
            await client.get_orders_page()
        assert not session.closed
    assert "Exporter/2" in sandbox.stats.user_agents


async def test_debug_logs_never_show_secrets_or_tokens(
    sandbox: Sandbox,
    debug_log: ListHandler,
) -> None:
    tokens: set[str] = set()

    async def intercept(request: web.Request) -> web.StreamResponse | None:
        auth = request.headers.get("Authorization", "")
        if auth.startswith("Bearer "):
            tokens.add(auth.removeprefix("Bearer "))
        return None

    sandbox.intercept = intercept
    sandbox.config.token_lifetime = 0.5
    async with make_client(sandbox) as client:
        await client.get_orders_page()
        await asyncio.sleep(0.5)
        sandbox.expire_tokens()
        await client.get_orders_page()
        text = repr(client) + str(vars(client))
    assert len(tokens) >= 2
    assert debug_log.texts
    for secret in {SANDBOX_CLIENT_SECRET, *tokens}:
        assert secret not in text
        for line in debug_log.texts:
            assert secret not in line


async def test_time_spent_waiting_for_a_slot_is_not_counted_as_a_timeout(
    sandbox: Sandbox,
) -> None:
    async with make_client(
        sandbox, max_concurrency=1, timeout=0.5, retry=RetryPolicy(max_attempts=1)
    ) as client:
        await client.get_orders_page()
        sandbox.config.latency = 0.2
        # six requests behind one slot: the last waits ~1 s in the queue, 0.2 s on the wire
        pages = await asyncio.gather(*(client.get_orders_page(n, 10) for n in range(1, 7)))
    assert [p.page_no for p in pages] == [1, 2, 3, 4, 5, 6]


async def test_a_request_slower_than_the_timeout_is_a_transport_error(sandbox: Sandbox) -> None:
    from yeastar_csss_async import TransportError

    async with make_client(
        sandbox, timeout=0.2, retry=RetryPolicy(max_attempts=2, initial_backoff=0.001)
    ) as client:
        await client.get_orders_page()
        sandbox.config.latency = 0.5
        with pytest.raises(TransportError, match="timed out after 2 attempt"):
            await client.get_orders_page()


@pytest.mark.parametrize("lie", [{"totalPage": 10**9}, {"total": 10**12, "count": 10**12}])
async def test_an_endless_or_absurd_plan_ends_at_the_first_empty_page(
    sandbox: Sandbox,
    lie: dict[str, int],
) -> None:
    """A server that overstates its size wildly: the export ends, bounded, with every order."""

    async def overstate(request: web.Request) -> web.StreamResponse | None:
        if not request.path.startswith("/order"):
            return None
        page_no, size = page_of(request), int(request.query.get("pageSize", "25"))
        records = sandbox.data.orders[(page_no - 1) * size : page_no * size]
        return web.json_response(
            {
                "code": "success",
                "detailMessage": "",
                "requestId": "e" * 32,
                "status": 200,
                "result": {
                    "count": 500,
                    "total": 500,
                    "totalPage": 5,
                    "pageNo": page_no,
                    "pageSize": size,
                    "results": [{"id": r["id"]} for r in records],
                    **lie,
                },
            }
        )

    sandbox.intercept = overstate
    async with make_client(sandbox, max_concurrency=8) as client:
        ids = [o.id async for o in client.iter_orders(page_size=100)]
    assert ids == [o["id"] for o in sandbox.data.orders]
    assert sandbox.stats.by_path[ORDER_PATH] <= 6 + 2 * 8  # past the end: one window at most


async def test_a_200_with_an_error_code_is_an_api_error_not_retried(sandbox: Sandbox) -> None:
    async def refuse(request: web.Request) -> web.StreamResponse | None:
        if request.path.startswith("/order"):
            return web.json_response(
                {
                    "code": "permission_denied",
                    "detailMessage": "no",
                    "requestId": "d" * 32,
                    "result": None,
                    "status": 403,
                }
            )
        return None

    sandbox.intercept = refuse
    async with make_client(sandbox) as client:
        with pytest.raises(APIError) as caught:
            await client.get_orders_page()
    assert (caught.value.code, caught.value.status) == ("permission_denied", 403)
    assert sandbox.stats.by_path[ORDER_PATH] == 1


async def test_truncated_json_is_a_format_error_never_a_hang(
    sandbox: Sandbox,
) -> None:
    async def truncate(request: web.Request) -> web.StreamResponse | None:
        if request.path.startswith("/order"):
            return web.Response(
                body=b'{"code":"success","result":{"results":[{"id"',
                content_type="application/json",
            )
        return None

    sandbox.intercept = truncate
    async with make_client(sandbox) as client:
        with pytest.raises(ResponseFormatError):
            await asyncio.wait_for(client.get_orders_page(), timeout=10)
