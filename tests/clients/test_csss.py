"""CSSSClient end to end against the sandbox on 127.0.0.1 (real HTTP, real signatures)."""

from __future__ import annotations

import pytest

from yeastar_csss_async import APIError, CSSSClient, PackageOrder
from yeastar_csss_async.sandbox import SANDBOX_ACCESS_CODE, Sandbox


async def test_iter_package_orders_yields_every_order_once(
    sandbox: Sandbox,
    csss: CSSSClient,
) -> None:
    orders = [o async for o in csss.iter_package_orders(page_size=40)]
    assert all(isinstance(o, PackageOrder) for o in orders)
    assert [o.order_code for o in orders] == [o["orderCode"] for o in sandbox.data.package_orders]


async def test_filters_reach_the_server(sandbox: Sandbox, csss: CSSSClient) -> None:
    status = sandbox.data.package_orders[0]["orderStatus"]
    device = sandbox.data.package_orders[0]["device_id"]
    by_status = [o async for o in csss.iter_package_orders(order_status=status)]
    assert by_status
    assert {o.order_status for o in by_status} == {status}
    assert len(by_status) == sum(
        1 for o in sandbox.data.package_orders if o["orderStatus"] == status
    )
    page = await csss.get_package_orders_page(device_id=device, page_size=5)
    assert page.items
    assert {o.device_id for o in page.items} == {device}


async def test_wrong_secret_is_an_api_error_with_the_sign_code(sandbox: Sandbox) -> None:
    async with CSSSClient(
        SANDBOX_ACCESS_CODE, "not-the-secret", base_url=sandbox.base_url
    ) as client:
        with pytest.raises(APIError) as caught:
            await client.get_package_orders_page()
    assert caught.value.code == "1002"
    assert "not-the-secret" not in str(caught.value)


async def test_wrong_access_code_is_an_api_error(sandbox: Sandbox) -> None:
    async with CSSSClient("P999999", "whatever-secret", base_url=sandbox.base_url) as client:
        with pytest.raises(APIError) as caught:
            await client.get_package_orders_page()
    assert caught.value.code == "1001"


async def test_page_values_come_from_the_answer(sandbox: Sandbox, csss: CSSSClient) -> None:
    page = await csss.get_package_orders_page(2, 7)
    total = len(sandbox.data.package_orders)
    assert (page.page_no, page.page_size, page.total) == (2, 7, total)
    assert page.total_pages == -(-total // 7)
    assert [o.order_code for o in page.items] == [
        o["orderCode"] for o in sandbox.data.package_orders[7:14]
    ]
