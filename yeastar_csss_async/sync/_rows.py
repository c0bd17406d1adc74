"""A record as a table row: its column values, its payload and its content hash."""

from __future__ import annotations

import hashlib
from typing import Any

import msgspec

from .._jsonable import to_jsonable
from .._schema import field_plans
from ._tables import ListTable

__all__ = ["RowMaker"]

_ENCODE = msgspec.json.Encoder(order="sorted").encode
_NATIVE = frozenset({"decimal", "epoch_ms", "csss_date"})
"""Kinds whose column takes the model's own value (a Decimal, a datetime) rather than its
JSON form."""


class RowMaker:
    """Turns records of one list into rows; the per-field work is decided once."""

    def __init__(self, table: ListTable) -> None:
        plans = field_plans(table.model)
        self.key = table.key
        self._native = tuple(plan.name for plan in plans if plan.kind in _NATIVE)
        self._from_json = tuple(plan.name for plan in plans if plan.kind not in _NATIVE)

    def row(self, record: object) -> dict[str, Any]:
        """The column values of ``record`` (model fields, ``payload``, ``content_hash``).

        ``payload`` is the record as :func:`~yeastar_csss_async.to_jsonable` writes it, and
        ``content_hash`` a 128-bit BLAKE2b of that JSON with sorted keys: equal hashes mean
        equal field values.
        """
        payload = to_jsonable(record)
        assert isinstance(payload, dict)
        row: dict[str, Any] = {name: payload[name] for name in self._from_json}
        for name in self._native:
            row[name] = getattr(record, name)
        row["payload"] = payload
        row["content_hash"] = hashlib.blake2b(_ENCODE(payload), digest_size=16).hexdigest()
        return row
