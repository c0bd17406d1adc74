"""The exceptions the library raises on purpose.

Catch :class:`YeastarCSSSError` for everything, or a subclass to be narrow::

    YeastarCSSSError
    ├── APIError                 the server answered with an error
    │   ├── AuthenticationError  credentials or token rejected (after one re-authentication)
    │   └── RateLimitError       still HTTP 429 when the retries ran out
    ├── TransportError           network failure or timeout when the retries ran out
    └── ResponseFormatError      the body was not the documented JSON shape

No exception text ever contains a client secret, CSSS secret or token: texts built from server
answers go through :class:`Redactor` before they are stored.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = [
    "APIError",
    "AuthenticationError",
    "RateLimitError",
    "Redactor",
    "ResponseFormatError",
    "TransportError",
    "YeastarCSSSError",
]

_MASK = "***"


class Redactor:
    """Replaces every known secret in a text with ``***``.

    Secrets shorter than 4 characters are not masked (they would mask ordinary words), and
    are rejected earlier anyway: credentials must be non-empty and real ones are long.
    """

    __slots__ = ("_secrets",)

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: set[str] = set()
        for secret in secrets:
            self.add(secret)

    def add(self, secret: str | None) -> None:
        """Remember one more secret (a new token, say)."""
        if secret and len(secret) >= 4:
            self._secrets.add(secret)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, _MASK)
        return text

    def __repr__(self) -> str:
        return f"Redactor(<{len(self._secrets)} secrets>)"


class YeastarCSSSError(Exception):
    """Base of every exception the library raises on purpose."""


class APIError(YeastarCSSSError):
    """The server answered, and the answer was an error.

    Attributes:
        status: the HTTP status, or ``None`` when there was no HTTP answer to speak of.
        code: the API's own error code (Yeastar ``code`` such as ``"permission_denied"``,
            CSSS ``code`` such as ``"1003"``), or ``None`` when the body carried none.
        message: the server's explanation (Yeastar ``detailMessage``, CSSS ``message``).
        request_id: the Yeastar ``requestId`` when the server sent one.
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

    def __reduce__(self) -> tuple[object, ...]:  # keep keyword-only attributes when pickled
        return (_rebuild_api_error, (type(self), self.message, self.status, self.code,
                                     self.request_id))


def _rebuild_api_error(
    cls: type[APIError], message: str, status: int | None, code: str | None,
    request_id: str | None,
) -> APIError:
    return cls(message, status=status, code=code, request_id=request_id)


class AuthenticationError(APIError):
    """Credentials or token rejected, after one re-authentication."""


class RateLimitError(APIError):
    """The server still answered HTTP 429 when the retries ran out.

    ``retry_after`` holds the last ``Retry-After`` the server asked for, in seconds, if any.
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
    """A network failure or timeout that outlasted the retries (the cause is chained)."""


class ResponseFormatError(YeastarCSSSError):
    """The body was not the documented JSON shape.

    ``path`` names where in the body it went wrong, e.g. ``result.results[3].createTime``
    (empty when the body as a whole was unreadable).
    """

    def __init__(self, message: str, *, path: str = "", status: int | None = None) -> None:
        self.path = path
        self.status = status
        super().__init__(f"{message} at {path}" if path else message)

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild_format_error, (self.args[0], self.path, self.status))


def _rebuild_format_error(text: str, path: str, status: int | None) -> ResponseFormatError:
    error = ResponseFormatError.__new__(ResponseFormatError)
    Exception.__init__(error, text)
    error.path = path
    error.status = status
    return error
