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
        equal field values. Text no database can hold as it is, a NUL or an unpaired
        surrogate (which JSON can escape), is stored with U+FFFD in its place.
        """
        payload = to_jsonable(record)
        assert isinstance(payload, dict)
        try:
            encoded = _ENCODE(payload)
        except UnicodeEncodeError:  # an unpaired surrogate (JSON may escape one)
            encoded = b"\\u0000"
        if b"\\u0000" in encoded:  # NUL or worse: text no database column can hold as is
            payload = _storable(payload)
            encoded = _ENCODE(payload)
        row: dict[str, Any] = {name: payload[name] for name in self._from_json}
        for name in self._native:
            row[name] = getattr(record, name)
        row["payload"] = payload
        row["content_hash"] = hashlib.blake2b(encoded, digest_size=16).hexdigest()
        return row


def _storable(value: Any) -> Any:
    """``value`` with every NUL and unpaired surrogate in its text replaced by U+FFFD: text
    PostgreSQL cannot store (NUL) or that is not UTF-8 at all (a lone surrogate)."""
    if isinstance(value, str):
        return (
            value.replace("\x00", "\ufffd")
            .encode("utf-16", "surrogatepass")
            .decode("utf-16", "replace")
        )
    if isinstance(value, list):
        return [_storable(item) for item in value]
    if isinstance(value, dict):
        return {_storable(key): _storable(item) for key, item in value.items()}
    return value
