"""Generated structure functions: the per-record hot path from JSON to a model.

For each model class two functions are written and compiled, once, from the class's field
plans (``_schema``):

* :func:`structure_fn` reads a decoded JSON object (a ``dict``) with one ``dict.get`` per key;
* :func:`row_fn` reads a :func:`row_type` instance: msgspec decodes a page straight into these
  structs (one attribute per JSON key, its type checked in C), which is faster than building
  dicts and leaves less to check.

Both convert each value inline when it already has the type the API sends (a ``str``, an
``int`` of epoch milliseconds, a ``Decimal``, a documented enum value), call the scalar hook
(``_scalars``) for anything else, and build the instance without its ``__init__``.

The fields are stored by plain attribute assignment into a private *builder*: a subclass of the
model with no slots of its own and Python's default ``__setattr__``, so CPython stores each
value straight into its slot (``STORE_ATTR_SLOT``). The finished instance's ``__class__`` is then
set to the model: it is the model's own layout, so the result is an ordinary frozen instance
(``type(o) is Order``) and the builder is never seen. Filling an order's twelve slots this way
takes about 0.2 us, against 0.65 us through the slots' descriptors and 1.0 us through attrs'
frozen ``__init__`` (which calls ``object.__setattr__`` per field).

They raise on any value they cannot take; the caller then falls back to the detailed cattrs
converter, which says where and why (``_converters``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import msgspec

from ._codegen import compile_function
from ._scalars import (
    FLOAT_EXACT_MS_MAX,
    FLOAT_EXACT_MS_MIN,
    csss_date,
    enum_hook,
    epoch_ms,
    json_list,
    reject,
    to_decimal,
    to_int,
    to_str,
)
from ._schema import FieldPlan, field_plans

__all__ = ["row_fn", "row_type", "structure_fn"]

StructureFn = Callable[..., Any]


def _not_a_list(value: object) -> list[Any]:
    raise reject(value, "a list")


def _no_key() -> None:
    raise reject(None, "a required key")


_GLOBALS: dict[str, object] = {
    "_new": object.__new__,
    "_UTC": UTC,
    "_fromts": datetime.fromtimestamp,
    "_str": str,
    "_int": int,
    "_Decimal": Decimal,
    "_list": list,
    "_LO": FLOAT_EXACT_MS_MIN,
    "_HI": FLOAT_EXACT_MS_MAX,
    "_to_str": to_str,
    "_to_int": to_int,
    "_to_decimal": to_decimal,
    "_epoch_ms": epoch_ms,
    "_csss_date": csss_date,
    "_json_list": json_list,
    "_not_a_list": _not_a_list,
    "_no_key": _no_key,
}

_DICT_EXPRESSIONS: dict[str, str] = {
    "str": "v if v.__class__ is _str or v is None else _to_str(v)",
    "int": "v if v.__class__ is _int or v is None else _to_int(v)",
    "decimal": "v if (v.__class__ is _Decimal and v.is_finite()) or v is None else _to_decimal(v)",
    "epoch_ms": "_fromts(v / 1000, _UTC) if v.__class__ is _int and _LO <= v <= _HI "
    "else _epoch_ms(v)",
    "csss_date": "_csss_date(v)",
    "json_list": "v if v.__class__ is _list else _json_list(v)",
    "enum": "w if v.__class__ is _str and (w := {members}(v)) is not None else {hook}(v)",
    "model": "None if v is None else {sub}(v)",
    "model_list": "[{sub}(x) for x in v] if v.__class__ is _list else "
    "[] if v is None else _not_a_list(v)",
}
"""Per kind, the value of a field read from a dict: any JSON value may arrive."""

_ROW_EXPRESSIONS: dict[str, str] = {
    **_DICT_EXPRESSIONS,
    "str": "v",
    "int": "v",
    # msgspec hands ``float_hook`` JSON number text only, and JSON has no NaN or Infinity:
    # a Decimal in a row is finite.
    "decimal": "v if v.__class__ is _Decimal or v is None else _to_decimal(v)",
    "epoch_ms": "_fromts(v / 1000, _UTC) if v is not None and _LO <= v <= _HI else _epoch_ms(v)",
    "json_list": "[] if v is None else v",
    "enum": "w if (w := {members}(v)) is not None else {hook}(v)",
    "model_list": "[] if v is None else [{sub}(x) for x in v]",
}
"""Per kind, the value of a field read from a row: msgspec has checked its type already
(see ``_ROW_FIELD_TYPES``), so only what the type does not settle is left to do."""

_ROW_FIELD_TYPES: dict[str, Any] = {
    "str": str | None,
    "int": int | None,
    "epoch_ms": int | None,
    "csss_date": str | None,
    "enum": str | None,
    "json_list": list[Any] | None,
    "decimal": Any,
}
"""The type msgspec checks (in C) when it decodes a row field. A value of another type makes
it refuse the page, which then takes the general path: there a number sent as text is read as
the number, and a bad value gets its located error. Money stays untyped: msgspec would read
``"٣"`` as ``Decimal(3)``, which the general path refuses."""


def _alt(name: str) -> str:
    """The row attribute holding a field's fallback key (``device_id`` -> ``device_id_alt``)."""
    return f"{name}_alt"


