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
token: every text built from a server answer is masked by :mod:`._redaction` *before* it is
cut to length, and errors are raised without the low-level exception that led to them
(aiohttp's errors carry the request headers).
"""

from __future__ import annotations

__all__ = [
    "APIError",
    "AuthenticationError",
    "BadRequestError",
    "ConfigurationError",
    "CoordinatorError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "ResponseFormatError",
    "TransportConnectionError",
    "TransportError",
    "TransportTimeoutError",
    "YeastarCSSSError",
    "api_error_class",
]


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


class ResponseFormatError(YeastarCSSSError):
    """The body was not the documented JSON shape (or was larger than ``max_response_bytes``).

    ``path`` names where in the body it went wrong, e.g. ``result.results[3].createTime``
    (empty when the body as a whole was unreadable); ``status`` is the HTTP status.
    """

    def __init__(self, message: str, *, path: str = "", status: int | None = None) -> None:
        self.path = path
        self.status = status
        super().__init__(f"{message} at {path}" if path else message)
