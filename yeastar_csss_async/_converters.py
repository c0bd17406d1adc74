"""JSON -> model structuring: one cattrs converter, its hooks generated once per class.

Two converters share the same hooks: a fast one (no detailed validation) on the hot path, and a
detailed one used only after a failure, to say *where* in the body the value did not fit. The
path is given in JSON keys (``results[3].createTime``), not attribute names.
"""

from __future__ import annotations

import enum
import math
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, TypeVar, get_args

import attrs
import cattrs
from cattrs.errors import ClassValidationError, IterableValidationError
from cattrs.gen import make_dict_structure_fn, override

from ._errors import QUOTE_LIMIT, Redactor, ResponseFormatError, quote_value, shorten
from .models import (
    ActivationStatus,
    CurrencyCode,
    EndUserInfo,
    JSONValue,
    Order,
    OrderStatus,
    OrderType,
    PackageOrder,
    PlanStatus,
    Product,
    ServiceInfo,
    SubscriptionProduct,
)

__all__ = ["json_key", "structure_items", "structure_one"]

T = TypeVar("T")

# Which date fields use the CSSS text format; all other datetime fields are epoch ms.
_CSSS_DATE_FIELDS = frozenset({"order_date", "active_date", "expire_date"})
# JSON keys that are not the camelCase of the attribute name.
_KEY_EXCEPTIONS: dict[type[Any], dict[str, str]] = {
    PackageOrder: {"device_id": "device_id", "main_iccid": "main_iccid"},
}
_MODELS: tuple[type[Any], ...] = (
    Order, EndUserInfo, ServiceInfo, Product, SubscriptionProduct, PackageOrder,
)
_ENUMS: tuple[type[enum.StrEnum], ...] = (
    OrderStatus, OrderType, CurrencyCode, ActivationStatus, PlanStatus,
)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def json_key(cls: type[Any], attribute: str) -> str:
    """The JSON key an attribute of a model is read from."""
    return _KEY_EXCEPTIONS.get(cls, {}).get(attribute) or _camel(attribute)


# --- scalar hooks ---------------------------------------------------------------------------

class _BadValue(ValueError):
    """A value that does not fit its field; the message quotes it only when the error is
    reported (redacted first, then cut), see :func:`_format_error`."""

    def __init__(self, value: object, what: str) -> None:
        super().__init__(what)
        self.value = value
        self.what = what

    def describe(self, redact: Redactor | None) -> str:
        return (f"expected {self.what}, got {type(self.value).__name__} "
                f"{quote_value(self.value, redact)}")


def _reject(value: object, what: str) -> _BadValue:
    return _BadValue(value, what)


_INT_TEXT = re.compile(r"\s*[-+]?[0-9]{1,19}\s*")
_DECIMAL_TEXT = re.compile(r"[-+]?[0-9]{1,40}(\.[0-9]{1,40})?([eE][-+]?[0-9]{1,4})?")
_NUMBER_TEXT = re.compile(r"[-+]?[0-9]{1,19}(\.[0-9]{1,19})?")


def _to_str(value: object, _: object = None) -> str:
    """Strings as sent; numbers sent where the docs say string become their JSON text."""
    if isinstance(value, str):
        return value
    if isinstance(value, int | Decimal) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    raise _reject(value, "a string")


def _to_int(value: object, _: object = None) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, Decimal | float) and _small_whole(value):
        return int(value)
    if isinstance(value, str) and _INT_TEXT.fullmatch(value):
        return int(value)
    raise _reject(value, "an integer")


def _small_whole(value: Decimal | float) -> bool:
    """A whole number of at most 19 digits (``1e999999`` is never expanded into an int)."""
    if isinstance(value, float):
        return math.isfinite(value) and value.is_integer() and abs(value) < 1e19
    return value.is_finite() and value.adjusted() < 19 and value == value.to_integral_value()


def _to_decimal(value: object, _: object = None) -> Decimal:
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
        raise _reject(value, "a decimal number")
    if not result.is_finite():
        raise _reject(value, "a finite decimal number")
    return result


_MS_MIN, _MS_MAX = -62135596800000, 253402300799999  # years 1 .. 9999