def _field_lines(index: int, plan: FieldPlan, names: dict[str, object], rows: bool) -> list[str]:
    if rows:
        lines = [f"    v = d.{plan.name}"]
        if plan.fallback is not None:
            lines.append(f"    if v is None: v = d.{_alt(plan.name)}")
    else:
        lines = [f"    v = g({plan.key!r})"]
        if plan.fallback is not None:
            lines.append(f"    if v is None: v = g({plan.fallback!r})")
    expression = (_ROW_EXPRESSIONS if rows else _DICT_EXPRESSIONS)[plan.kind]
    if plan.kind == "enum":
        assert plan.target is not None
        # The enum's own value map: its members, and the extra ones it has cached.
        names[f"_m{index}"] = plan.target._value2member_map_.get
        names[f"_e{index}"] = enum_hook(plan.target)
        expression = expression.format(members=f"_m{index}", hook=f"_e{index}")
    elif plan.kind in ("model", "model_list"):
        assert plan.target is not None
        names[f"_sub{index}"] = (row_fn if rows else structure_fn)(plan.target)
        expression = expression.format(sub=f"_sub{index}")
    if plan.required:  # absent, null or "": the caller's detailed converter says which
        empty = "v is None" if plan.kind == "int" else "not v"
        lines += [f"    v = {expression}", f"    if {empty}: _no_key()", f"    o.{plan.name} = v"]
    else:
        lines.append(f"    o.{plan.name} = {expression}")
    return lines


def _builder(cls: type[Any]) -> type[Any]:
    """A subclass of ``cls`` that adds nothing to its layout and assigns attributes the plain
    way (both ``__setattr__`` and ``__delattr__`` must be object's for CPython to use its
    generic, specializable assignment); checked by building one and making it a ``cls``."""
    builder = type(
        f"_{cls.__name__}Builder",
        (cls,),
        {
            "__slots__": (),
            "__setattr__": object.__setattr__,
            "__delattr__": object.__delattr__,
            "__module__": cls.__module__,
            "__doc__": f"Private: builds {cls.__qualname__} instances (never seen outside).",
        },
    )
    probe: Any = object.__new__(builder)
    probe.__class__ = cls  # raises TypeError if the layouts differ: a bug, caught in tests
    return builder


def _generate(cls: type[Any], rows: bool) -> StructureFn:
    name = f"{'from_row' if rows else 'structure'}_{cls.__name__}"
    if cls not in _BUILDERS:
        _BUILDERS[cls] = _builder(cls)
    names: dict[str, object] = {**_GLOBALS, "_cls": cls, "_builder": _BUILDERS[cls]}
    lines = [f"def {name}(d, _=None):", "    o = _new(_builder)"]
    if not rows:
        lines.insert(1, "    g = d.get")
    for index, plan in enumerate(field_plans(cls)):
        lines += _field_lines(index, plan, names, rows)
    lines += ["    o.__class__ = _cls", "    return o"]
    function: StructureFn = compile_function(
        "\n".join(lines), name, f"{name} of {cls.__module__}", names
    )
    source = "a decoded JSON object" if not rows else f"a {row_type(cls).__name__}"
    function.__doc__ = f"Structure {source} into {cls.__qualname__} (generated)."
    return function


_BUILDERS: dict[type[Any], type[Any]] = {}
_STRUCTURE: dict[type[Any], StructureFn] = {}
_ROW: dict[type[Any], StructureFn] = {}
_ROW_TYPES: dict[type[Any], type[msgspec.Struct]] = {}


def structure_fn(cls: type[Any]) -> StructureFn:
    """``structure_<Class>(document, type=None)``: a dict (anything else raises) into ``cls``;
    unknown keys are ignored, missing ones give ``None`` (``[]`` for lists), exactly like the
    detailed converter."""
    if cls not in _STRUCTURE:
        _STRUCTURE[cls] = _generate(cls, rows=False)
    return _STRUCTURE[cls]


def row_fn(cls: type[Any]) -> StructureFn:
    """``from_row_<Class>(row)``: a :func:`row_type` instance into ``cls``, with the same
    conversions as :func:`structure_fn`."""
    if cls not in _ROW:
        _ROW[cls] = _generate(cls, rows=True)
    return _ROW[cls]


def row_type(cls: type[Any]) -> type[msgspec.Struct]:
    """A msgspec struct with one untyped attribute per JSON key of ``cls`` (nested models as
    their own row types), for msgspec to decode a record into; absent keys are ``None``."""
    if cls not in _ROW_TYPES:
        fields: list[tuple[str, Any, Any]] = []
        for plan in field_plans(cls):
            if plan.kind == "model":
                kind: Any = row_type(plan.target) | None  # type: ignore[arg-type]
            elif plan.kind == "model_list":
                kind = list[row_type(plan.target)] | None  # type: ignore[arg-type,misc]
            else:
                kind = _ROW_FIELD_TYPES[plan.kind]
            fields.append((plan.name, kind, msgspec.field(name=plan.key, default=None)))
            if plan.fallback is not None:
                fields.append(
                    (_alt(plan.name), kind, msgspec.field(name=plan.fallback, default=None))
                )
        # gc=False: a row holds only decoded JSON, which cannot form a cycle, and is dropped
        # as soon as its model is built; untracked, it never triggers a collection.
        _ROW_TYPES[cls] = msgspec.defstruct(f"{cls.__name__}Row", fields, gc=False)
    return _ROW_TYPES[cls]
