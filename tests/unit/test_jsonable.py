"""to_jsonable: every model, pages and lists as JSON-safe builtins."""

from __future__ import annotations

import enum
import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import attrs
import pytest

from yeastar_csss_async import (
    ActivationStatus,
    CurrencyCode,
    EndUserInfo,
    Order,
    OrderStatus,
    OrderType,
    PackageOrder,
    Page,
    PlanStatus,
    Product,
    ServiceInfo,
    SubscriptionProduct,
    YeastarPartnerClient,
    to_jsonable,
)
from yeastar_csss_async.sandbox import (
    SANDBOX_CLIENT_ID,
    SANDBOX_CLIENT_SECRET,
    Sandbox,
    SandboxConfig,
)

CREATED = datetime(2024, 3, 1, 8, 30, 5, 123000, tzinfo=UTC)


def order(**changes: Any) -> Order:
    values: dict[str, Any] = {
        "id": "1000499",
        "order_no": "20240301000017",
        "order_status": OrderStatus.SUCCEED,
        "order_type": OrderType.ONLINE,
        "create_time": CREATED,
        "currency_code": CurrencyCode.USD,
        "total_amount": Decimal("130.00"),
        "custom_reference_no": "",
        "invoice_no": None,
        "product_model": "P560",
        "product_name": "P-Series",
        "product_no": "3650A1234567",
    }
    return Order(**{**values, **changes})


def product() -> Product:
    return Product(
        product_no="3650A1234567",
        activation_status=ActivationStatus.ACTIVATED,
        create_time=CREATED,
        plan_status=PlanStatus.SUBSCRIBING,
        plan_id="1234567890123456789",
        end_user_info=EndUserInfo(company_name="Acme", email="it@acme.example"),
        service_list=[
            ServiceInfo(
                service_id="7",
                service_name="Call Recording",
                service_expire_date=CREATED + timedelta(days=365),
                service_period=12,
            )
        ],
    )


def test_an_order_becomes_a_dict_of_its_attribute_names_with_plain_values() -> None:
    result = to_jsonable(order())
    assert result == {
        "id": "1000499",
        "order_no": "20240301000017",
        "order_status": "succeed",
        "order_type": "online",
        "create_time": "2024-03-01T08:30:05.123000+00:00",
        "currency_code": "USD",
        "total_amount": "130.00",
        "custom_reference_no": "",
        "invoice_no": None,
        "product_model": "P560",
        "product_name": "P-Series",
        "product_no": "3650A1234567",
    }
    assert isinstance(result, dict)
    assert list(result) == [field.name for field in attrs.fields(Order)]


def test_enum_values_are_plain_str_not_the_member() -> None:
    result = to_jsonable(order())
    assert isinstance(result, dict)
    for name in ("order_status", "order_type", "currency_code"):
        assert type(result[name]) is str, name


def test_an_enum_value_the_docs_do_not_name_comes_out_as_its_text() -> None:
    on_hold = to_jsonable(order(order_status="on_hold"))
    assert isinstance(on_hold, dict)
    assert on_hold["order_status"] == "on_hold"

    class Status(enum.StrEnum):  # unknown values as extra members, as the models may keep them
        SUCCEED = "succeed"

        @classmethod
        def _missing_(cls, value: object) -> Status:
            member = str.__new__(cls, str(value))
            member._name_ = str(value).upper()
            member._value_ = str(value)
            return member

    unknown = Status("on_hold")
    assert isinstance(unknown, Status)
    converted = to_jsonable({"status": unknown, "known": Status.SUCCEED})
    assert converted == {"status": "on_hold", "known": "succeed"}
    assert isinstance(converted, dict)
    assert all(type(value) is str for value in converted.values())


@pytest.mark.parametrize("text", ["130.00", "1E+3", "0.000001", "-5.10", "12345678901234567890.12"])
def test_decimal_becomes_a_string_of_exactly_its_digits(text: str) -> None:
    converted = to_jsonable(order(total_amount=Decimal(text)))
    assert isinstance(converted, dict)
    assert converted["total_amount"] == text
    assert Decimal(str(converted["total_amount"])).as_tuple() == Decimal(text).as_tuple()


def test_aware_and_naive_datetimes_are_iso_8601() -> None:
    east = timezone(timedelta(hours=8))
    assert to_jsonable([CREATED, CREATED.astimezone(east), datetime(2019, 3, 2, 0, 0, 1)]) == [
        "2024-03-01T08:30:05.123000+00:00",
        "2024-03-01T16:30:05.123000+08:00",
        "2019-03-02T00:00:01",
    ]


