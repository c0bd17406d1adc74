"""The CSSS sign as the sandbox checks it, written from the documented rule alone.

This is deliberately a second, independent implementation: it shares no code with the
client's signer (``yeastar_csss_async._csss_protocol``), so a signing mistake in the client
makes the sandbox answer ``1002 sign error`` instead of being accepted by the same mistake.

The rule, as the CSSS API documents it: ``sign = Base64(HMAC-SHA1(key=secret as UTF-8,
msg=signContent as UTF-8))``, standard alphabet with ``=`` padding, where ``signContent`` is
the compact JSON object of every parameter except ``sign`` whose value is neither ``None`` nor
``""``, keys sorted by code point, no spaces, non-ASCII written as itself (not ``\\uXXXX``),
numbers unquoted as sent, strings quoted. Nested objects get their keys sorted too; arrays
keep their order.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
from collections.abc import Iterable, Mapping

import attrs

__all__ = ["RawNumber", "decode_body", "sign_content", "signature"]

# What JSON must escape inside a string: the quote, the backslash and the control characters
# U+0000..U+001F (the short forms where JSON has one). Everything else is written as itself.
_ESCAPES: dict[int, str] = {code: f"\\u{code:04x}" for code in range(0x20)}
_ESCAPES.update(
    {
        ord('"'): '\\"',
        ord("\\"): "\\\\",
        ord("\b"): "\\b",
        ord("\f"): "\\f",
        ord("\n"): "\\n",
        ord("\r"): "\\r",
        ord("\t"): "\\t",
    }
)


@attrs.frozen
class RawNumber:
    """A JSON number with a fraction or exponent, kept as the exact text that was sent.

    Decoding ``1.50`` to a float would sign ``1.5``; the rule signs numbers as sent.
    """

    text: str


def decode_body(raw: bytes) -> object:
    """The JSON body of a request, with fractional numbers kept as :class:`RawNumber`.

    Raises ValueError when the body is not JSON (or not UTF-8).
    """
    return json.loads(raw.decode("utf-8"), parse_float=RawNumber, parse_constant=_reject_constant)


def _reject_constant(name: str) -> object:
    raise ValueError(f"{name} is not a JSON number")


def _quote(text: str) -> str:
    return '"' + text.translate(_ESCAPES) + '"'


def _render(value: object) -> str:
    """One JSON value in canonical form (see the module docstring)."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return _quote(value)
    if isinstance(value, int):
        return str(int(value))
    if isinstance(value, RawNumber):
        return value.text
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{value!r} is not a JSON number")
        return repr(value)  # the shortest text that reads back as the same float
    if isinstance(value, Mapping):
        return _render_object(value.items())
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_render(item) for item in value) + "]"
    raise TypeError(f"cannot sign a value of type {type(value).__name__}")


def _render_object(pairs: Iterable[tuple[object, object]]) -> str:
    rendered: list[tuple[str, str]] = []
    for key, item in pairs:
        if not isinstance(key, str):
            raise TypeError(f"object keys must be strings, not {type(key).__name__}")
        rendered.append((key, _render(item)))
    rendered.sort(key=lambda pair: pair[0])  # str order is code point order
    return "{" + ",".join(f"{_quote(key)}:{text}" for key, text in rendered) + "}"


def sign_content(params: Mapping[str, object]) -> str:
    """The text that is signed: the non-empty parameters except ``sign``, canonical JSON.

    Raises TypeError or ValueError for values JSON cannot carry (NaN, sets, non-string keys).
    """
    kept = [
        (key, value)
        for key, value in params.items()
        if key != "sign" and value is not None and value != ""
    ]
    return _render_object(kept)


def signature(params: Mapping[str, object], secret: str) -> str:
    """``Base64(HMAC-SHA1(secret, sign_content(params)))``, standard alphabet, padded."""
    mac = hmac.new(secret.encode("utf-8"), sign_content(params).encode("utf-8"), hashlib.sha1)
    return base64.b64encode(mac.digest()).decode("ascii")
