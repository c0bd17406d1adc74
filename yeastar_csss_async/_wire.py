"""Pure helpers both protocols use to read answers: JSON decoding, snippets, counts."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from ._errors import QUOTE_LIMIT, Redactor, ResponseFormatError, quote_value, shorten

__all__ = ["MAX_COUNT", "body_snippet", "decode_json", "error_field", "whole_number"]

MAX_COUNT = 2**63 - 1
"""The largest count, page number or total accepted from a server (a signed 64-bit int)."""

_ASCII_DIGITS = re.compile(r"[0-9]{1,19}")
_SNIPPET_SOURCE = 65536  # bytes of a body decoded (and redacted) to make a snippet


def decode_json(body: bytes, *, status: int | None = None,
                redact: Redactor | None = None) -> object:
    """Decode a JSON body; fractional numbers become ``Decimal`` so money keeps its digits.

    Anything that is not JSON (bad UTF-8, bad syntax, nesting too deep for the parser, an
    integer of more than 4300 digits) is a :class:`ResponseFormatError` quoting the redacted
    start of the body.
    """
    try:
        return json.loads(body, parse_float=Decimal)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        reason = "nested too deep" if isinstance(exc, RecursionError) else type(exc).__name__
    # Raised here, outside the handler: the decoder's error holds the whole body.
    raise ResponseFormatError(
        f"answer is not JSON ({reason}); it starts {body_snippet(body, redact)!r}",
        status=status)


def body_snippet(body: bytes, redact: Redactor | None = None,
                 limit: int = QUOTE_LIMIT) -> str:
    """The start of a body as one line of text, secrets masked *before* it is cut."""
    text = body[:_SNIPPET_SOURCE].decode("utf-8", "replace")
    if redact is not None:
        text = redact(text)
    return shorten(text, limit)


def error_field(value: object, redact: Redactor | None,
                limit: int = QUOTE_LIMIT) -> str | None:
    """A server-sent field (code, message, request id) for an error attribute: secrets masked,
    then cut to one line of ``limit`` characters; None stays None."""
    if value is None:
        return None
    text = value if isinstance(value, str) else quote_value(value, redact, limit)
    return shorten(redact(text) if redact is not None else text, limit)


def whole_number(mapping: Mapping[str, Any], key: str, *, path: str,
                 redact: Redactor | None = None) -> int | None:
    """``mapping[key]`` as an int in ``0..MAX_COUNT``; None when absent or null.

    Digit strings are accepted when they are plain ASCII digits (``"12"``, not ``"²"`` or
    Arabic-Indic digits). Anything else is a :class:`ResponseFormatError` naming the path.
    """
    value = mapping.get(key)
    if value is None:
        return None
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and _ASCII_DIGITS.fullmatch(value.strip()):
        number = int(value.strip())
    if number is None or not 0 <= number <= MAX_COUNT:
        raise ResponseFormatError(
            f"expected a whole number in 0..{MAX_COUNT}, got {quote_value(value, redact)}",
            path=f"{path}.{key}")
    return number
