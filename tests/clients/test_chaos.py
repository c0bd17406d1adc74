"""A chaos run: a large export through faults, token expiry and a 429 burst, losing nothing."""

from __future__ import annotations

import math
import time

import pytest
from aiohttp import web

from yeastar_csss_async import RetryPolicy, YeastarPartnerClient
from yeastar_csss_async.sandbox import (
    SANDBOX_CLIENT_ID,
    SANDBOX_CLIENT_SECRET,
    Sandbox,
    SandboxConfig,
)

from tests._support.clients import client_side_tasks

TOTAL = 100_000


@pytest.mark.slow
async def test_chaos_export_loses_and_repeats_nothing() -> None:
    config = SandboxConfig(
        orders=TOTAL, generated=True, fault_rate=0.1, retry_after=0.02, token_lifetime=3.0
    )
    burst = {"left": 12, "started": False}

    async def throttle(request: web.Request) -> web.StreamResponse | None:
        page = int(request.query.get("pageNo", "0"))
        if request.path.startswith("/order") and page >= 40 and burst["left"] > 0:
            burst["left"] -= 1
            burst["started"] = True
            return web.json_response(
                {
                    "code": "too_many_requests",
                    "detailMessage": "",
                    "requestId": "b" * 32,
                    "result": None,
                    "status": 429,
                },
                status=429,
                headers={"Retry-After": "0.05"},
            )
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
        async with YeastarPartnerClient(
            SANDBOX_CLIENT_ID,
            SANDBOX_CLIENT_SECRET,
            base_url=sandbox.base_url,
            retry=retry,
            max_concurrency=8,
        ) as client:
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
    # Token grants. Each token is replaced at most once (a renewal after a 401 happens only
    # while the refused token is still the current one, and renewals are single flight). A
    # token is replaced either because a forced expiry killed it (at most one replacement per
    # forced expiry: that replacement is requested after the expiry, so it survives it), or
    # because it aged: the client renews early no sooner than L - min(60 s, 10% of L) after
    # receiving it (later if it stretches a short lifetime), and the server refuses it (401)
    # only L after issuing it. So, apart from the first grant and the forced replacements,
    # grants are at least `min_age` apart, all inside `elapsed`. (The token endpoint is
    # never faulted here, so every grant the server counts reached the client.)
    # The lower bound: the first token, and a new one after each forced expiry (every token
    # dies there, and later pages still need one; the read-ahead window, 2 x 8 pages, keeps
    # page 70 from being sent before page 25 was answered, so the two expiries are apart).
    lifetime = config.token_lifetime  # whole seconds: `expiresIn` says exactly this
    min_age = lifetime - min(60.0, 0.1 * lifetime)
    forced = len(expired_at)
    assert 1 + forced <= grants <= 1 + forced + math.floor(elapsed / min_age)
    assert client_side_tasks() == set()
