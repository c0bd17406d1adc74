"""The tables: one per list, with a typed column per model field, plus ``sync_runs``.

Column names are the models' attribute names (snake_case), so a query reads like the code:
``SELECT id, order_status, total_amount FROM orders WHERE account = 'default'``. Which kind of
value each field holds comes from :func:`yeastar_csss_async._schema.field_plans`, the one
place that decides it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs
import sqlalchemy as sa

from .._lists import LISTS, ListSpec
from .._schema import Kind, field_plans
from ._types import JSONColumn, Money, UtcTime

__all__ = ["METADATA", "RUNS", "SCHEMA_INFO", "TABLES", "ListTable", "list_table"]

METADATA = sa.MetaData()

_COLUMN_TYPES: dict[Kind, Callable[[], Any]] = {
    "str": sa.Text,
    "enum": sa.Text,
    "int": sa.BigInteger,
    "decimal": Money,
    "epoch_ms": UtcTime,
    "csss_date": lambda: sa.DateTime(timezone=False),
    "json_list": lambda: JSONColumn,
    "model": lambda: JSONColumn,
    "model_list": lambda: JSONColumn,
}

BOOKKEEPING = ("payload", "content_hash", "first_seen_at", "last_seen_at", "changed_at", "gone_at")
"""The columns every list table has beside the model's fields."""


@attrs.frozen
class ListTable:
    """A list's table and what identifies a record in it.

    ``scope`` holds the key columns that are not fields of the model (``product_id`` for
    products: a product is identified within its product line); ``key`` is the model's key
    field (``id``, ``product_no``, ``order_code``).
    """

    name: str
    model: type[Any]
    table: sa.Table
    key: str
    scope: tuple[str, ...] = ()

    @property
    def key_columns(self) -> tuple[str, ...]:
        """The primary key: ``account``, the scope columns, the key field."""
        return ("account", *self.scope, self.key)


_SCOPE_TYPES: dict[type, Callable[[], Any]] = {int: sa.BigInteger, str: sa.Text}
"""The column type of a scope column, by the Python type the list declares for it."""


def _list_table(spec: ListSpec[Any]) -> ListTable:
    name, model, key = spec.table, spec.model, spec.key
    scope = [(column, _SCOPE_TYPES[kind]) for column, kind in spec.scope]
    columns: list[sa.Column[Any]] = [sa.Column("account", sa.Text, primary_key=True)]
    columns += [sa.Column(column, kind(), primary_key=True) for column, kind in scope]
    for plan in field_plans(model):
        columns.append(
            sa.Column(
                plan.name,
                _COLUMN_TYPES[plan.kind](),
                primary_key=plan.name == key,
                nullable=plan.name != key,
            )
        )
    columns += [
        sa.Column("payload", JSONColumn, nullable=False),
        sa.Column("content_hash", sa.String(32), nullable=False),
        sa.Column("first_seen_at", UtcTime(), nullable=False),
        sa.Column("last_seen_at", UtcTime(), nullable=False),
        sa.Column("changed_at", UtcTime(), nullable=False),
        sa.Column("gone_at", UtcTime(), nullable=True),
    ]
    # No index on last_seen_at: a sync moves it on every unchanged record, and an indexed
    # column would make each of those updates an index write too (and in PostgreSQL rule out
    # heap-only updates); the one query that filters on it runs once per complete run.
    table = sa.Table(name, METADATA, *columns)
    return ListTable(name, model, table, key, spec.scope_names)


TABLES: dict[str, ListTable] = {name: _list_table(spec) for name, spec in LISTS.items()}
"""The list tables by list name (``orders``, ``products``, ``package-orders``)."""

RUNS = sa.Table(
    "sync_runs",
    METADATA,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("account", sa.Text, nullable=False),
    sa.Column("list", sa.Text, nullable=False),
    sa.Column("started_at", UtcTime(), nullable=False),
    sa.Column("finished_at", UtcTime(), nullable=True),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("seen", sa.BigInteger, nullable=False, default=0),
    sa.Column("new", sa.BigInteger, nullable=False, default=0),
    sa.Column("changed", sa.BigInteger, nullable=False, default=0),
    sa.Column("unchanged", sa.BigInteger, nullable=False, default=0),
    sa.Column("gone", sa.BigInteger, nullable=False, default=0),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("scope", sa.Text, nullable=True),
    sa.Index("ix_sync_runs_account_list", "account", "list", "id"),
)
"""One row per sync run; ``status`` is ``running``, ``complete`` or ``failed``. ``scope``
says what the run covered when it was not the whole list (``product_id=13``, or the CSSS
filters)."""

SCHEMA_INFO = sa.Table(
    "yeastar_csss_schema",
    METADATA,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("version", sa.Integer, nullable=False),
)
"""The schema version of the database (one row, ``id = 1``)."""


def list_table(name: str) -> ListTable:
    """The table of list ``name``; ValueError for an unknown list."""
    try:
        return TABLES[name]
    except KeyError:
        raise ValueError(f"no list {name!r}: expected one of {', '.join(TABLES)}") from None
