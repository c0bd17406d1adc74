"""Scalar hooks (``_scalars``): one JSON value -> one field value. Each accepts the type the API
documents and the forms it is known to send instead (numbers as strings, ``""`` for a missing
date) and raises :class:`BadValue` for anything else.

First as a model sees them, through the converter."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from yeastar_csss_async import Order, PackageOrder, Product
from yeastar_csss_async._converters import structure_one

from tests._support.seeds import ms


def test_loose_numbers_are_accepted_where_docs_are_loose() -> None:
    order = structure_one(
        {"id": 1002069, "createTime": "1680256570000", "totalAmount": "12.50"}, Order, path="$"
    )
    assert order.id == "1002069"
    assert order.create_time == ms(1680256570000)
    assert order.total_amount == Decimal("12.50")
    product = structure_one(
        {"productNo": "P", "planAutoRenewal": "1", "quantity": 5}, Product, path="$"
    )
    assert product.plan_auto_renewal == 1
    assert product.quantity == "5"


def test_null_lists_become_empty_lists() -> None:
    product = structure_one({"productNo": "P", "serviceList": None}, Product, path="$")
    assert product.service_list == []
    order = structure_one(
        {"orderCode": "C", "refuelingPackageList": None, "profileList": [{"a": 1}]},
        PackageOrder,
        path="$",
    )
    assert order.refueling_package_list == []
    assert order.profile_list == [{"a": 1}]


def test_csss_dates_accept_the_dashed_format_and_empty_string() -> None:
    order = structure_one(
        {"orderCode": "C", "expireDate": "2023-12-31 23:59:59", "activeDate": ""},
        PackageOrder,
        path="$",
    )
    assert order.expire_date == datetime(2023, 12, 31, 23, 59, 59)
    assert order.active_date is None
