"""Pure helpers both protocols use to read answers: JSON decoding, snippets, counts."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any, TypeVar

import msgspec

from ._errors import ResponseFormatError
from ._redaction import QUOTE_LIMIT, Redactor, quote_value, shorten
from .models import Page

__all__ = [
    "MAX_COUNT",
    "body_snippet",
    "decode_json",
    "error_field",
    "page_from_counts",
    "parse_count",
    "whole_number",
]

T = TypeVar("T")

MAX_COUNT = 2**63 - 1
"""The largest count, page number or total accepted from a server (a signed 64-bit int)."""

_ASCII_DIGITS = re.compile(r"[0-9]{1,19}")
_SNIPPET_SOURCE = 65536  # bytes of a body decoded (and redacted) to make a snippet


_decode = msgspec.json.Decoder(float_hook=Decimal).decode  # gets each float's text: exact


def decode_json(
    body: bytes, *, status: int | None = None, redact: Redactor | None = None
) -> object:
    """Decode a JSON body; fractional numbers become ``Decimal`` with the digits sent.

    msgspec decodes it (about twice as fast as ``json``); what msgspec refuses is tried once
    more with the standard library, which reads a little more (escaped lone surrogates,
    ``NaN``), so every body the standard library reads is read. Anything neither can read
    (bad UTF-8, bad syntax, nesting too deep, an integer of more than 4300 digits) is a
    :class:`ResponseFormatError` quoting the redacted start of the body.
    """
    try:
        return _decode(body)
    except (ValueError, RecursionError):  # msgspec.DecodeError is a ValueError
        pass
    try:
        return json.loads(body, parse_float=Decimal)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        reason = "nested too deep" if isinstance(exc, RecursionError) else type(exc).__name__
    # Raised here, outside the handler: the decoder's error holds the whole body.
    raise ResponseFormatError(
        f"answer is not JSON ({reason}); it starts {body_snippet(body, redact)!r}", status=status
    )


def body_snippet(body: bytes, redact: Redactor | None = None, limit: int = QUOTE_LIMIT) -> str:
    """The start of a body as one line of text, secrets masked *before* it is cut."""
    text = body[:_SNIPPET_SOURCE].decode("utf-8", "replace")
    if redact is not None:
        text = redact(text)
    return shorten(text, limit)


def error_field(value: object, redact: Redactor | None, limit: int = QUOTE_LIMIT) -> str | None:
    """A server-sent field (code, message, request id) for an error attribute: secrets masked,
    then cut to one line of ``limit`` characters; None stays None."""
    if value is None:
        return None
    text = value if isinstance(value, str) else quote_value(value, redact, limit)
    return shorten(redact(text) if redact is not None else text, limit)


def parse_count(value: object) -> int | None:
    """A count, page number or total: an int in ``0..MAX_COUNT``, or plain ASCII digits
    (``"12"``, not ``"²"`` or Arabic-Indic digits); None for None. Raises ValueError."""
    if value is None:
        return None
    number: int | None = None
    if value.__class__ is int:
        number = value
    elif isinstance(value, str) and _ASCII_DIGITS.fullmatch(value.strip()):
        number = int(value.strip())
    if number is None or not 0 <= number <= MAX_COUNT:
        raise ValueError("not a count")
    return number


def whole_number(
    mapping: Mapping[str, Any], key: str, *, path: str, redact: Redactor | None = None
) -> int | None:
    """``mapping[key]`` read with :func:`parse_count`; None when absent or null. Anything else
    is a :class:`ResponseFormatError` naming the path and quoting the value, redacted."""
    value = mapping.get(key)
    try:
        return parse_count(value)
    except ValueError:
        pass
    raise ResponseFormatError(
        f"expected a whole number in 0..{MAX_COUNT}, got {quote_value(value, redact)}",
        path=f"{path}.{key}",
    )


def page_from_counts(
    items: Sequence[T],
    *,
    total: object,
    page_no: object,
    page_size: object,
    total_pages: object,
    asked_no: int,
    asked_size: int,
    request_id: str | None = None,
) -> Page[T] | None:
    """A :class:`Page` from a page's raw count fields (page number and size default to the
    ones asked for), or None when the total is missing. Raises ValueError on a bad count."""
    number = parse_count(total)
    if number is None:
        return None
    return Page.build(
        items,
        page_no=parse_count(page_no) or asked_no,
        page_size=parse_count(page_size) or asked_size,
        total=number,
        reported_total_pages=parse_count(total_pages),
        request_id=request_id,
    )
