"""Models and pages as JSON-safe builtins, for web frameworks, logs and exports.

:func:`to_jsonable` is the one place that decides how a value the library returns looks as
JSON. The per-class work (which attributes a model has) is done once per class.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from typing import Any, TypeAlias

import attrs

from ._codegen import compile_function

__all__ = ["JSONSafe", "to_jsonable"]

JSONSafe: TypeAlias = "bool | int | float | str | list[JSONSafe] | dict[str, JSONSafe] | None"
"""What :func:`to_jsonable` returns: values ``json.dumps`` writes as they are."""

_Convert = Callable[[Any], JSONSafe]
_PLAIN: frozenset[type[Any]] = frozenset({str, int, bool, float, type(None)})


def to_jsonable(value: object) -> JSONSafe:
    """``value`` as JSON-safe builtins: ``json.dumps(to_jsonable(page))`` always works.

    * a model (any attrs instance, a :class:`~yeastar_csss_async.Page` included) becomes a
      ``dict`` keyed by its attribute names (snake_case: ``order_no``, ``end_user_info``),
      every attribute included, ``None`` as ``None``; a page gives ``items``, ``page_no``,
      ``page_size``, ``total``, ``total_pages``, ``reported_total_pages`` and, where the page
      has it, ``request_id``;
    * a ``datetime`` (or ``date``) becomes ``isoformat()`` text: aware UTC times end in
      ``+00:00``, CSSS dates (naive) carry no offset;
    * a ``Decimal`` becomes the string of exactly its digits (``"130.00"``, ``"1E+3"``), never
      a float;
    * an enum member becomes its value as a plain ``str`` (also a value the docs do not name);
    * lists and tuples become lists, dicts (with ``str`` keys) dicts, converted item by item;
      ``str``, ``int``, ``bool``, ``float`` and ``None`` are returned as they are.

    Raises ``TypeError`` naming the type of anything else (or of a dict key that is not a
    ``str``). The result shares no mutable state with ``value``.
    """
    kind = type(value)
    if kind in _PLAIN:
        return value  # type: ignore[return-value]  # one of JSONSafe's scalars
    convert = _CONVERTERS.get(kind)
    if convert is None:
        convert = _converter_for(kind)
    return convert(value)


def _converter_for(kind: type[Any]) -> _Convert:
    """How to convert instances of ``kind`` (remembered for the classes that recur)."""
    convert: _Convert
    if attrs.has(kind):
        convert = _model_converter(kind)
    elif issubclass(kind, enum.Enum):
        convert = _enum_value
    elif issubclass(kind, datetime | date):
        convert = _isoformat
    elif issubclass(kind, Decimal):
        convert = str
    elif issubclass(kind, list | tuple):
        convert = _sequence
    elif issubclass(kind, dict):
        convert = _mapping
    elif issubclass(kind, str):
        convert = str.__str__  # a str subclass: a plain str of the same text
    elif issubclass(kind, int):
        convert = int.__index__
    elif issubclass(kind, float):
        convert = float
    else:
        raise TypeError(f"to_jsonable() cannot convert a {kind.__module__}.{kind.__qualname__}")
    if len(_CONVERTERS) < _MAX_CLASSES:  # classes made on the fly must not grow it forever
        _CONVERTERS[kind] = convert
    return convert


_CONVERTERS: dict[type[Any], _Convert] = {}
_MAX_CLASSES = 1024


def _model_converter(kind: type[Any]) -> _Convert:
    """A function made for ``kind`` (as attrs and cattrs make theirs): one local per attribute
    and one dict display, about a fifth faster than a loop over the names."""
    names = [field.name for field in attrs.fields(kind)]  # identifiers: attrs checks them
    lines = ["def convert(model):"]
    lines += [f"    v{index} = model.{name}" for index, name in enumerate(names)]
    items = ", ".join(
        f"{name!r}: v{index} if type(v{index}) in plain else jsonable(v{index})"
        for index, name in enumerate(names)
    )
    lines.append(f"    return {{{items}}}")
    namespace: dict[str, Any] = {"plain": _PLAIN, "jsonable": to_jsonable}
    label = f"to_jsonable of {kind.__module__}.{kind.__qualname__}"
    convert: _Convert = compile_function("\n".join(lines), "convert", label, namespace)
    return convert


def _enum_value(member: enum.Enum) -> JSONSafe:
    return to_jsonable(member.value)


def _isoformat(moment: date) -> str:
    return moment.isoformat()


def _sequence(items: list[Any] | tuple[Any, ...]) -> JSONSafe:
    plain = _PLAIN
    return [item if type(item) in plain else to_jsonable(item) for item in items]


def _mapping(mapping: dict[Any, Any]) -> JSONSafe:
    result: dict[str, JSONSafe] = {}
    for key, item in mapping.items():
        if type(key) is not str:
            if not isinstance(key, str):
                raise TypeError(f"to_jsonable() needs str dict keys, got a {type(key).__name__}")
            key = str.__str__(key)
        result[key] = item if type(item) in _PLAIN else to_jsonable(item)
    return result
