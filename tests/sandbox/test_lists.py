"""Changing the sandbox's lists between requests: what the real clients see next, totals,
keys, errors, and that a million generated records are never materialized to change one."""

from __future__ import annotations

import random
from decimal import Decimal
from typing import Any

import pytest

from yeastar_csss_async import CSSSClient, YeastarPartnerClient
from yeastar_csss_async.models import EndUserInfo
from yeastar_csss_async.sandbox import Sandbox, SandboxConfig, SandboxData
from yeastar_csss_async.sandbox._data import make_order, order_kind
from yeastar_csss_async.sandbox._lists import ListKind, Record, SandboxList


@pytest.fixture
def sandbox_config() -> SandboxConfig:
    return SandboxConfig(orders=40, products_per_line=12, package_orders=30)


def holds(records: SandboxList, key: object) -> bool:
    """``key in records``: a list of records answers ``in`` by key. (Through this function,
    because mypy reads ``in`` on a sequence of records as a search among the records.)"""
    return key in records


async def order_ids(client: YeastarPartnerClient) -> list[str]:
    return [order.id async for order in client.iter_orders(page_size=7)]


async def test_added_orders_come_first_in_the_next_read_with_new_ids(
    sandbox: Sandbox,
    yeastar: YeastarPartnerClient,
) -> None:
    before = await order_ids(yeastar)
    added = sandbox.orders.add(3, order_status="pending")
    after = await order_ids(yeastar)
    assert len(after) == len(sandbox.orders) == 43
    assert not {record["id"] for record in added} & set(before)
    assert after[:3] == [record["id"] for record in reversed(added)]  # newest first
    assert after[3:] == before
    page = await yeastar.get_orders_page(page_no=1, page_size=5)
    assert page.total == 43
    assert page.items[0].order_status == "pending"


async def test_a_changed_order_is_served_changed_and_the_total_stays(
    sandbox: Sandbox,
    yeastar: YeastarPartnerClient,
) -> None:
    key = sandbox.orders[10]["id"]
    returned = sandbox.orders.change(key, order_status="refunded", total_amount=Decimal("1.50"))
    assert (returned["orderStatus"], returned["totalAmount"]) == ("refunded", Decimal("1.50"))
    orders = {order.id: order async for order in yeastar.iter_orders(page_size=7)}
    assert len(orders) == 40
    assert (orders[key].order_status, orders[key].total_amount) == ("refunded", Decimal("1.50"))
    assert str(orders[key].total_amount) == "1.50"  # the digits given reach the client


async def test_a_removed_order_is_gone_from_the_next_read_and_the_total(
    sandbox: Sandbox,
    yeastar: YeastarPartnerClient,
) -> None:
    before = await order_ids(yeastar)
    removed = [sandbox.orders.remove(before[i]) for i in (0, 6, 7, 39)]
    after = await order_ids(yeastar)
    assert after == [key for key in before if key not in {r["id"] for r in removed}]
    assert (await yeastar.get_orders_page(page_size=5)).total == len(sandbox.orders) == 36
    assert not holds(sandbox.orders, before[6])
    assert sandbox.orders.get(before[6]) is None


async def test_products_of_one_line_change_apart_from_the_other_lines(
    sandbox: Sandbox,
    yeastar: YeastarPartnerClient,
) -> None:
    line = sandbox.products[13]
    before_9 = [p.product_no async for p in yeastar.iter_products(9)]
    changed = line[0]["productNo"]
    line.change(
        changed,
        plan_status="expired",
        end_user_info={"companyName": "Zoë AG", "email": "z@example.com"},
    )
    line.remove(line[1]["productNo"])
    new = line.add(2, comment="added")
    products = [p async for p in yeastar.iter_products(13, page_size=5)]
    assert len(products) == len(line) == 13
    assert [p.product_no for p in products[-2:]] == [r["productNo"] for r in new]  # at the end
    first = products[0]
    assert (first.product_no, first.plan_status) == (changed, "expired")
    assert first.end_user_info == EndUserInfo(company_name="Zoë AG", email="z@example.com")
    assert [p.product_no async for p in yeastar.iter_products(9)] == before_9
    with pytest.raises(KeyError, match=r"no product line 99 .*9, 11, 12, 13, 14, 15"):
        sandbox.products[99]


