"""Scalar hooks: one JSON value -> one field value, lenient where the docs are loose.

Each hook takes ``(value, type)`` like a cattrs hook, accepts the type the API documents and
the forms it is known to send instead (numbers as strings, ``""`` for a missing date), and
raises :class:`BadValue` for anything else. The values are quoted only when the error is
reported, redacted first (see ``_converters``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from ._redaction import Redactor, quote_value
from .models import JSONValue, OpenStrEnum

__all__ = [
    "FLOAT_EXACT_MS_MAX",
    "FLOAT_EXACT_MS_MIN",
    "MS_MAX",
    "MS_MIN",
    "BadValue",
    "csss_date",
    "enum_hook",
    "epoch_ms",
    "json_list",
    "opt_decimal",
    "opt_int",
    "opt_str",
    "reject",
    "required_int",
    "required_str",
    "to_decimal",
    "to_int",
    "to_str",
]


class BadValue(ValueError):
    """A value that does not fit its field; the message quotes it only when the error is
    reported (redacted first, then cut), see :func:`_format_error`."""

    def __init__(self, value: object, what: str) -> None:
        super().__init__(what)
        self.value = value
        self.what = what

    def describe(self, redact: Redactor | None) -> str:
        return (
            f"expected {self.what}, got {type(self.value).__name__} "
            f"{quote_value(self.value, redact)}"
        )


def reject(value: object, what: str) -> BadValue:
    return BadValue(value, what)


_INT_TEXT = re.compile(r"\s*[-+]?[0-9]{1,19}\s*")
_DECIMAL_TEXT = re.compile(r"[-+]?[0-9]{1,40}(\.[0-9]{1,40})?([eE][-+]?[0-9]{1,4})?")
_NUMBER_TEXT = re.compile(r"[-+]?[0-9]{1,19}(\.[0-9]{1,19})?")


def to_str(value: object, _: object = None) -> str:
    """Strings as sent; numbers sent where the docs say string become their JSON text."""
    if isinstance(value, str):
        return value
    if isinstance(value, int | Decimal) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    raise reject(value, "a string")


def to_int(value: object, _: object = None) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, Decimal | float) and _small_whole(value):
        return int(value)
    if isinstance(value, str) and _INT_TEXT.fullmatch(value):
        return int(value)
    raise reject(value, "an integer")


def _small_whole(value: Decimal | float) -> bool:
    """A whole number of at most 19 digits (``1e999999`` is never expanded into an int)."""
    if isinstance(value, float):
        return math.isfinite(value) and value.is_integer() and abs(value) < 1e19
    return value.is_finite() and value.adjusted() < 19 and value == value.to_integral_value()


def to_decimal(value: object, _: object = None) -> Decimal:
    """Money with the digits sent: JSON numbers are decoded as Decimal already."""
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int) and not isinstance(value, bool):
        result = Decimal(value)
    elif isinstance(value, float):
        result = Decimal(repr(value))
    elif isinstance(value, str) and _DECIMAL_TEXT.fullmatch(value.strip()):
        result = Decimal(value.strip())
    else:
        raise reject(value, "a decimal number")
    if not result.is_finite():
        raise reject(value, "a finite decimal number")
    return result


MS_MIN, MS_MAX = -62135596800000, 253402300799999  # years 1 .. 9999
FLOAT_EXACT_MS_MIN, FLOAT_EXACT_MS_MAX = -2208988800000, 7258118400000  # years 1900 .. 2200
"""Within these bounds ``datetime.fromtimestamp(ms / 1000)`` is exact to the microsecond (the
float's error stays under half a microsecond below 2**33 s), and it is the fastest way."""
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def epoch_ms(value: object, _: object = None) -> datetime | None:
    """Epoch milliseconds (number or numeric string) -> aware UTC datetime; ``""`` -> None.

    Exact to the millisecond for every year from 1 to 9999 (integer arithmetic outside the
    window where float division is exact)."""
    if value.__class__ is int and FLOAT_EXACT_MS_MIN <= value <= FLOAT_EXACT_MS_MAX:
        return datetime.fromtimestamp(value / 1000, tz=UTC)
    if value is None or value == "":
        return None
    if isinstance(value, str):
        text = value.strip()
        if _NUMBER_TEXT.fullmatch(text):
            value = Decimal(text)
        else:
            parsed = _iso_datetime(text)
            if parsed is None:
                raise reject(value, "epoch milliseconds")
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise reject(value, "epoch milliseconds")
    if not (MS_MIN <= value <= MS_MAX):
        raise reject(value, "epoch milliseconds within years 1-9999")
    microseconds = round(Decimal(value) * 1000)  # exact for ints, Decimals and floats alike
    return _EPOCH + timedelta(microseconds=microseconds)


def _iso_datetime(text: str) -> datetime | None:
    if not text.isascii() or len(text) > 40:
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


_CSSS_FORMATS = ("%Y%m%d%H%M%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d")


def csss_date(value: object, _: object = None) -> datetime | None:
    """CSSS ``yyyyMMddHHmmss`` (or ``yyyy-MM-dd HH:mm:ss``) -> naive datetime; ``""`` -> None."""
    if value is None or value == "":
        return None
    if isinstance(value, str) and value.isascii() and len(value) <= 40:
        text = value.strip()
        for fmt in _CSSS_FORMATS:
            try:
                return datetime.strptime(text, fmt)
            except ValueError:
                continue
    raise reject(value, "a date as yyyyMMddHHmmss")


def json_list(value: object, _: object = None) -> list[JSONValue]:
    if value is None:
        return []
    if isinstance(value, list):
        return value
    raise reject(value, "a list")


def enum_hook(enum_cls: type[OpenStrEnum]) -> Callable[[object, object], object]:
    """Structure an enum field: ``None`` stays ``None``; any string (a number's JSON text when
    a number is sent) becomes a member, an extra one when the value is not documented."""

    def structure(value: object, _: object = None) -> object:
        if value is None:
            return None
        return enum_cls(value if value.__class__ is str else to_str(value))

    return structure


def required_str(value: object, _: object = None) -> str:
    """A key a record cannot do without: a string (or a number's text), never null or empty."""
    text = None if value is None else to_str(value)
    if not text:
        raise reject(value, "a non-empty string (a required key)")
    return text


def required_int(value: object, _: object = None) -> int:
    """A required integer (``SubscriptionProduct.product_id``): never null."""
    if value is None:
        raise reject(value, "an integer (a required key)")
    return to_int(value)


# One flat function per optional scalar, with the type the API normally sends checked first:
# these run for every field of every record (cattrs' own Optional handling dispatches per call).


def opt_str(value: object, _: object = None) -> str | None:
    if value is None or value.__class__ is str:
        return value
    return to_str(value)


def opt_int(value: object, _: object = None) -> int | None:
    if value is None or value.__class__ is int:
        return value
    return to_int(value)


def opt_decimal(value: object, _: object = None) -> Decimal | None:
    if value is None:
        return None
    if value.__class__ is Decimal and value.is_finite():
        return value
    return to_decimal(value)
