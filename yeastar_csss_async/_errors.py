"""The exceptions the library raises on purpose, and how their texts are kept clean.

Catch :class:`YeastarCSSSError` for everything, or a subclass to be narrow::

    YeastarCSSSError
    ├── APIError                 the server answered with an error
    │   ├── AuthenticationError  credentials or token rejected (after one re-authentication)
    │   └── RateLimitError       HTTP 429 outlasted the retries, or Retry-After was too long
    ├── TransportError           network failure or timeout when the retries ran out
    └── ResponseFormatError      the body was not the documented JSON shape

No exception text, attribute or chained cause ever contains a client secret, CSSS secret or
token: every text built from a server answer goes through :class:`Redactor` *before* it is cut
to length, values are quoted through :func:`quote_value`, and errors are raised without the
low-level exception that led to them (aiohttp's errors carry the request headers).
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
    "APIError",
    "AuthenticationError",
    "RateLimitError",
    "Redactor",
    "ResponseFormatError",
    "TransportError",
    "YeastarCSSSError",
    "quote_value",
    "shorten",
]

_MASK = "***"
QUOTE_LIMIT = 80
"""Characters of a bad value (or of a body) quoted in an error message, at most."""


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


def quote_value(value: object, redact: Redactor | None = None,
                limit: int = QUOTE_LIMIT) -> str:
    """A bad value for an error message: bounded in depth, secrets masked, then cut to
    ``limit`` characters (masking first, so a secret cut in half cannot show)."""
    return shorten((redact or _no_redaction)(_repr.repr(value)), limit)


class YeastarCSSSError(Exception):
    """Base of every exception the library raises on purpose."""

    def __reduce__(self) -> tuple[object, ...]:
        # Exceptions pickle only ``args`` by default; keep the keyword-only attributes too.
        return (_rebuild, (type(self), self.args), dict(self.__dict__))


def _rebuild(cls: type[YeastarCSSSError], args: tuple[object, ...]) -> YeastarCSSSError:
    error = cls.__new__(cls)
    error.args = args
    return error


class APIError(YeastarCSSSError):
    """The server answered, and the answer was an error.

    Attributes:
        status: the HTTP status (or the status the envelope reported), or ``None``.
        code: the API's own error code (Yeastar ``code`` such as ``"permission_denied"``,
            CSSS ``code`` such as ``"1003"``), or ``None`` when the body carried none.
        message: the server's explanation (Yeastar ``detailMessage``, CSSS ``message``).
        request_id: the Yeastar ``requestId`` when the server sent one.

    Every text attribute is redacted and cut to a bounded length.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
    ) -> None:
        self.message = message
        self.status = status
        self.code = code
        self.request_id = request_id
        super().__init__(self._describe())

    def _describe(self) -> str:
        parts = []
        if self.status is not None:
            parts.append(f"HTTP {self.status}")
        if self.code:
            parts.append(f"code={self.code}")
        if self.request_id:
            parts.append(f"request_id={self.request_id}")
        head = ", ".join(parts)
        return f"{self.message} ({head})" if head else self.message


class AuthenticationError(APIError):
    """Credentials or token rejected, after one re-authentication."""


class RateLimitError(APIError):
    """The server kept answering HTTP 429 until the retries ran out, or asked (``Retry-After``)
    for a longer pause than ``RetryPolicy.max_retry_after`` allows.

    ``retry_after`` holds the last ``Retry-After`` the server asked for, in seconds, if any
    (``inf`` when it asked for a date too far away to represent).
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = 429,
        code: str | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.retry_after = retry_after
        super().__init__(message, status=status, code=code, request_id=request_id)


class TransportError(YeastarCSSSError):
    """A network failure or timeout that outlasted the retries.

    The message names the low-level error (its type and redacted text); the aiohttp exception
    itself is not chained, because it carries the request's headers.
    """


class ResponseFormatError(YeastarCSSSError):
    """The body was not the documented JSON shape (or was larger than ``max_response_bytes``).

    ``path`` names where in the body it went wrong, e.g. ``result.results[3].createTime``
    (empty when the body as a whole was unreadable); ``status`` is the HTTP status.
    """

    def __init__(self, message: str, *, path: str = "", status: int | None = None) -> None:
        self.path = path
        self.status = status
        super().__init__(f"{message} at {path}" if path else message)