async def test_package_orders_change_for_the_csss_client_and_its_filters(
    sandbox: Sandbox,
    csss: CSSSClient,
) -> None:
    codes = [o.order_code async for o in csss.iter_package_orders(page_size=8)]
    target, gone = codes[4], codes[5]
    changed = sandbox.package_orders.change(target, order_status="7", device_id="89860000000001")
    assert changed["deviceId"] == changed["device_id"] == "89860000000001"  # both spellings
    sandbox.package_orders.remove(gone)
    added = sandbox.package_orders.add(order_status="7")
    after = [o async for o in csss.iter_package_orders(page_size=8)]
    assert [o.order_code for o in after] == [c for c in codes if c != gone] + [
        added[0]["orderCode"]
    ]  # new ones at the end
    sevens = [o.order_code async for o in csss.iter_package_orders(order_status="7")]
    assert sevens == [target, added[0]["orderCode"]]
    by_device = await csss.get_package_orders_page(device_id="89860000000001")
    assert [o.order_code for o in by_device.items] == [target]
    assert by_device.total == 1


async def test_a_million_generated_orders_change_without_being_materialized(
    yeastar: YeastarPartnerClient,
    sandbox: Sandbox,
) -> None:
    made: list[int] = []
    kind = order_kind(1)

    def counting_make(index: int) -> Record:
        made.append(index)
        return make_order(1, index)

    orders = SandboxList(
        ListKind(
            kind.name,
            kind.noun,
            kind.key_field,
            kind.fields,
            counting_make,
            kind.index_of,
            kind.newest_first,
        ),
        1_000_000,
        generated=True,
    )
    sandbox.data.orders = orders
    orders.change("1000000", order_status="refunded")  # the oldest: the very last one
    for index in range(500_000, 500_100, 2):  # 50 removals in the middle
        orders.remove(str(1_000_000 + index))
    orders.add(2)
    assert len(orders) == 1_000_000 - 50 + 2
    assert len(made) <= 2 * (1 + 50 + 2)  # two per change at most, not one per record
    made.clear()
    page = await yeastar.get_orders_page(page_no=5000, page_size=100)  # across the removals
    assert len(made) == 100  # the page's records only
    assert page.total == 999_952
    ids = [int(order.id) for order in page.items]
    assert len(ids) == 100
    assert ids[:4] == [1_500_101, 1_500_100, 1_500_099, 1_500_097]  # 1_500_098 was removed
    assert not [i for i in ids if 1_500_000 <= i < 1_500_100 and i % 2 == 0]
    last = await yeastar.get_orders_page(page_no=10_000, page_size=100)
    assert len(last.items) == 52
    assert (last.items[-1].id, last.items[-1].order_status) == ("1000000", "refunded")


@pytest.mark.parametrize("generated", [False, True])
@pytest.mark.parametrize("seed", range(6))
def test_the_overlay_serves_what_a_plain_list_given_the_same_changes_holds(
    generated: bool,
    seed: int,
) -> None:
    """Random add/change/remove against a plain list of the same records: equal after every
    step, as a whole and in every page of a few sizes (head, removed runs, tail)."""
    rng = random.Random(seed)
    data = SandboxData(
        seed=seed, orders=37, products_per_line=23, package_orders=2, generated=generated
    )
    for served, key_field in ((data.orders, "id"), (data.products[12], "productNo")):
        model = list(served)
        for step in range(60):
            action = rng.choice(("add", "add", "change", "remove", "remove"))
            if action == "add":
                new = (
                    served.add(rng.randint(1, 3), comment="n")
                    if key_field == "productNo"
                    else served.add(rng.randint(1, 3), invoice_no=f"inv{step}")
                )
                model = list(reversed(new)) + model if key_field == "id" else model + new
            elif model:
                i = rng.randrange(len(model))
                key = model[i][key_field]
                if action == "change":
                    model[i] = (
                        served.change(key, referrer=f"r{step}")
                        if key_field != "id"
                        else served.change(key, order_type=f"t{step}")
                    )
                else:
                    assert served.remove(key) == model.pop(i)
            assert len(served) == len(model)
            size = rng.choice((1, 4, 10))
            for start in range(0, len(model) + size, size):
                assert served._span(start, start + size) == model[start : start + size]
        assert list(served) == model
        assert served[::3] == model[::3]
        assert served[-1] == model[-1]


def test_the_same_changes_on_the_same_seed_give_the_same_records() -> None:
    def run() -> list[Record]:
        data = SandboxData(seed=7, orders=20, products_per_line=3, package_orders=3, generated=True)
        data.orders.remove("1000004")
        data.orders.change("1000010", order_type="offline")
        data.orders.add(4)
        return list(data.orders)

    assert run() == run()


