"""Scalar hooks (``_scalars``): one JSON value -> one field value. Each accepts the type the API
documents and the forms it is known to send instead (numbers as strings, ``""`` for a missing
date), and raises :class:`BadValue` for anything else, which quotes the value only when the
error is reported, redacted first.

First as a model sees them, through the converter; then each hook on its own."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from yeastar_csss_async import Order, OrderStatus, PackageOrder, Product
from yeastar_csss_async._converters import structure_one
from yeastar_csss_async._redaction import QUOTE_LIMIT, Redactor
from yeastar_csss_async._scalars import (
    FLOAT_EXACT_MS_MAX,
    FLOAT_EXACT_MS_MIN,
    MS_MAX,
    MS_MIN,
    BadValue,
    csss_date,
    enum_hook,
    epoch_ms,
    json_list,
    opt_decimal,
    opt_int,
    opt_str,
    required_int,
    required_str,
    to_decimal,
    to_int,
    to_str,
)

from tests._support.seeds import ms

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def refused(hook: Callable[[object], object], value: object) -> BadValue:
    """The BadValue ``hook`` raises for ``value``."""
    with pytest.raises(BadValue) as caught:
        hook(value)
    assert caught.value.value is value
    return caught.value


# --- leniency, as a model sees it (through the converter) ---------------------------------


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


# --- each hook on its own --------------------------------------------------------------------


def test_to_str_keeps_strings_and_writes_numbers_as_their_json_text() -> None:
    value: object  # the values tried below are of many types
    assert to_str("007") == "007"
    assert to_str("") == ""
    assert to_str(1002069) == "1002069"
    assert to_str(Decimal("130.00")) == "130.00"  # the digits sent
    assert to_str(0.1) == "0.1"
    for value in (True, None, [], {"a": 1}):
        assert refused(to_str, value).what == "a string"


def test_to_int_takes_whole_numbers_in_any_form_and_nothing_else() -> None:
    value: object  # the values tried below are of many types
    assert to_int(7) == 7
    assert to_int(Decimal("7.000")) == 7
    assert to_int(7.0) == 7
    assert to_int(" -12 ") == -12
    assert to_int("+5") == 5
    assert to_int("9" * 19) == int("9" * 19)
    for value in (
        True,  # a bool is an int to Python, not to JSON
        1.5,
        Decimal("1.5"),
        "1.5",
        "",
        "1e3",
        "9" * 20,  # past 19 digits
        "١٢٣",  # digits int() would read, but no API sends
        1e19,
        float("inf"),
        float("nan"),
        None,
    ):
        assert refused(to_int, value).what == "an integer"


def test_a_huge_exponent_is_refused_without_being_expanded_into_an_int() -> None:
    """``Decimal("1e999999")`` is whole, but its int would have a million digits."""
    assert refused(to_int, Decimal("1e999999")).what == "an integer"
    assert refused(opt_int, Decimal("-1e999999")).what == "an integer"


def test_to_decimal_keeps_the_digits_sent() -> None:
    value: object  # the values tried below are of many types
    assert str(to_decimal(Decimal("130.00"))) == "130.00"
    assert str(to_decimal("12.50")) == "12.50"
    assert str(to_decimal(" 3 ")) == "3"
    assert to_decimal(5) == Decimal(5)
    assert str(to_decimal(0.1)) == "0.1"  # the float's shortest text, not its binary value
    assert str(to_decimal("-1.5e3")) == "-1.5E+3"
    for value in ("1,5", "lots", True, None, "1" * 41, [1]):
        assert refused(to_decimal, value).what == "a decimal number"
    for value in (Decimal("NaN"), Decimal("Infinity"), Decimal("-Infinity"), float("inf")):
        assert refused(to_decimal, value).what == "a finite decimal number"
    assert refused(to_decimal, "NaN").what == "a decimal number"  # not a number's text


def test_epoch_ms_gives_aware_utc_datetimes() -> None:
    when = epoch_ms(1680256570000)
    assert when == datetime(2023, 3, 31, 9, 56, 10, tzinfo=UTC)
    assert when is not None
    assert when.tzinfo is UTC
    assert epoch_ms("1680256570000") == when
    assert epoch_ms(" 1680256570000 ") == when
    assert epoch_ms(Decimal("1680256570000")) == when
    assert epoch_ms(1680256570000.0) == when
    assert epoch_ms("") is None
    assert epoch_ms(None) is None


def test_epoch_ms_is_exact_to_the_millisecond_from_year_1_to_9999() -> None:
    """Inside the float-exact window (1900-2200) and outside it, every millisecond comes out
    as integer arithmetic gives it: float division at year 9999 would be microseconds off."""
    rng = random.Random(20261122)
    samples = [MS_MIN, MS_MAX, FLOAT_EXACT_MS_MIN, FLOAT_EXACT_MS_MAX, -1, 0, 1]
    samples += [FLOAT_EXACT_MS_MIN - 1, FLOAT_EXACT_MS_MAX + 1]
    samples += [rng.randint(MS_MIN, MS_MAX) for _ in range(2000)]
    samples += [rng.randint(FLOAT_EXACT_MS_MIN, FLOAT_EXACT_MS_MAX) for _ in range(2000)]
    for value in samples:
        assert epoch_ms(value) == EPOCH + timedelta(milliseconds=value), value
        assert epoch_ms(str(value)) == EPOCH + timedelta(milliseconds=value), value
    assert epoch_ms(MS_MIN) == datetime(1, 1, 1, tzinfo=UTC)
    assert epoch_ms(MS_MAX) == datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=UTC)


def test_epoch_ms_refuses_times_outside_years_1_to_9999_and_non_numbers() -> None:
    value: object  # the values tried below are of many types
    for value in (MS_MAX + 1, MS_MIN - 1, 10**400, float("nan")):
        assert refused(epoch_ms, value).what == "epoch milliseconds within years 1-9999"
    for value in (True, "soon", [1], {"ms": 1}, "１７００"):
        assert refused(epoch_ms, value).what == "epoch milliseconds"


def test_csss_date_reads_the_documented_formats_as_naive_datetimes() -> None:
    value: object  # the values tried below are of many types
    expected = datetime(2019, 3, 2, 17, 27, 19)
    assert csss_date("20190302172719") == expected
    assert csss_date("2019-03-02 17:27:19") == expected
    assert csss_date(" 20190302172719 ") == expected
    assert csss_date("2019-03-02") == datetime(2019, 3, 2)
    parsed = csss_date("20190302172719")
    assert parsed is not None
    assert parsed.tzinfo is None  # the API does not say which zone: none is invented
    assert csss_date("") is None
    assert csss_date(None) is None
    for value in (
        "2019/03/02",
        "20190302",
        "20191302172719",  # month 13
        20190302172719,  # a number, not the documented text
        "２０１９０３０２１７２７１９",  # full-width digits
        "2" * 41,
    ):
        assert refused(csss_date, value).what == "a date as yyyyMMddHHmmss"


def test_json_list_makes_null_an_empty_list_and_refuses_anything_else() -> None:
    value: object  # the values tried below are of many types
    assert json_list(None) == []
    items = [1, {"a": [2]}]
    assert json_list(items) is items
    for value in ({"a": 1}, "[]", 0):
        assert refused(json_list, value).what == "a list"


def test_enum_hook_makes_every_value_a_member_of_its_enum() -> None:
    hook = enum_hook(OrderStatus)

    def status(value: object) -> object:
        return hook(value, OrderStatus)  # (value, type), as cattrs calls a hook

    assert status(None) is None
    assert status("succeed") is OrderStatus.SUCCEED
    extra = status("on_hold")
    assert type(extra) is OrderStatus
    assert extra == "on_hold"
    assert not OrderStatus("on_hold").documented
    numbered = status(3)  # a number where the docs say string: its JSON text
    assert type(numbered) is OrderStatus
    assert numbered == "3"
    with pytest.raises(BadValue):
        status(True)


def test_required_keys_refuse_null_and_empty_but_not_zero() -> None:
    value: object  # the values tried below are of many types
    assert required_str("1002069") == "1002069"
    assert required_str(1002069) == "1002069"
    assert required_str(0) == "0"
    for value in (None, ""):
        assert refused(required_str, value).what == "a non-empty string (a required key)"
    assert required_int("13") == 13
    assert required_int(0) == 0
    assert refused(required_int, None).what == "an integer (a required key)"
    assert refused(required_int, "").what == "an integer"


def test_optional_hooks_pass_null_and_check_everything_else() -> None:
    assert opt_str(None) is None
    assert opt_str("x") == "x"
    assert opt_str(5) == "5"
    assert opt_int(None) is None
    assert opt_int("5") == 5
    assert refused(opt_int, True).what == "an integer"
    assert opt_decimal(None) is None
    assert str(opt_decimal(Decimal("1.50"))) == "1.50"
    assert str(opt_decimal("1.50")) == "1.50"
    assert refused(opt_decimal, Decimal("NaN")).what == "a finite decimal number"


# --- how a bad value is quoted -----------------------------------------------------------


def test_a_bad_value_is_quoted_only_when_reported_redacted_then_cut() -> None:
    secret = "s3cr3t-Value-42"
    value = "x" * 70 + secret  # the secret straddles the cut: masking must come first
    error = BadValue(value, "an integer")
    assert secret not in str(error)  # the message alone never quotes the value
    assert secret not in repr(error)
    assert "x" * 10 not in str(error)
    described = error.describe(Redactor([secret]))
    assert described.startswith("expected an integer, got str '")
    assert "***" in described
    assert "s3cr3t" not in described
    unredacted = BadValue("y" * 1000, "a string").describe(None)
    assert len(unredacted) <= len("expected a string, got str ") + QUOTE_LIMIT
    assert unredacted.endswith("...")
