"""The exceptions the library raises on purpose, and how their texts are kept clean.

Catch :class:`YeastarCSSSError` for everything, or a subclass to be narrow::

    YeastarCSSSError
    ├── APIError                 the server answered with an error
    │   ├── BadRequestError      HTTP 400: the request was refused as malformed
    │   ├── AuthenticationError  credentials or token rejected (after one re-authentication)
    │   ├── PermissionDeniedError  HTTP 403 / ``permission_denied``: not allowed to this account
    │   ├── NotFoundError        HTTP 404
    │   └── RateLimitError       HTTP 429 outlasted the retries, or Retry-After was too long
    ├── CoordinatorError         the store a fleet shares (Redis) failed
    ├── TransportError           network failure or timeout when the retries ran out
    │   ├── TransportTimeoutError     the last attempt timed out (also a ``TimeoutError``)
    │   └── TransportConnectionError  the last attempt could not connect or lost the
    │                                 connection (also a ``ConnectionError``)
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
    "BODY_KEPT",
    "APIError",
    "AuthenticationError",
    "BadRequestError",
    "ConfigurationError",
    "CoordinatorError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "Redactor",
    "ResponseFormatError",
    "TransportConnectionError",
    "TransportError",
    "TransportTimeoutError",
    "YeastarCSSSError",
    "api_error_class",
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
        body: the answer's body as text (undecodable bytes replaced), secrets masked, its
            first ``BODY_KEPT`` (8,192) characters; ``None`` when there was no answer body.

    Every text attribute is redacted and cut to a bounded length. Subclasses name the common
    statuses: :class:`BadRequestError` (400), :class:`AuthenticationError` (401),
    :class:`PermissionDeniedError` (403), :class:`NotFoundError` (404) and
    :class:`RateLimitError` (429).
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
        body: str | None = None,
    ) -> None:
        self.message = message
        self.status = status
        self.code = code
        self.request_id = request_id
        self.body = body
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


class BadRequestError(APIError):
    """HTTP 400: the server refused the request as malformed (a parameter out of range)."""


class AuthenticationError(APIError):
    """Credentials or token rejected, after one re-authentication."""


class PermissionDeniedError(APIError):
    """HTTP 403 (or the Yeastar code ``permission_denied``): the credentials are valid but may
    not do this (a product line the account does not own, an API not enabled)."""


class NotFoundError(APIError):
    """HTTP 404: no such resource (a wrong ``base_url`` or path, mostly)."""


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
        body: str | None = None,
    ) -> None:
        self.retry_after = retry_after
        super().__init__(message, status=status, code=code, request_id=request_id, body=body)


class TransportError(YeastarCSSSError):
    """A network failure or timeout that outlasted the retries.

    The message names the low-level error (its type and redacted text); the aiohttp exception
    itself is not chained, because it carries the request's headers. What the last attempt ran
    into decides the subclass: :class:`TransportTimeoutError` or
    :class:`TransportConnectionError`.
    """


class TransportTimeoutError(TransportError, TimeoutError):
    """The last attempt timed out (``timeout`` seconds after it got its slot). Also a
    ``TimeoutError``, so ``except TimeoutError`` catches it."""


class TransportConnectionError(TransportError, ConnectionError):
    """The last attempt could not connect, or the connection broke or answered garbage. Also
    a ``ConnectionError``."""


class CoordinatorError(YeastarCSSSError):
    """A coordinator (the store a fleet of processes shares, e.g. Redis) was unreachable or
    failed. The text names it (a Redis URL without its password) and the operation; it never
    holds a token or password. A client never falls back to limits of its own instead."""


class ConfigurationError(YeastarCSSSError, ValueError):
    """The client cannot be built as asked: a credential missing from the environment
    (``from_env()``), say. Also a ``ValueError``."""


_STATUS_ERRORS: dict[int, type[APIError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    429: RateLimitError,
}


def api_error_class(status: int | None, code: str | None = None) -> type[APIError]:
    """The :class:`APIError` subclass for an error answer's HTTP status (or, for an envelope
    that reports none, the Yeastar code ``permission_denied``)."""
    cls = _STATUS_ERRORS.get(status) if status is not None else None
    if cls is None and code == "permission_denied":
        return PermissionDeniedError
    return cls or APIError


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


class ResponseFormatError(YeastarCSSSError):
    """The body was not the documented JSON shape (or was larger than ``max_response_bytes``).

    ``path`` names where in the body it went wrong, e.g. ``result.results[3].createTime``
    (empty when the body as a whole was unreadable); ``status`` is the HTTP status.
    """

    def __init__(self, message: str, *, path: str = "", status: int | None = None) -> None:
        self.path = path
        self.status = status
        super().__init__(f"{message} at {path}" if path else message)
