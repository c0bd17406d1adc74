"""How each model reads its JSON: the key of every field and what kind of value it holds.

This is the one place that decides it; the cattrs converters (``_converters``) and the
generated fast structure functions (``_fast_structure``) both read :func:`field_plans`.
"""

from __future__ import annotations

import types
import typing
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

import attrs

from .models import (
    EndUserInfo,
    OpenStrEnum,
    Order,
    PackageOrder,
    Product,
    ServiceInfo,
    SubscriptionProduct,
)

__all__ = ["MODELS", "FieldPlan", "Kind", "field_plans", "json_key"]

MODELS: tuple[type[Any], ...] = (
    Order,
    EndUserInfo,
    ServiceInfo,
    Product,
    SubscriptionProduct,
    PackageOrder,
)
"""Every model structured from JSON, nested ones before the ones that hold them."""

Kind = Literal[
    "str", "int", "decimal", "epoch_ms", "csss_date", "json_list", "enum", "model", "model_list"
]

_CSSS_DATE_FIELDS = frozenset({"order_date", "active_date", "expire_date"})
"""Datetime fields in the CSSS text format; every other datetime is epoch milliseconds."""
_KEY_EXCEPTIONS: dict[type[Any], dict[str, str]] = {
    PackageOrder: {"device_id": "device_id", "main_iccid": "main_iccid"},
}
"""JSON keys that are not the camelCase of the attribute name."""
FALLBACK_KEYS: dict[type[Any], dict[str, str]] = {PackageOrder: {"device_id": "deviceId"}}
"""A second JSON key read when the first is absent or null (the CSSS sends both)."""


@attrs.frozen
class FieldPlan:
    """How one attribute is read: from ``key`` (else ``fallback``), as ``kind``; ``target`` is
    the enum class (``enum``) or the model class (``model``, ``model_list``). A ``required``
    field (typed without ``None``) refuses a record where it is absent, null or ``""``."""

    name: str
    key: str
    kind: Kind
    target: type[Any] | None = None
    fallback: str | None = None
    required: bool = False


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def json_key(cls: type[Any], attribute: str) -> str:
    """The JSON key an attribute of a model is read from."""
    return _KEY_EXCEPTIONS.get(cls, {}).get(attribute) or _camel(attribute)


def _members(tp: object) -> tuple[Any, ...]:
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return tuple(m for m in typing.get_args(tp) if m is not type(None))
    return (tp,)


def _kind(name: str, tp: object) -> tuple[Kind, type[Any] | None]:
    if typing.get_origin(tp) is list:
        (item,) = typing.get_args(tp)
        return ("model_list", item) if attrs.has(item) else ("json_list", None)
    members = _members(tp)
    for member in members:
        if isinstance(member, type) and issubclass(member, OpenStrEnum):
            return "enum", member
    (only,) = members
    if attrs.has(only):
        return "model", only
    if only is datetime:
        return ("csss_date" if name in _CSSS_DATE_FIELDS else "epoch_ms"), None
    kinds: dict[object, Kind] = {str: "str", int: "int", Decimal: "decimal"}
    return kinds[only], None


_PLANS: dict[type[Any], tuple[FieldPlan, ...]] = {}


def field_plans(cls: type[Any]) -> tuple[FieldPlan, ...]:
    """How every attribute of ``cls`` is read, in declaration order (worked out once)."""
    if cls not in _PLANS:
        _PLANS[cls] = _plans(cls)
    return _PLANS[cls]


def _plans(cls: type[Any]) -> tuple[FieldPlan, ...]:
    hints = typing.get_type_hints(cls)
    plans = []
    for field in attrs.fields(cls):
        hint = hints[field.name]
        kind, target = _kind(field.name, hint)
        required = (
            kind in ("str", "int")
            and type(None) not in typing.get_args(hint)
            and field.default is attrs.NOTHING
        )
        plans.append(
            FieldPlan(
                field.name,
                json_key(cls, field.name),
                kind,
                target,
                FALLBACK_KEYS.get(cls, {}).get(field.name),
                required,
            )
        )
    return tuple(plans)