def _epoch_ms(value: object, _: object = None) -> datetime | None:
    """Epoch milliseconds (number or numeric string) -> aware UTC datetime; ``""`` -> None."""
    if value.__class__ is int and _MS_MIN <= value <= _MS_MAX:
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
                raise _reject(value, "epoch milliseconds")
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise _reject(value, "epoch milliseconds")
    if not (_MS_MIN <= value <= _MS_MAX):
        raise _reject(value, "epoch milliseconds within years 1-9999")
    return datetime.fromtimestamp(float(value) / 1000, tz=UTC)


def _iso_datetime(text: str) -> datetime | None:
    if not text.isascii() or len(text) > 40:
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


_CSSS_FORMATS = ("%Y%m%d%H%M%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d")


def _csss_date(value: object, _: object = None) -> datetime | None:
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
    raise _reject(value, "a date as yyyyMMddHHmmss")


def _json_list(value: object, _: object = None) -> list[JSONValue]:
    if value is None:
        return []
    if isinstance(value, list):
        return value
    raise _reject(value, "a list")


def _enum_hook(enum_cls: type[enum.StrEnum]) -> Callable[[object, object], object]:
    members = {member.value: member for member in enum_cls}

    def structure(value: object, _: object = None) -> object:
        if value is None:
            return None
        if isinstance(value, str):
            return members.get(value, value)
        return _to_str(value)

    return structure


def _optional_scalar(tp: object) -> type[Any] | None:
    """``X`` of ``X | None`` for the scalars we structure ourselves, else None."""
    args = get_args(tp)
    if len(args) == 2 and type(None) in args:
        inner = args[0] if args[1] is type(None) else args[1]
        if inner in (str, int, Decimal, datetime):
            return inner  # type: ignore[no-any-return]
    return None


# One flat function per optional scalar, with the type the API normally sends checked first:
# these run for every field of every record (cattrs' own Optional handling dispatches per call).

def _opt_str(value: object, _: object = None) -> str | None:
    if value is None or value.__class__ is str:
        return value
    return _to_str(value)


def _opt_int(value: object, _: object = None) -> int | None:
    if value is None or value.__class__ is int:
        return value
    return _to_int(value)


def _opt_decimal(value: object, _: object = None) -> Decimal | None:
    if value is None:
        return None
    if value.__class__ is Decimal and value.is_finite():
        return value
    return _to_decimal(value)


_OPTIONAL_HOOKS: dict[type[Any], Callable[[object, object], object]] = {
    str: _opt_str, int: _opt_int, Decimal: _opt_decimal, datetime: _epoch_ms,
}


def _union_enum(tp: object) -> type[enum.StrEnum] | None:
    for arg in get_args(tp):
        if isinstance(arg, type) and issubclass(arg, enum.StrEnum):
            return arg
    return None


# --- converters -----------------------------------------------------------------------------

def _make_converter(detailed: bool) -> cattrs.Converter:
    converter = cattrs.Converter(detailed_validation=detailed, forbid_extra_keys=False)
    for scalar, scalar_hook in ((str, _to_str), (int, _to_int), (Decimal, _to_decimal),
                                (datetime, _epoch_ms)):
        converter.register_structure_hook(scalar, scalar_hook)
    converter.register_structure_hook_factory(
        lambda tp: _union_enum(tp) is not None,
        lambda tp: _enum_hook(_union_enum(tp)),  # type: ignore[arg-type]
    )
    converter.register_structure_hook_factory(
        lambda tp: _optional_scalar(tp) is not None,
        lambda tp: _OPTIONAL_HOOKS[_optional_scalar(tp)],  # type: ignore[index]
    )
    for cls in _MODELS:
        overrides: dict[str, Any] = {}
        for field in attrs.fields(cls):
            hook: Callable[[object, object], object] | None = None
            if field.name in _CSSS_DATE_FIELDS:
                hook = _csss_date
            elif field.name in ("refueling_package_list", "profile_list"):
                hook = _json_list
            elif field.name == "service_list":
                hook = _list_of(converter, ServiceInfo)
            overrides[field.name] = override(rename=json_key(cls, field.name), struct_hook=hook)
        base = make_dict_structure_fn(cls, converter, **overrides)
        converter.register_structure_hook(cls, _mapping_guard(cls, base))
    return converter


def _list_of(converter: cattrs.Converter, item: type[Any]) -> Callable[[object, object], object]:
    def structure(value: object, _: object = None) -> list[Any]:
        if value is None:
            return []
        if not isinstance(value, list):
            raise _reject(value, "a list")
        return converter.structure(value, list[item])  # type: ignore[valid-type]

    return structure


