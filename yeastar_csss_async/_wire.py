"""Pure helpers both protocols use to read answers: JSON decoding and counts."""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from ._errors import ResponseFormatError

__all__ = ["body_snippet", "decode_json", "whole_number"]


def decode_json(body: bytes, *, status: int | None = None) -> object:
    """Decode a JSON body; fractional numbers become ``Decimal`` so money keeps its digits."""
    try:
        return json.loads(body, parse_float=Decimal)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ResponseFormatError(
            f"answer is not JSON ({exc.__class__.__name__}); it starts {body_snippet(body)!r}",
            status=status,
        ) from None


def body_snippet(body: bytes, limit: int = 120) -> str:
    """The start of a body as one line of text, for error messages."""
    return " ".join(body[:limit].decode("utf-8", "replace").split())


def whole_number(mapping: Mapping[str, Any], key: str, *, path: str) -> int | None:
    """``mapping[key]`` as an int >= 0 (digit strings accepted); None when absent or null."""
    value = mapping.get(key)
    if value is None:
        return None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ResponseFormatError(f"expected a whole number >= 0, got {value!r}",
                                  path=f"{path}.{key}")
    return value
