"""Column types that keep values exactly in SQLite and PostgreSQL.

SQLite has no decimal, no time zone and no JSON type of its own: money is stored there as the
text of the ``Decimal`` (``"130.00"``: SQLite's NUMERIC affinity would turn it into a float),
aware times as fixed-width UTC ISO 8601 text (which sorts like the times it spells), and JSON
as text. PostgreSQL gets ``NUMERIC``, ``TIMESTAMP WITH TIME ZONE`` and ``JSONB``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Dialect

__all__ = ["JSONColumn", "Money", "UtcTime"]


class Money(sa.types.TypeDecorator[Decimal]):
    """A ``Decimal`` with exactly the digits it was stored with."""

    impl = sa.Numeric
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> sa.types.TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(sa.Text())
        return dialect.type_descriptor(sa.Numeric(asdecimal=True))

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> Any:
        if value is None or dialect.name != "sqlite":
            return value
        return str(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None or isinstance(value, Decimal):
            return value
        return Decimal(str(value))


class UtcTime(sa.types.TypeDecorator[datetime]):
    """An aware time, stored in UTC and read back aware (``tzinfo`` UTC)."""

    impl = sa.DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> sa.types.TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(sa.String(32))
        return dialect.type_descriptor(sa.DateTime(timezone=True))

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"{value!r} has no time zone; this column holds aware times")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.isoformat(timespec="microseconds")
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        assert isinstance(value, datetime)
        if value.tzinfo is None:  # asyncpg gives 0001-01-01 00:00 UTC back naive (its -infinity)
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


JSONColumn = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
"""JSON text in SQLite, JSONB in PostgreSQL."""
