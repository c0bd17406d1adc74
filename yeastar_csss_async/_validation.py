"""Argument checks, run before any request: one helper per kind of value.

Each returns the value when it is acceptable and raises ValueError naming the argument
otherwise; a value that may be a secret is never quoted.
"""

from __future__ import annotations

import math

__all__ = ["require_header_text", "require_positive_int", "require_seconds", "require_text"]


def require_text(name: str, value: object) -> str:
    """A credential must be a non-empty string that UTF-8 can encode (checked before any
    request). The error never quotes the value: it may be a secret."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{name} must be a non-empty string")
    encodable = True
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate, e.g. from a badly decoded environment
        encodable = False
    if not encodable:  # raised outside the handler: the UnicodeEncodeError holds the value
        raise ValueError(
            f"{name} cannot be encoded as UTF-8 (it holds a lone surrogate); check how it was read"
        )
    return value


def require_header_text(name: str, value: object) -> str:
    """A header value we send (User-Agent, Accept-Language): printable text on one line."""
    if not isinstance(value, str) or not value.strip() or not value.isprintable():
        raise ValueError(f"{name} must be a non-empty, printable one-line string")
    return value


def require_positive_int(name: str, value: object) -> int:
    """Page numbers, sizes and ids are ints >= 1 (bool is not accepted)."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be an int >= 1, got {value!r}")
    return value


def require_seconds(name: str, value: object) -> float:
    """A duration must be a finite number of seconds > 0 (bool is not accepted)."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ValueError(f"{name} must be a finite number of seconds > 0, got {value!r}")
    return float(value)