def _mapping_guard(
    cls: type[Any], base: Callable[[Mapping[str, Any], Any], Any]
) -> Callable[[object, Any], Any]:
    """Reject non-objects with a clear error, and read PackageOrder's ``deviceId`` fallback."""
    fallback = cls is PackageOrder

    def structure(value: object, tp: Any) -> Any:
        if not isinstance(value, Mapping):
            raise _reject(value, "a JSON object")
        if fallback and value.get("device_id") is None and value.get("deviceId") is not None:
            value = {**value, "device_id": value["deviceId"]}
        return base(value, tp)

    return structure


_FAST = _make_converter(detailed=False)
_DETAILED = _make_converter(detailed=True)


# --- error paths ----------------------------------------------------------------------------

def _first_failure(exc: BaseException, cls: Any) -> tuple[str, BaseException]:
    """Walk cattrs' exception groups down to the first leaf; return (path, leaf)."""
    if isinstance(exc, ClassValidationError | IterableValidationError):
        for sub in exc.exceptions:
            step, next_cls = "", None
            for note in getattr(sub, "__notes__", ()):
                name = getattr(note, "name", None)
                if name is not None and attrs.has(cls):
                    step = "." + json_key(cls, name)
                    next_cls = getattr(note, "type", None)
                    break
                index = getattr(note, "index", None)
                if index is not None:
                    step = f"[{index}]"
                    next_cls = getattr(note, "type", None)
                    break
            inner_path, leaf = _first_failure(sub, _model_in(next_cls))
            return step + inner_path, leaf
    return "", exc


def _model_in(tp: Any) -> Any:
    """The attrs class inside ``X | None`` or ``list[X]``, if any."""
    if tp is not None and attrs.has(tp):
        return tp
    for arg in get_args(tp):
        if attrs.has(arg):
            return arg
    return None


def _describe_leaf(leaf: BaseException, redact: Redactor | None) -> str:
    if isinstance(leaf, _BadValue):
        return leaf.describe(redact)
    text = str(leaf) or type(leaf).__name__
    return shorten(redact(text) if redact is not None else text, 2 * QUOTE_LIMIT)


def _format_error(document: object, cls: type[Any], path: str,
                  redact: Redactor | None) -> ResponseFormatError:
    """The error for a record that did not fit: where (in JSON keys) and why, redacted."""
    failure: tuple[str, BaseException] | None = None
    try:
        _DETAILED.structure(document, cls)
    except Exception as exc:
        failure = _first_failure(exc, cls)
    # Built outside the handler, so nothing chains the cattrs errors (they hold the values).
    if failure is None:
        return ResponseFormatError(f"{cls.__name__}: value did not fit", path=path)
    sub_path, leaf = failure
    return ResponseFormatError(f"{cls.__name__}: {_describe_leaf(leaf, redact)}",
                               path=path + sub_path)


def structure_one(document: object, cls: type[T], *, path: str,
                  redact: Redactor | None = None) -> T:
    """Structure one JSON object into ``cls``; raise ResponseFormatError naming the path."""
    try:
        return _FAST.structure(document, cls)
    except Exception:
        pass
    raise _format_error(document, cls, path, redact)


def structure_items(documents: object, cls: type[T], *, path: str,
                    redact: Redactor | None = None) -> list[T]:
    """Structure a JSON list of objects; ``None`` is an empty list.

    A record that does not fit raises :class:`ResponseFormatError` naming its path
    (``result.results[3].createTime``) and quoting the bad value, secrets masked by ``redact``.
    """
    if documents is None:
        return []
    if not isinstance(documents, list):
        raise ResponseFormatError(
            f"expected a list of {cls.__name__}, got {type(documents).__name__}", path=path
        )
    structure = _FAST.get_structure_hook(cls)
    try:
        return [structure(document, cls) for document in documents]
    except Exception:
        pass
    for index, document in enumerate(documents):  # rare: find which record failed, and where
        failed = False
        try:
            structure(document, cls)
        except Exception:
            failed = True
        if failed:
            raise _format_error(document, cls, f"{path}[{index}]", redact)
    raise ResponseFormatError(f"{cls.__name__}: value did not fit", path=path)  # pragma: no cover