def test_an_unknown_field_is_a_type_error_that_names_it() -> None:
    data = SandboxData(seed=1, orders=3, products_per_line=1, package_orders=1, generated=False)
    with pytest.raises(
        TypeError, match="orders have no field 'orderStatus'; did you mean 'order_status'"
    ):
        data.orders.change("1000001", orderStatus="x")
    with pytest.raises(TypeError, match="orders have no field 'colour'; fields: create_time,"):
        data.orders.add(colour="red")
    with pytest.raises(TypeError, match="did you mean 'plan_status'"):
        data.products[9].change(data.products[9][0]["productNo"], plan_stats="x")
    with pytest.raises(TypeError, match="at least one field"):
        data.orders.change("1000001")
    with pytest.raises(TypeError, match="order_status: a value of type object cannot be sent"):
        data.orders.change("1000001", order_status=object())
    assert data.orders.get("1000001") == make_order(1, 1)  # nothing was half-applied


def test_an_unknown_or_removed_key_is_a_key_error_that_names_it() -> None:
    data = SandboxData(seed=1, orders=3, products_per_line=1, package_orders=2, generated=False)
    with pytest.raises(KeyError, match="no order with id '1000003' in the sandbox's orders"):
        data.orders.change("1000003", order_status="x")
    data.orders.remove("1000001")
    with pytest.raises(KeyError, match=r"'1000001' .* \(it was removed\)"):
        data.orders.remove("1000001")
    with pytest.raises(KeyError, match="no package order with orderCode 'L1'"):
        data.package_orders.remove("L1")
    with pytest.raises(TypeError, match="order keys \\(id\\) are strings, not int"):
        data.orders.get(1000002)  # type: ignore[arg-type]
    assert not holds(data.orders, 1000002)
    assert holds(data.orders, "1000002")


def test_the_key_is_never_changed_and_a_chosen_key_must_be_free() -> None:
    data = SandboxData(seed=1, orders=3, products_per_line=1, package_orders=1, generated=False)
    with pytest.raises(ValueError, match="id is the key of orders and cannot be changed"):
        data.orders.change("1000001", id="9")
    with pytest.raises(ValueError, match="id '1000002' is served already in orders"):
        data.orders.add(id="1000002")
    with pytest.raises(ValueError, match="may be set only when adding one order"):
        data.orders.add(2, id="X-2")
    with pytest.raises(ValueError, match="count must be an int >= 1"):
        data.orders.add(0)
    chosen = data.orders.add(id="X-1", total_amount=Decimal("9.90"))[0]
    assert data.orders.get("X-1") == chosen
    assert data.orders[0]["id"] == "X-1"
    data.orders.remove("1000002")
    assert data.orders.add(id="1000002")[0]["id"] == "1000002"  # gone, then back


def test_new_keys_never_repeat_a_chosen_or_removed_one() -> None:
    data = SandboxData(seed=1, orders=10, products_per_line=1, package_orders=1, generated=True)
    data.orders.add(id="1000011")  # what the generator would make next but one
    first = data.orders.add(3)
    data.orders.remove(first[0]["id"])
    again = data.orders.add(3)
    keys = [r["id"] for r in first + again]
    assert len(set(keys)) == 6
    assert "1000011" not in keys
    assert first[0]["id"] not in [r["id"] for r in again]
    served = [r["id"] for r in data.orders]
    assert len(served) == len(set(served)) == 10 + 1 + 3 - 1 + 3


def test_records_read_back_are_copies_the_reader_may_change() -> None:
    data = SandboxData(seed=1, orders=3, products_per_line=2, package_orders=1, generated=False)
    product = data.products[13][0]
    product["planStatus"] = "mangled"
    product["serviceList"].append({"x": 1})
    key = product["productNo"]
    end_user: dict[str, Any] = {"companyName": "A"}
    data.products[13].change(key, end_user_info=end_user)
    end_user["companyName"] = "B"  # the sandbox kept its own copy
    served = data.products[13]._span(0, 1)[0]
    assert served["planStatus"] != "mangled"
    assert {"x": 1} not in served["serviceList"]
    assert served["endUserInfo"] == {"companyName": "A"}


def test_insert_and_remove_at_head_also_work_on_generated_data() -> None:
    data = SandboxData(seed=1, orders=5, products_per_line=1, package_orders=1, generated=True)
    added = data.insert_orders_at_head(2)
    assert [r["id"] for r in data.orders[:2]] == ["1000006", "1000005"]
    assert [r["id"] for r in added] == ["1000005", "1000006"]
    assert [r["id"] for r in data.remove_orders_at_head(3)] == ["1000006", "1000005", "1000004"]
    assert len(data.orders) == 4
    assert data.insert_orders_at_head(0) == []
