"""Records as spreadsheet rows: which columns a model gives, and what kind of value each holds.

The rules, for ``--format xlsx`` and ``--format csv --excel`` (the README says the same):

* a plain attribute is a column named after it (``order_no``);
* a time the API sends as epoch milliseconds (an aware UTC ``datetime``) is a column named
  ``NAME (UTC)``, holding the UTC time without its zone (spreadsheets store none); a CSSS date
  (the API names no zone) keeps its bare name and its value as sent;
* a nested model (``end_user_info``) is flattened into one column per attribute, named by the
  attribute without a trailing ``_info``, ``_`` and the inner name: ``end_user_company_name``
  (empty cells when the whole object is absent);
* a list of models (``service_list``) goes to a table of its own, one row per item, named
  ``X_list`` -> ``Xs`` (``services``) and keyed by the record's key (its first attribute:
  ``product_no``), or, where a format has a single table, into one JSON text cell;
* any other list (``refueling_package_list``, ``profile_list``) is one JSON text cell.

What a column holds is decided once per model, from :func:`yeastar_csss_async._schema
.field_plans` (the one place that knows which times are epoch milliseconds).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import attrs

from .._schema import field_plans

__all__ = ["CellKind", "Child", "Column", "Table", "table_of"]

CellKind = Literal["text", "int", "decimal", "utc_time", "time", "json"]
"""What a column holds: text (ids, codes, enum values), whole numbers, money, times (UTC or
as sent), or JSON text."""

_KINDS: dict[str, CellKind] = {
    "str": "text",
    "enum": "text",
    "int": "int",
    "decimal": "decimal",
    "epoch_ms": "utc_time",
    "csss_date": "time",
    "json_list": "json",
    "model_list": "json",
}


@attrs.frozen
class Column:
    """One column: its header, what it holds, and how to read its value from a record."""

    header: str
    kind: CellKind
    get: Callable[[Any], object] = attrs.field(eq=False, repr=False)


@attrs.frozen
class Child:
    """A list of models of each record, written as a table of its own."""

    attribute: str
    """The record's attribute holding the list (``service_list``)."""
    key: Column
    """The record's key column, repeated on every row of the child table."""
    table: Table
    """The columns of one item."""


@attrs.frozen
class Table:
    """The columns of one model, and the lists of models that go to tables of their own."""

    name: str
    columns: tuple[Column, ...]
    children: tuple[Child, ...] = ()

    @property
    def headers(self) -> list[str]:
        """The header row."""
        return [column.header for column in self.columns]


def table_of(model: type[Any], name: str, *, child_tables: bool) -> Table:
    """The columns of ``model`` (an attrs class) for a table called ``name``.

    With ``child_tables``, lists of models become child tables; without, JSON text cells.
    """
    columns = _columns(model, (), "", child_tables=child_tables)
    children: list[Child] = []
    if child_tables:
        key = columns[0]
        for plan in field_plans(model):
            if plan.kind == "model_list" and plan.target is not None:
                children.append(
                    Child(
                        plan.name,
                        key,
                        table_of(plan.target, _child_name(plan.name), child_tables=False),
                    )
                )
    headers = [column.header for column in columns]
    if len(set(headers)) != len(headers):  # two flattened names met: say so, do not mix them
        raise ValueError(f"{model.__name__}: duplicate spreadsheet columns in {headers}")
    return Table(name, tuple(columns), tuple(children))


def _columns(
    model: type[Any], path: tuple[str, ...], prefix: str, *, child_tables: bool
) -> list[Column]:
    columns: list[Column] = []
    for plan in field_plans(model):
        where = (*path, plan.name)
        if plan.kind == "model" and plan.target is not None:
            columns += _columns(
                plan.target, where, prefix + _flat_prefix(plan.name), child_tables=child_tables
            )
        elif plan.kind == "model_list" and child_tables:
            continue  # a table of its own
        else:
            kind = _KINDS[plan.kind]
            header = prefix + plan.name + (" (UTC)" if kind == "utc_time" else "")
            columns.append(Column(header, kind, _getter(where)))
    return columns


def _flat_prefix(attribute: str) -> str:
    """``end_user_info`` -> ``end_user_``: the prefix of a nested model's columns."""
    return attribute.removesuffix("_info") + "_"


def _child_name(attribute: str) -> str:
    """``service_list`` -> ``services``: the name of a child table."""
    stem = attribute.removesuffix("_list")
    return stem + "s" if stem != attribute else attribute


def _getter(path: tuple[str, ...]) -> Callable[[Any], object]:
    """Reads ``record.a.b`` along ``path``; ``None`` when an object on the way is absent."""
    if len(path) == 1:
        (name,) = path
        return lambda record: getattr(record, name)

    def get(record: Any) -> object:
        value = record
        for name in path:
            if value is None:
                return None
            value = getattr(value, name)
        return value

    return get
