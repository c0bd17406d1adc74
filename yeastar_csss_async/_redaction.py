"""Keeping secrets out of every text the library makes: :class:`Redactor` masks known secrets
in any of their usual encodings; :func:`shorten`, :func:`quote_value` and :func:`kept_body`
bound what an error message or an error's body quotes, masking first and cutting after, so a
secret cut in half cannot show.
"""

from __future__ import annotations

import base64
import html
import json
import re
import reprlib
from collections.abc import Iterable
from urllib.parse import quote, quote_plus

__all__ = [
    "BODY_KEPT",
    "QUOTE_LIMIT",
    "ROTATING_KEPT",
    "Redactor",
    "kept_body",
    "quote_value",
    "shorten",
]

_MASK = "***"
QUOTE_LIMIT = 80
"""Characters of a bad value (or of a body) quoted in an error message, at most."""
BODY_KEPT = 8192
"""Characters of an error answer's body kept on :attr:`APIError.body`, at most."""


def _encodings(secret: str) -> set[str]:
    """The forms a secret can take when a server echoes it back: raw, in a form or URL, in
    JSON, in HTML, in a Python repr, and Base64."""
    raw = secret.encode("utf-8")
    forms = {
        secret,
        quote(secret, safe=""),
        quote(secret),  # "/" kept, as in a URL path
        quote_plus(secret, safe=""),
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
        html.escape(secret),
        repr(secret)[1:-1],
        base64.b64encode(raw).decode("ascii"),
        base64.urlsafe_b64encode(raw).decode("ascii"),
    }
    forms |= {re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), f) for f in forms}
    forms |= {f.rstrip("=") for f in forms}
    return {f for f in forms if f}


ROTATING_KEPT = 512
"""Rotating secrets (tokens) a :class:`Redactor` keeps masking: the newest 512, at least 256
renewals. Even at the shortest token lifetime the client trusts (1 s) that outlasts any
request still holding one of them; at the documented 30 minutes it is days."""


class Redactor:
    """Replaces every known secret, in any of its usual encodings, with ``***``.

    Encodings covered: as is, percent-encoded (``quote``/``quote_plus``, either hex case), JSON
    string escapes (ASCII or not), HTML escapes, Python repr escapes and Base64 (standard and
    URL-safe, padded or not). Fixed secrets (a client secret) are kept for good; rotating ones
    (tokens, see :meth:`rotate`) only the newest ``ROTATING_KEPT``, so a client that runs for
    weeks does not grow its pattern with every token it was ever issued.
    """

    __slots__ = ("_fixed", "_pattern", "_rotating")

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._fixed: set[str] = set()
        self._rotating: dict[str, set[str]] = {}  # secret -> its forms, oldest first
        self._pattern: re.Pattern[str] | None = None
        for secret in secrets:
            if secret:
                self._fixed |= _encodings(secret)
        self._compile()

    def rotate(self, secret: str | None) -> None:
        """Mask a rotating secret (a new access or refresh token) from now on."""
        if not secret or secret in self._rotating:
            return
        self._rotating[secret] = _encodings(secret)
        while len(self._rotating) > ROTATING_KEPT:
            del self._rotating[next(iter(self._rotating))]
        self._compile()

    def _compile(self) -> None:
        forms = self._fixed.union(*self._rotating.values())
        # Longest first, so a form that contains another is masked whole.
        alternatives = sorted(forms, key=len, reverse=True)
        self._pattern = re.compile("|".join(map(re.escape, alternatives))) if forms else None

    def __call__(self, text: str) -> str:
        pattern = self._pattern
        return text if pattern is None else pattern.sub(_MASK, text)

    def __repr__(self) -> str:
        return "Redactor(<secrets hidden>)"


def _no_redaction(text: str) -> str:
    return text


def shorten(text: str, limit: int = QUOTE_LIMIT) -> str:
    """One line of at most ``limit`` characters (``...`` marks a cut)."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


_repr = reprlib.Repr()
_repr.maxlevel = 3  # a value nested 100k deep is shown as [[[...]]], never recursed into
_repr.maxstring = _repr.maxother = _repr.maxlong = 4096  # cut after redaction, not before
_repr.maxlist = _repr.maxdict = _repr.maxtuple = _repr.maxset = 20


def quote_value(value: object, redact: Redactor | None = None, limit: int = QUOTE_LIMIT) -> str:
    """A bad value for an error message: bounded in depth, secrets masked, then cut to
    ``limit`` characters (masking first, so a secret cut in half cannot show)."""
    return shorten((redact or _no_redaction)(_repr.repr(value)), limit)


def kept_body(body: bytes, redact: Redactor | None) -> str:
    """What :attr:`APIError.body` keeps of an answer: text, masked, then cut.

    A JSON body is decoded and every string in it (keys too) masked before it is written back
    (compact, non-ASCII as is), so a secret escaped inside a string inside a string is found
    like one sent plainly. Other bodies are masked as text over their first
    ``8 * BODY_KEPT`` bytes: the kept characters are at most ``4 * BODY_KEPT`` bytes, so only
    a secret longer than that could straddle the cut."""
    text: str | None = None
    if redact is not None and len(body) <= _JSON_BODY_MASKED:
        try:
            text = json.dumps(
                _mask_strings(json.loads(body), redact), ensure_ascii=False, separators=(",", ":")
            )
        except (ValueError, RecursionError):  # not JSON, or nested too deep: mask as text
            text = None
    if text is None:
        text = body[: 8 * BODY_KEPT].decode("utf-8", "replace")
    if redact is not None:
        text = redact(text)
    return text[:BODY_KEPT]


_JSON_BODY_MASKED = 1 << 20
"""Error bodies up to this size are decoded to be masked string by string."""


_NESTED_JSON_DEPTH = 4
"""Levels of JSON inside JSON strings that :func:`kept_body` decodes to mask."""


def _mask_strings(value: object, redact: Redactor, depth: int = 0) -> object:
    if isinstance(value, str):
        return _mask_text(value, redact, depth)
    if isinstance(value, list):
        return [_mask_strings(item, redact, depth) for item in value]
    if isinstance(value, dict):
        return {redact(key): _mask_strings(item, redact, depth) for key, item in value.items()}
    return value


def _mask_text(text: str, redact: Redactor, depth: int) -> str:
    """A string masked; when it is itself JSON (a body quoted in a body), its strings are
    masked too, so a secret escaped twice is found as well."""
    masked = redact(text)
    if depth >= _NESTED_JSON_DEPTH or masked.lstrip()[:1] not in ("{", "[", '"'):
        return masked
    try:
        inner = json.loads(masked)
    except (ValueError, RecursionError):
        return masked
    inner_masked = _mask_strings(inner, redact, depth + 1)
    if inner_masked == inner:
        return masked  # nothing more to hide: keep the text as it was sent
    return json.dumps(inner_masked, ensure_ascii=False, separators=(",", ":"))