def test_a_product_nests_its_end_user_and_services() -> None:
    result = to_jsonable(product())
    assert isinstance(result, dict)
    assert result["end_user_info"] == {
        "address": None,
        "company_name": "Acme",
        "contact_name": None,
        "email": "it@acme.example",
    }
    assert result["service_list"] == [
        {
            "service_id": "7",
            "service_name": "Call Recording",
            "service_status": None,
            "quantity": None,
            "service_auto_renewal": None,
            "service_expire_date": "2025-03-01T08:30:05.123000+00:00",
            "service_period": 12,
        }
    ]
    assert result["plan_id"] == "1234567890123456789"
    assert result["activation_status"] == "activated"
    assert list(result) == [field.name for field in attrs.fields(Product)]


def test_a_package_order_keeps_its_json_lists_and_naive_dates() -> None:
    package = PackageOrder(
        order_code="L201903020000000617",
        device_id="86000001",
        order_date=datetime(2019, 3, 2),
        refueling_package_list=[{"flow": Decimal("1.5"), "name": "top-up", "n": 3}],
        profile_list=[["a", None, True]],
    )
    result = to_jsonable(package)
    assert isinstance(result, dict)
    assert result["order_date"] == "2019-03-02T00:00:00"
    assert result["refueling_package_list"] == [{"flow": "1.5", "name": "top-up", "n": 3}]
    assert result["profile_list"] == [["a", None, True]]
    assert len(result) == len(attrs.fields(PackageOrder))


def test_a_subscription_product_and_a_list_of_models() -> None:
    lines = [
        SubscriptionProduct(product_id=13, name="P-Series Cloud"),
        SubscriptionProduct(product_id=14, name=None),
    ]
    assert to_jsonable(lines) == [
        {"product_id": 13, "name": "P-Series Cloud"},
        {"product_id": 14, "name": None},
    ]
    assert to_jsonable(tuple(lines)) == to_jsonable(lines)


def test_a_page_gives_its_fields_and_its_items() -> None:
    page = Page.build(
        [order(), order(id="1000500")], page_no=2, page_size=2, total=117, reported_total_pages=1
    )
    result = to_jsonable(page)
    assert isinstance(result, dict)
    expected = {
        "page_no": 2,
        "page_size": 2,
        "total": 117,
        "total_pages": 59,
        "reported_total_pages": 1,
    }
    assert {key: result[key] for key in expected} == expected
    items = result["items"]
    assert isinstance(items, list)
    assert all(isinstance(item, dict) for item in items)
    assert [item["id"] for item in items if isinstance(item, dict)] == ["1000499", "1000500"]
    assert set(result) == {field.name for field in attrs.fields(Page)}  # request_id, if any
    assert set(result) >= {"items", *expected}


async def test_a_page_from_the_client_survives_a_json_round_trip() -> None:
    async with (
        Sandbox(SandboxConfig(orders=30)) as sandbox,
        YeastarPartnerClient(
            SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET, base_url=sandbox.base_url
        ) as client,
    ):
        page = await client.get_orders_page(page_no=1, page_size=10)
    decoded = json.loads(json.dumps(to_jsonable(page)))
    assert decoded == to_jsonable(page)
    assert decoded["total"] == 30
    assert [item["id"] for item in decoded["items"]] == [item.id for item in page.items]
    first = page.items[0]
    assert decoded["items"][0]["total_amount"] == str(first.total_amount)
    assert datetime.fromisoformat(decoded["items"][0]["create_time"]) == first.create_time
    if hasattr(page, "request_id"):
        assert decoded["request_id"] == page.request_id


def test_plain_json_values_and_dicts_pass_through() -> None:
    value = {"a": [1, 2.5, "x", None, True], "b": {"c": []}}
    assert to_jsonable(value) == value
    assert to_jsonable("text") == "text"
    assert to_jsonable(None) is None


def test_the_result_shares_nothing_mutable_with_the_input() -> None:
    source = {"a": [1, 2]}
    result = to_jsonable(source)
    assert isinstance(result, dict)
    assert result["a"] is not source["a"]


@pytest.mark.parametrize(
    "value",
    [
        pytest.param({1, 2}, id="set"),
        pytest.param(b"bytes", id="bytes"),
        pytest.param(object(), id="object"),
        pytest.param([complex(1, 2)], id="nested complex"),
    ],
)
def test_anything_else_is_a_type_error_naming_the_type(value: object) -> None:
    inner = value[0] if isinstance(value, list) else value
    with pytest.raises(TypeError, match=type(inner).__qualname__):
        to_jsonable(value)


def test_a_dict_key_that_is_not_a_str_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="str dict keys, got a int"):
        to_jsonable({1: "x"})


def test_str_subclasses_become_plain_str() -> None:
    class Code(str):
        pass

    result = to_jsonable({Code("k"): Code("v")})
    assert result == {"k": "v"}
    assert isinstance(result, dict)
    assert [type(key) for key in result] == [str]
    assert [type(value) for value in result.values()] == [str]
