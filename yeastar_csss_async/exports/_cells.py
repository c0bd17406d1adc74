"""How one value becomes one cell of text, shared by the CSV encoders and the xlsx one."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

import attrs

from .._jsonable import to_jsonable

__all__ = ["excel_safe_text", "excel_time", "json_text", "record_fields"]


def record_fields(model: type[Any]) -> list[str]:
    """The column names of a model: its attribute names, in declaration order."""
    return [field.name for field in attrs.fields(model)]


def json_text(value: object) -> str:
    """Compact JSON of ``value`` (through ``to_jsonable``), non-ASCII kept as is."""
    return json.dumps(to_jsonable(value), ensure_ascii=False, separators=(",", ":"))


_FORMULA_START = frozenset("=+-@\t\r")
_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


def excel_safe_text(value: object) -> str:
    """Text a spreadsheet shows as text: ``'`` before a leading ``= + - @``, tab or CR
    (what a spreadsheet would evaluate as a formula), unless the text is a plain number."""
    text = value if type(value) is str else str(to_jsonable(value))
    if text and text[0] in _FORMULA_START and not _NUMBER.fullmatch(text):
        return "'" + text
    return text


def excel_time(value: object) -> str:
    """``YYYY-MM-DD HH:MM:SS``: an aware time in UTC, a naive one as it is."""
    assert isinstance(value, datetime)
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.isoformat(sep=" ", timespec="seconds")
