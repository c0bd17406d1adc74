"""Clients of one account sharing a coordinator: one token, one concurrency limit, one
pause. ``LocalCoordinator`` (one process) exercises the same seam RedisCoordinator fills."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack

import pytest

from yeastar_csss_async import (
    CSSSClient,
    LocalCoordinator,
    RetryPolicy,
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

from tests._support.rate_limit import OneRateLimit

QUICK = RetryPolicy(initial_backoff=0.01, max_backoff=0.05)


@pytest.fixture
def sandbox_config() -> SandboxConfig:
    return SandboxConfig(orders=300, package_orders=120, latency=0.01)


async def yeastar_fleet(
    stack: AsyncExitStack, sandbox: Sandbox, coordinator: LocalCoordinator, count: int, limit: int
) -> list[YeastarPartnerClient]:
    """``count`` clients of one account, each with its own HTTP session."""
    return [
        await stack.enter_async_context(
            YeastarPartnerClient(
                SANDBOX_CLIENT_ID,
                SANDBOX_CLIENT_SECRET,
                base_url=sandbox.base_url,
                max_concurrency=limit,
                retry=QUICK,
                coordinator=coordinator,
            )
        )
        for _ in range(count)
    ]


async def read_all(client: YeastarPartnerClient) -> list[str]:
    return [order.id async for order in client.iter_orders(page_size=10)]


async def test_clients_of_one_account_share_one_token_and_one_limit(sandbox: Sandbox) -> None:
    async with AsyncExitStack() as stack:
        clients = await yeastar_fleet(stack, sandbox, LocalCoordinator(), 4, limit=3)
        results = await asyncio.gather(*(read_all(client) for client in clients))
    assert all(len(ids) == len(set(ids)) == 300 for ids in results)
    assert sandbox.stats.token_requests == 1  # one grant for the four clients
    assert sandbox.stats.peak_in_flight <= 3  # the account's limit, not 4 x 3
    assert sum(client.token_requests for client in clients) == 1


async def test_without_a_coordinator_each_client_has_its_own_token_and_limit(
    sandbox: Sandbox,
) -> None:
    async with AsyncExitStack() as stack:
        clients = [
            await stack.enter_async_context(
                YeastarPartnerClient(
                    SANDBOX_CLIENT_ID,
                    SANDBOX_CLIENT_SECRET,
                    base_url=sandbox.base_url,
                    max_concurrency=3,
                    retry=QUICK,
                )
            )
            for _ in range(4)
        ]
        await asyncio.gather(*(read_all(client) for client in clients))
    assert sandbox.stats.token_requests == 4
    assert sandbox.stats.peak_in_flight > 3  # what the coordinator exists to prevent


async def test_a_429_seen_by_one_client_pauses_every_client_of_the_account(
    sandbox: Sandbox,
) -> None:
    probe = OneRateLimit(pause=0.3, page_no=5)
    sandbox.intercept = probe
    async with AsyncExitStack() as stack:
        clients = await yeastar_fleet(stack, sandbox, LocalCoordinator(), 2, limit=4)
        await asyncio.gather(*(read_all(client) for client in clients))
    assert probe.limited, "the 429 was never served"
    # Requests that reached the server's handler during the pause were already past the
    # client's slot when the 429 arrived: at most the limit of them, minus the 429 itself.
    assert len(probe.during(0.05)) <= 4 - 1
    assert [t for t in probe.arrivals if t > probe.limited[0] + probe.pause]  # and it went on


async def test_a_token_renewed_by_one_client_is_taken_by_the_others(sandbox: Sandbox) -> None:
    async with AsyncExitStack() as stack:
        first, second = await yeastar_fleet(stack, sandbox, LocalCoordinator(), 2, limit=2)
        await first.get_orders_page(1)
        await second.get_orders_page(1)
        assert sandbox.stats.token_requests == 1
        sandbox.expire_tokens()  # the server forgets every token: the next call gets a 401
        await first.get_orders_page(2)  # renews (once) and stores the new token
        await second.get_orders_page(2)  # its 401 finds the renewed token in the store
    assert sandbox.stats.token_requests == 2


async def test_csss_clients_of_one_access_code_share_the_limit(sandbox: Sandbox) -> None:
    coordinator = LocalCoordinator()
    async with AsyncExitStack() as stack:
        clients = [
            await stack.enter_async_context(
                CSSSClient(
                    SANDBOX_ACCESS_CODE,
                    SANDBOX_SECRET,
                    base_url=sandbox.base_url,
                    max_concurrency=2,
                    retry=QUICK,
                    coordinator=coordinator,
                )
            )
            for _ in range(3)
        ]

        async def codes(client: CSSSClient) -> list[str]:
            return [p.order_code async for p in client.iter_package_orders(page_size=10)]

        results = await asyncio.gather(*(codes(client) for client in clients))
    assert all(len(found) == 120 for found in results)
    assert sandbox.stats.peak_in_flight <= 2


async def test_a_coordinator_must_be_a_coordinator() -> None:
    with pytest.raises(TypeError, match="coordinator must be a Coordinator"):
        YeastarPartnerClient("id", "secret", coordinator=object())  # type: ignore[arg-type]
