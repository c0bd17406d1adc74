"""A chaos run: a large export through faults, token expiry and a 429 burst, losing nothing."""

from __future__ import annotations

import time

from aiohttp import web

from yeastar_csss_async import RetryPolicy, YeastarPartnerClient
from yeastar_csss_async.sandbox import (
    SANDBOX_CLIENT_ID,
    SANDBOX_CLIENT_SECRET,
    Sandbox,
    SandboxConfig,
)

from conftest import client_side_tasks

TOTAL = 100_000


async def test_chaos_export_loses_and_repeats_nothing() -> None:
    config = SandboxConfig(orders=TOTAL, generated=True, fault_rate=0.1, retry_after=0.02,
                           token_lifetime=3.0)
    burst = {"left": 12, "started": False}

    async def throttle(request: web.Request) -> web.StreamResponse | None:
        page = int(request.query.get("pageNo", "0"))
        if request.path.startswith("/order") and page >= 40 and burst["left"] > 0:
            burst["left"] -= 1
            burst["started"] = True
            return web.json_response(
                {"code": "too_many_requests", "detailMessage": "", "requestId": "b" * 32,
                 "result": None, "status": 429}, status=429, headers={"Retry-After": "0.05"})
        return None

    async with Sandbox(config) as sandbox:
        expired_at: list[int] = []

        def expire_twice(name: str, page_no: int) -> None:
            if page_no in (25, 70) and page_no not in expired_at:
                expired_at.append(page_no)
                sandbox.expire_tokens()

        sandbox.intercept = throttle
        sandbox.after_page = expire_twice
        retry = RetryPolicy(max_attempts=10, initial_backoff=0.005, max_backoff=0.05)
        started = time.monotonic()
        async with YeastarPartnerClient(SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET,
                                        base_url=sandbox.base_url, retry=retry,
                                        max_concurrency=8) as client:
            ids = [order.id async for order in client.iter_orders(page_size=1000)]
            stats = client.stats
        elapsed = time.monotonic() - started
        grants = sum(sandbox.stats.grants.values())
        faults = sum(sandbox.stats.faults.values())

    assert len(ids) == TOTAL
    assert len(set(ids)) == TOTAL
    assert set(ids) == {str(1_000_000 + i) for i in range(TOTAL)}
    assert expired_at == [25, 70]
    assert burst["started"]
    assert burst["left"] == 0
    assert faults >= 5
    assert stats.rate_limited >= 12
    assert 3 <= grants <= 8  # first token, two forced renewals, a proactive refresh or two
    assert client_side_tasks() == set()
    assert elapsed < 60
