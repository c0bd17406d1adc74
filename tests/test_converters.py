"""JSON -> models: the three seed examples field by field, leniency, and error paths."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import attrs
import pytest

from yeastar_csss_async import (
    ActivationStatus,
    EndUserInfo,
    Order,
    OrderStatus,
    OrderType,
    PackageOrder,
    PlanStatus,
    Product,
    ResponseFormatError,
    ServiceInfo,
)
from yeastar_csss_async._converters import structure_items, structure_one
from yeastar_csss_async._wire import decode_json

from conftest import load_seed, seed_text


def ms(value: int) -> datetime:
    return datetime.fromtimestamp(value / 1000, tz=UTC)


def seed_orders() -> list[Order]:
    document = decode_json(seed_text("seed_000_order_list.json").encode())
    assert isinstance(document, dict)
    return structure_items(document["result"]["results"], Order, path="result.results")


def test_seed_000_orders_parse_field_by_field() -> None:
    orders = seed_orders()
    assert len(orders) == 5
    first = orders[0]
    assert first == Order(
        id="1002069", order_no="CY3076943806474498048", order_status=OrderStatus.SUCCEED,
        order_type=OrderType.ONLINE, create_time=ms(1680256570000), currency_code="USD",
        total_amount=Decimal("130.00"), custom_reference_no="123456",
        invoice_no="MH3076943823830528000", product_model="",
        product_name="Cloud PBX (PCE Instance)", product_no="3658B4311196TPKC",
    )
    assert str(first.total_amount) == "130.00"  # the digits the server sent
    assert first.create_time is not None
    assert first.create_time.tzinfo is UTC
    assert orders[2].order_status == "confirmed"
    assert orders[3].order_type == ""  # not in the enum: kept as sent
    assert orders[3].total_amount == Decimal("83.85")
    assert orders[3].product_model == "S20"
    assert [o.id for o in orders] == ["1002069", "1004586", "1004828", "1007495", "1052513"]


def test_seed_002_products_parse_field_by_field() -> None:
    document = load_seed("seed_002_product_list.json")
    products = structure_items(document["result"]["results"], Product, path="result.results")
    trial, switching = products
    assert trial.activation_code == "EQQI-CFKS-KSKW-EFFP-KQE6"
    assert trial.activation_status is ActivationStatus.ACTIVATED
    assert trial.create_time is None
    assert trial.current_plan_expire_date is None
    assert trial.end_user_info is None
    assert trial.plan_expire_date == ms(1730345636000)
    assert trial.plan_status is PlanStatus.TRIALING
    assert trial.plan_auto_renewal == 0
    assert trial.quantity == "5"
    assert trial.service_list == []
    assert trial.url == "docs.test.yeastarcloud.com"
    assert trial.yeastar_id == "test@mailtest.com"
    assert trial.product_no == "3658B4311196UZ4A"
    assert switching.activation_code is None  # the key is absent in the seed
    assert switching.create_time == ms(1704854634000)
    assert switching.current_plan == "Ultimate Plan"
    assert switching.current_plan_expire_date == ms(1736390176000)
    assert switching.next_plan == "Enterprise Plan"
    assert switching.next_plan_expire_date == ms(1767926176000)
    assert switching.next_plan_start_date == ms(1736390177000)
    assert switching.end_user_info == EndUserInfo(
        address="Customer Address.", company_name="PCE Customer Test Company",
        contact_name="PCE Customer Test", email="customer@test.com",
    )
    assert switching.service_list == [ServiceInfo(
        service_id="3048573759449317376", service_name="Recording Minutes",
        service_status="switching", quantity="100", service_auto_renewal=0,
        service_expire_date=ms(1713421999000), service_period=None,
    )]


def test_seed_001_package_orders_parse_field_by_field() -> None:
    document = load_seed("seed_001_query_order.json")
    items = structure_items(document["data"]["package_order"], PackageOrder,
                            path="data.package_order")
    assert len(items) == 2
    first = items[0]
    assert first == PackageOrder(
        order_code="L201903020000000617", device_id="89860012018111220455", order_status="1",
        buy_type="2", order_date=datetime(2019, 3, 2, 17, 27, 19), active_date=None,
        expire_date=None, flow="30", used_flow="0", order_used_flow="0", flow_use_rate=None,
        order_period="1", package_code="PACKAGE20180428000007",
        package_name="亚洲12国/地区产品二 30m/月", package_type="2", supplier_code=None,
        has_test_flow="0", is_flow_plus=None, main_iccid=None, refueling_package_list=[],
        profile_list=[],
    )
    assert items[1].order_code == "L201903030000000626"


def test_device_id_falls_back_to_device_id_camel_case() -> None:
    order = structure_one({"orderCode": "X", "deviceId": "8986"}, PackageOrder, path="$")
    assert order.device_id == "8986"


def test_unknown_enum_values_and_unknown_keys_pass_without_error() -> None:
    order = structure_one({"id": "1", "orderStatus": "archived", "brandNewKey": {"x": 1},
                           "currencyCode": "EUR"}, Order, path="$")
    assert order.order_status == "archived"
    assert not isinstance(order.order_status, OrderStatus)
    assert order.currency_code == "EUR"


def test_loose_numbers_are_accepted_where_docs_are_loose() -> None:
    order = structure_one({"id": 1002069, "createTime": "1680256570000", "totalAmount": "12.50"},
                          Order, path="$")
    assert order.id == "1002069"
    assert order.create_time == ms(1680256570000)
    assert order.total_amount == Decimal("12.50")
    product = structure_one({"planAutoRenewal": "1", "quantity": 5}, Product, path="$")
    assert product.plan_auto_renewal == 1
    assert product.quantity == "5"


def test_null_lists_become_empty_lists() -> None:
    product = structure_one({"serviceList": None}, Product, path="$")
    assert product.service_list == []
    order = structure_one({"refuelingPackageList": None, "profileList": [{"a": 1}]},
                          PackageOrder, path="$")
    assert order.refueling_package_list == []
    assert order.profile_list == [{"a": 1}]


def test_csss_dates_accept_the_dashed_format_and_empty_string() -> None:
    order = structure_one({"expireDate": "2023-12-31 23:59:59", "activeDate": ""},
                          PackageOrder, path="$")
    assert order.expire_date == datetime(2023, 12, 31, 23, 59, 59)
    assert order.active_date is None


@pytest.mark.parametrize(
    ("record", "path"),
    [
        ({"createTime": "soon"}, "result.results[3].createTime"),
        ({"totalAmount": "lots"}, "result.results[3].totalAmount"),
        ({"id": ["1"]}, "result.results[3].id"),
        ({"createTime": True}, "result.results[3].createTime"),
    ],
)
def test_a_bad_value_names_its_json_path(record: dict[str, object], path: str) -> None:
    records: list[object] = [{"id": str(i)} for i in range(5)]
    records[3] = record
    with pytest.raises(ResponseFormatError) as caught:
        structure_items(records, Order, path="result.results")
    assert caught.value.path == path
    assert path in str(caught.value)


def test_a_bad_nested_value_names_its_json_path() -> None:
    records = [{"serviceList": [{}, {"serviceExpireDate": {"when": 1}}]}]
    with pytest.raises(ResponseFormatError) as caught:
        structure_items(records, Product, path="result.results")
    assert caught.value.path == "result.results[0].serviceList[1].serviceExpireDate"


def test_a_record_that_is_not_an_object_names_its_index() -> None:
    with pytest.raises(ResponseFormatError) as caught:
        structure_items([{}, "nope"], Order, path="result.results")
    assert caught.value.path == "result.results[1]"


def test_results_that_is_not_a_list_is_a_format_error() -> None:
    with pytest.raises(ResponseFormatError) as caught:
        structure_items({"a": 1}, Order, path="result.results")
    assert caught.value.path == "result.results"


def test_models_are_frozen() -> None:
    order = seed_orders()[0]
    with pytest.raises(AttributeError):
        order.id = "x"  # type: ignore[misc]


@pytest.mark.parametrize("name", ["seed_000_order_list.json", "seed_002_product_list.json",
                                  "seed_001_query_order.json"])
def test_models_built_by_the_fast_paths_are_ordinary_frozen_instances(name: str) -> None:
    """The generated functions fill a private builder subclass and then set ``__class__`` to
    the model: what comes out must be exactly the model (nested models too), frozen, equal to
    one built by ``__init__``, and picklable, on both the dict and the row
    path."""
    from yeastar_csss_async._csss_protocol import decode_package_order_answer
    from yeastar_csss_async._fast_structure import structure_fn
    from yeastar_csss_async._yeastar_protocol import decode_page_answer

    body = seed_text(name).encode()
    document = decode_json(body)
    assert isinstance(document, dict)
    if name == "seed_001_query_order.json":
        records = document["data"]["package_order"]
        rows = decode_package_order_answer(200, body, page_no=1, page_size=10).items
        cls: type[Any] = PackageOrder
    else:
        cls = Order if name == "seed_000_order_list.json" else Product
        records = document["result"]["results"]
        rows = decode_page_answer(200, body, cls, page_no=1, page_size=100).items
    from_dicts = [structure_fn(cls)(record) for record in records]
    assert rows == from_dicts == structure_items(records, cls, path="results")
    models = [*rows, *from_dicts]
    models += [value for model in list(models) for value in attrs.astuple(model, recurse=False)
               if attrs.has(type(value))]
    models += [value for model in list(models) for value in attrs.astuple(model, recurse=False)
               if isinstance(value, list) for value in value if attrs.has(type(value))]
    assert {type(model) for model in models} >= {cls}
    for model in models:
        assert type(model).__module__ == "yeastar_csss_async.models", type(model)
        assert not type(model).__name__.startswith("_"), type(model)
        assert attrs.evolve(model) == model
        assert pickle.loads(pickle.dumps(model)) == model
        first = attrs.fields(type(model))[0].name
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            setattr(model, first, None)
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            delattr(model, first)
