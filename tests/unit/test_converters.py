"""JSON -> models (``_converters``): the three seed examples field by field, leniency, error
paths, and (hypothesis) any value in any field gives a model or a located format error."""

from __future__ import annotations

import json
import pickle
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from yeastar_csss_async import (
    ActivationStatus,
    CurrencyCode,
    EndUserInfo,
    Order,
    OrderStatus,
    OrderType,
    PackageOrder,
    PlanStatus,
    Product,
    ResponseFormatError,
    ServiceInfo,
    SubscriptionProduct,
)
from yeastar_csss_async._converters import structure_items, structure_one
from yeastar_csss_async._wire import decode_json

from tests._support.seeds import load_seed, ms, seed_text
from tests._support.strategies import SEED_RECORDS, json_values


def seed_orders() -> list[Order]:
    document = decode_json(seed_text("seed_000_order_list.json").encode())
    assert isinstance(document, dict)
    return structure_items(document["result"]["results"], Order, path="result.results")


def test_seed_000_orders_parse_field_by_field() -> None:
    orders = seed_orders()
    assert len(orders) == 5
    first = orders[0]
    assert first == Order(
        id="1002069",
        order_no="CY3076943806474498048",
        order_status=OrderStatus.SUCCEED,
        order_type=OrderType.ONLINE,
        create_time=ms(1680256570000),
        currency_code=CurrencyCode.USD,
        total_amount=Decimal("130.00"),
        custom_reference_no="123456",
        invoice_no="MH3076943823830528000",
        product_model="",
        product_name="Cloud PBX (PCE Instance)",
        product_no="3658B4311196TPKC",
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
        address="Customer Address.",
        company_name="PCE Customer Test Company",
        contact_name="PCE Customer Test",
        email="customer@test.com",
    )
    assert switching.service_list == [
        ServiceInfo(
            service_id="3048573759449317376",
            service_name="Recording Minutes",
            service_status="switching",
            quantity="100",
            service_auto_renewal=0,
            service_expire_date=ms(1713421999000),
            service_period=None,
        )
    ]


def test_seed_001_package_orders_parse_field_by_field() -> None:
    document = load_seed("seed_001_query_order.json")
    items = structure_items(
        document["data"]["package_order"], PackageOrder, path="data.package_order"
    )
    assert len(items) == 2
    first = items[0]
    assert first == PackageOrder(
        order_code="L201903020000000617",
        device_id="89860012018111220455",
        order_status="1",
        buy_type="2",
        order_date=datetime(2019, 3, 2, 17, 27, 19),
        active_date=None,
        expire_date=None,
        flow="30",
        used_flow="0",
        order_used_flow="0",
        flow_use_rate=None,
        order_period="1",
        package_code="PACKAGE20180428000007",
        package_name="亚洲12国/地区产品二 30m/月",
        package_type="2",
        supplier_code=None,
        has_test_flow="0",
        is_flow_plus=None,
        main_iccid=None,
        refueling_package_list=[],
        profile_list=[],
    )
    assert items[1].order_code == "L201903030000000626"


def test_device_id_falls_back_to_device_id_camel_case() -> None:
    order = structure_one({"orderCode": "X", "deviceId": "8986"}, PackageOrder, path="$")
    assert order.device_id == "8986"


def test_unknown_enum_values_and_unknown_keys_pass_without_error() -> None:
    order = structure_one(
        {
            "id": "1",
            "orderStatus": "archived",
            "brandNewKey": {"x": 1},
            "currencyCode": "EUR",
            "orderType": "",
        },
        Order,
        path="$",
    )
    assert order.order_status == "archived"
    assert order.currency_code == "EUR"
    assert order.order_type == ""


