"""The sandbox's app (``sandbox/_app``) answers like the services, checked with raw aiohttp:
tokens, pages, money on the wire, the CSSS checks, faults, and the sign of its answers. Its
signer's own tests are in test_signing.py."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from yeastar_csss_async import sign_csss_body
from yeastar_csss_async.sandbox import (
    SANDBOX_ACCESS_CODE,
    SANDBOX_CLIENT_ID,
    SANDBOX_CLIENT_SECRET,
    SANDBOX_SECRET,
    Sandbox,
    SandboxConfig,
)
from yeastar_csss_async.sandbox._signing import signature

UA = {"User-Agent": "sandbox-test"}
ORDERS = "/order/openapi/order/v1/page"
PRODUCTS = "/product/openapi/instance_product/v1/client/instance_product_list"


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(headers=UA) as session:
        yield session


async def grant(
    http: aiohttp.ClientSession, sandbox: Sandbox, form: dict[str, str]
) -> tuple[int, dict[str, Any]]:
    async with http.post(f"{sandbox.base_url}/auth/openapi/v1/oauth/token", data=form) as r:
        return r.status, await r.json()


async def credentials(http: aiohttp.ClientSession, sandbox: Sandbox) -> dict[str, Any]:
    status, body = await grant(
        http,
        sandbox,
        {
            "grant_type": "pp_credentials",
            "client_id": SANDBOX_CLIENT_ID,
            "client_secret": SANDBOX_CLIENT_SECRET,
        },
    )
    assert status == 200
    return dict(body["result"])


async def get(
    http: aiohttp.ClientSession, sandbox: Sandbox, path: str, token: str | None, **params: str
) -> tuple[int, dict[str, Any]]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with http.get(sandbox.base_url + path, params=params, headers=headers) as r:
        return r.status, await r.json()


async def query_orders(
    http: aiohttp.ClientSession,
    sandbox: Sandbox,
    *,
    secret: str = SANDBOX_SECRET,
    timestamp: int | None = None,
    language: str = "en-US",
    **params: Any,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "access_code": SANDBOX_ACCESS_CODE,
        "version": "2.0",
        "timestamp": str(int(time.time()) if timestamp is None else timestamp),
        "page_no": 1,
        "page_size": 10,
        **params,
    }
    body["sign"] = sign_csss_body(body, secret)
    async with http.post(
        f"{sandbox.base_url}/package/queryOrder", json=body, headers={"Accept-Language": language}
    ) as r:
        assert r.status == 200
        return dict(await r.json())


async def test_token_grant_and_refresh_rotation(
    http: aiohttp.ClientSession,
    sandbox: Sandbox,
) -> None:
    first = await credentials(http, sandbox)
    assert first["expiresIn"] == "1"  # a string of whole seconds (lifetime 0.3 s here)
    assert first["tokenHead"] == "Bearer"
    status, body = await grant(
        http, sandbox, {"grant_type": "refresh_token", "refresh_token": first["refreshToken"]}
    )
    assert status == 200
    assert body["result"]["token"] != first["token"]
    status, body = await grant(
        http, sandbox, {"grant_type": "refresh_token", "refresh_token": first["refreshToken"]}
    )
    assert (status, body["code"]) == (401, "invalid_refresh_token")  # used once only


async def test_wrong_credentials_and_missing_bearer_are_401(
    http: aiohttp.ClientSession,
    sandbox: Sandbox,
) -> None:
    status, body = await grant(
        http,
        sandbox,
        {"grant_type": "pp_credentials", "client_id": SANDBOX_CLIENT_ID, "client_secret": "nope"},
    )
    assert (status, body["code"], body["status"]) == (401, "invalid_client", 401)
    status, body = await get(http, sandbox, ORDERS, None)
    assert (status, body["code"]) == (401, "invalid_token")


@pytest.fixture
def sandbox_config() -> SandboxConfig:
    return SandboxConfig(orders=117, token_lifetime=0.3)


async def test_tokens_really_expire(http: aiohttp.ClientSession, sandbox: Sandbox) -> None:
    token = (await credentials(http, sandbox))["token"]
    assert (await get(http, sandbox, ORDERS, token))[0] == 200
    await asyncio.sleep(0.35)
    assert (await get(http, sandbox, ORDERS, token))[0] == 401
    token = (await credentials(http, sandbox))["token"]
    sandbox.expire_tokens()
    assert (await get(http, sandbox, ORDERS, token))[0] == 401


async def test_order_pages_report_totals_like_the_portal(
    http: aiohttp.ClientSession,
    sandbox: Sandbox,
) -> None:
    token = (await credentials(http, sandbox))["token"]
    status, body = await get(http, sandbox, ORDERS, token, pageNo="24", pageSize="5")
    result = body["result"]
    assert (status, body["code"], len(body["requestId"])) == (200, "success", 32)
    assert (result["total"], result["count"], result["totalPage"]) == (117, 117, 24)
    assert len(result["results"]) == 2
    sandbox.config.understate_total_pages = True
    _, body = await get(http, sandbox, ORDERS, token, pageNo="1", pageSize="5")
    assert body["result"]["totalPage"] == 1  # like seed 000
    _, body = await get(http, sandbox, ORDERS, token, pageNo="0")
    assert body["code"] == "parameter_validation_failed"


async def test_money_keeps_two_decimals_on_the_wire(
    http: aiohttp.ClientSession,
    sandbox: Sandbox,
) -> None:
    token = (await credentials(http, sandbox))["token"]
    async with http.get(
        f"{sandbox.base_url}{ORDERS}",
        params={"pageSize": "50"},
        headers={"Authorization": f"Bearer {token}"},
    ) as response:
        text = await response.text()
    amounts = [part.split(",")[0].split("}")[0] for part in text.split('"totalAmount":')[1:]]
    assert len(amounts) == 50
    assert all(len(a.split(".")[1]) == 2 for a in amounts)


async def test_product_list_needs_a_product_id(
    http: aiohttp.ClientSession,
    sandbox: Sandbox,
) -> None:
    token = (await credentials(http, sandbox))["token"]
    status, body = await get(http, sandbox, PRODUCTS, token)
    assert (status, body["code"]) == (400, "parameter_validation_failed")
    status, body = await get(http, sandbox, PRODUCTS, token, productId="13", pageSize="200")
    assert status == 200
    assert len(body["result"]["results"]) == 120
    _, body = await get(http, sandbox, "/pricing/openapi/purchase/v1/product_list", token)
    assert {line["productId"] for line in body["result"]} == {9, 11, 12, 13, 14, 15}


async def test_csss_checks_sign_timestamp_and_access_code(
    http: aiohttp.ClientSession,
    sandbox: Sandbox,
) -> None:
    ok = await query_orders(http, sandbox)
    assert (ok["code"], ok["success"], ok["message"]) == ("0000", True, "success")
    assert ok["data"]["page"]["total_count"] == 300
    assert len(ok["data"]["package_order"][0]) == 22
    assert (await query_orders(http, sandbox, language="zh-CN"))["message"] == "成功"
    bad_sign = await query_orders(http, sandbox, secret="wrong")
    assert (bad_sign["code"], bad_sign["success"]) == ("1002", False)
    stale = await query_orders(http, sandbox, timestamp=int(time.time()) - 3600)
    assert stale["code"] == "1003"
    body = {
        "access_code": "P1",
        "timestamp": str(int(time.time())),
        "version": "2.0",
        "page_no": 1,
        "page_size": 1,
    }
    body["sign"] = sign_csss_body(body, SANDBOX_SECRET)
    async with http.post(f"{sandbox.base_url}/package/queryOrder", json=body) as response:
        assert (await response.json())["code"] == "1001"


async def test_csss_filters(http: aiohttp.ClientSession, sandbox: Sandbox) -> None:
    answer = await query_orders(http, sandbox, order_status="1", page_size=500)
    items = answer["data"]["package_order"]
    assert items
    assert {item["orderStatus"] for item in items} == {"1"}
    assert answer["data"]["page"]["total_count"] == len(items)


async def test_faults_fire_at_the_configured_rate(
    http: aiohttp.ClientSession,
    sandbox: Sandbox,
) -> None:
    token = (await credentials(http, sandbox))["token"]
    sandbox.config.fault_rate = 0.5
    outcomes: list[str] = []
    for _ in range(200):
        try:
            async with http.get(
                f"{sandbox.base_url}{ORDERS}", headers={"Authorization": f"Bearer {token}"}
            ) as response:
                await response.read()
                outcomes.append(str(response.status))
                if response.status == 429:
                    assert float(response.headers["Retry-After"]) > 0
        except aiohttp.ClientError:
            outcomes.append("dropped")
    faults = sum(sandbox.stats.faults.values())
    assert 60 <= faults <= 140
    assert set(sandbox.stats.faults) == {"500", "503", "429", "drop"}
    # aiohttp quietly resends a GET once when a reused keep-alive connection drops, so only
    # some drops surface; each kind still shows at the client
    assert 1 <= outcomes.count("dropped") <= sandbox.stats.faults["drop"]
    assert {"500", "503", "429", "200"} <= set(outcomes)


async def test_generated_data_serves_millions_without_holding_them() -> None:
    async with (
        Sandbox(SandboxConfig(orders=1_000_000, generated=True)) as sandbox,
        aiohttp.ClientSession(headers=UA) as http,
    ):
        token = (await credentials(http, sandbox))["token"]
        status, body = await get(http, sandbox, ORDERS, token, pageNo="5000", pageSize="100")
    assert status == 200
    assert body["result"]["total"] == 1_000_000
    assert len(body["result"]["results"]) == 100
    ids = [int(r["id"]) for r in body["result"]["results"]]
    assert ids == sorted(ids, reverse=True)  # newest first


async def test_peak_in_flight_counts_concurrent_requests(
    http: aiohttp.ClientSession,
    sandbox: Sandbox,
) -> None:
    token = (await credentials(http, sandbox))["token"]
    sandbox.config.latency = 0.1
    await asyncio.gather(*(get(http, sandbox, ORDERS, token) for _ in range(10)))
    assert sandbox.stats.peak_in_flight == 10
    assert sandbox.stats.in_flight == 0
    assert "sandbox-test" in sandbox.stats.user_agents


def test_the_wire_json_is_compact_utf8() -> None:
    from decimal import Decimal

    from yeastar_csss_async.sandbox._app import _money_json

    assert (
        _money_json({"a": Decimal("130.00"), "b": "中"})
        == json.dumps({"a": 0, "b": "中"}, ensure_ascii=False, separators=(",", ":"))
        .replace("0", "130.00")
        .encode()
    )


async def test_serve_yields_the_base_url(http: aiohttp.ClientSession) -> None:
    from yeastar_csss_async.sandbox import serve

    async with serve(SandboxConfig(orders=3)) as base_url:
        assert base_url.startswith("http://127.0.0.1:")
        async with http.get(base_url + "/pricing/openapi/purchase/v1/product_list") as r:
            assert r.status == 401  # alive, and asks for a token


# --- the CSSS sign of the answers -------------------------------------------------------------


async def test_answers_carry_the_sandbox_sign_of_their_data(
    http: aiohttp.ClientSession,
    sandbox: Sandbox,
) -> None:
    data = (await query_orders(http, sandbox, page_size=3))["data"]
    assert data["sign"] == signature(data, SANDBOX_SECRET)
    assert data["sign"] != signature({**data, "package_order_num": 2}, SANDBOX_SECRET)