@pytest.mark.parametrize("path", ["fast dict", "fast row", "detailed"])
def test_an_undocumented_enum_value_is_an_extra_member_of_its_enum(path: str) -> None:
    """Typed as the enum, whatever the vendor sends: ``order_status`` is an ``OrderStatus``
    holding exactly the value sent, equal to it, not listed among the documented members."""
    from yeastar_csss_async._converters import _DETAILED
    from yeastar_csss_async._fast_structure import structure_fn
    from yeastar_csss_async._yeastar_protocol import decode_page_answer

    record = {"id": "1", "orderStatus": "archived", "orderType": "", "currencyCode": "USD"}
    if path == "fast dict":
        order = structure_fn(Order)(record)
    elif path == "detailed":
        order = _DETAILED.structure(record, Order)
    else:
        body = json.dumps(
            {
                "errcode": 0,
                "code": "success",
                "result": {
                    "total": 1,
                    "pageNo": 1,
                    "pageSize": 1,
                    "totalPage": 1,
                    "results": [record],
                },
            }
        ).encode()
        (order,) = decode_page_answer(200, body, Order, page_no=1, page_size=1).items
    assert type(order.order_status) is OrderStatus
    assert type(order.order_type) is OrderType
    assert order.order_status == "archived"
    assert order.order_status.value == "archived"
    assert not order.order_status.documented
    assert order.currency_code is CurrencyCode.USD
    assert order.currency_code.documented
    assert order.order_type == ""
    assert not order.order_type.documented
    assert "archived" not in {member.value for member in OrderStatus}
    assert OrderStatus("archived") is order.order_status  # the same value, the same member
    assert pickle.loads(pickle.dumps(order)) == order


@pytest.mark.parametrize(
    ("cls", "record", "key"),
    [
        (Order, {"orderNo": "N1"}, "id"),
        (Order, {"id": None}, "id"),
        (Order, {"id": ""}, "id"),
        (Product, {"productNo": ""}, "productNo"),
        (PackageOrder, {"device_id": "1"}, "orderCode"),
        (SubscriptionProduct, {"name": "P-Series"}, "productId"),
        (SubscriptionProduct, {"productId": None}, "productId"),
    ],
)
def test_a_record_without_its_key_is_a_located_format_error(
    cls: type[Any],
    record: dict[str, Any],
    key: str,
) -> None:
    """Each list's key (and a product line's id) cannot be missing: such a record could not be
    told apart from others, so it is refused on both the fast path and the error path."""
    from yeastar_csss_async._fast_structure import structure_fn

    with pytest.raises(Exception):  # noqa: B017, PT011 - the fast path only has to refuse
        structure_fn(cls)(record)
    valid = {
        Order: {"id": "0"},
        Product: {"productNo": "0"},
        PackageOrder: {"orderCode": "0"},
        SubscriptionProduct: {"productId": 1},
    }[cls]
    assert structure_items([valid], cls, path="results")
    with pytest.raises(ResponseFormatError) as caught:
        structure_items([valid, record], cls, path="results")
    assert caught.value.path == f"results[1].{key}"
    assert "required key" in str(caught.value)


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
    records[3] = {"id": "3", **record}
    with pytest.raises(ResponseFormatError) as caught:
        structure_items(records, Order, path="result.results")
    assert caught.value.path == path
    assert path in str(caught.value)


def test_a_bad_nested_value_names_its_json_path() -> None:
    records = [{"productNo": "P", "serviceList": [{}, {"serviceExpireDate": {"when": 1}}]}]
    with pytest.raises(ResponseFormatError) as caught:
        structure_items(records, Product, path="result.results")
    assert caught.value.path == "result.results[0].serviceList[1].serviceExpireDate"


def test_a_record_that_is_not_an_object_names_its_index() -> None:
    with pytest.raises(ResponseFormatError) as caught:
        structure_items([{"id": "1"}, "nope"], Order, path="result.results")
    assert caught.value.path == "result.results[1]"


def test_results_that_is_not_a_list_is_a_format_error() -> None:
    with pytest.raises(ResponseFormatError) as caught:
        structure_items({"a": 1}, Order, path="result.results")
    assert caught.value.path == "result.results"


def test_models_are_frozen() -> None:
    order = seed_orders()[0]
    with pytest.raises(AttributeError):
        order.id = "x"  # type: ignore[misc]


# --- a property: any value in any field --------------------------------------------------


@settings(max_examples=400, deadline=None)
@given(which=st.integers(0, len(SEED_RECORDS) - 1), data=st.data())
def test_any_value_in_any_field_gives_a_model_or_a_located_format_error(
    which: int,
    data: st.DataObject,
) -> None:
    cls, record = SEED_RECORDS[which]
    key = data.draw(st.sampled_from(sorted(record)), label="key")
    value = data.draw(json_values, label="value")
    broken = {**record, key: value}
    try:
        structure_items([broken], cls, path="results")
    except ResponseFormatError as error:
        assert error.path.startswith(f"results[0].{key}")  # noqa: PT017 - either outcome is fine
