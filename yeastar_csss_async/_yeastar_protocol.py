"""Yeastar Partner Portal wire protocol, without I/O: token forms, envelope, page decoding."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, TypeVar

import attrs

from ._converters import structure_items
from ._errors import APIError, AuthenticationError, Redactor, ResponseFormatError
from ._wire import body_snippet, decode_json, whole_number
from .models import Page

__all__ = [
    "ORDER_LIST_PATH",
    "PRODUCT_LIST_PATH",
    "SUBSCRIPTION_PRODUCTS_PATH",
    "TOKEN_PATH",
    "TokenGrant",
    "credentials_form",
    "decode_page",
    "decode_token",
    "decode_yeastar_envelope",
    "describe_yeastar_error",
    "refresh_form",
]

TOKEN_PATH = "/auth/openapi/v1/oauth/token"
ORDER_LIST_PATH = "/order/openapi/order/v1/page"
PRODUCT_LIST_PATH = "/product/openapi/instance_product/v1/client/instance_product_list"
SUBSCRIPTION_PRODUCTS_PATH = "/pricing/openapi/purchase/v1/product_list"

T = TypeVar("T")


def credentials_form(client_id: str, client_secret: str) -> dict[str, str]:
    """Form body of Request Access Token."""
    return {"grant_type": "pp_credentials", "client_id": client_id,
            "client_secret": client_secret}


def refresh_form(refresh_token: str) -> dict[str, str]:
    """Form body of Refresh Access Token."""
    return {"grant_type": "refresh_token", "refresh_token": refresh_token}


@attrs.frozen
class TokenGrant:
    """A token answer: the access token, the refresh token, and seconds until expiry."""

    access_token: str = attrs.field(repr=False)
    refresh_token: str | None = attrs.field(repr=False)
    expires_in: float


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def _error_from(document: Mapping[str, Any], status: int | None,
                redact: Redactor | None) -> APIError:
    code = _text(document.get("code"))
    message = _text(document.get("detailMessage")) or code or "Yeastar request failed"
    if redact is not None:
        message = redact(message)
    cls = AuthenticationError if status == 401 else APIError
    return cls(message, status=status, code=code, request_id=_text(document.get("requestId")))


def describe_yeastar_error(status: int, body: bytes, redact: Redactor | None = None) -> APIError:
    """The :class:`APIError` for an error answer, with its code and request id when the body
    is a Yeastar envelope, or a snippet of the body when it is not (an HTML error page)."""
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        document = None
    if isinstance(document, Mapping):
        return _error_from(document, status, redact)
    snippet = body_snippet(body)
    if redact is not None:
        snippet = redact(snippet)
    cls = AuthenticationError if status == 401 else APIError
    return cls(f"HTTP {status}" + (f": {snippet}" if snippet else ""), status=status)


def decode_yeastar_envelope(
    status: int, body: bytes, redact: Redactor | None = None
) -> object:
    """Return ``result`` of a successful answer (HTTP 2xx and ``code == "success"``).

    An error answer raises :class:`APIError` (:class:`AuthenticationError` for HTTP 401) with
    the envelope's code, detailMessage and requestId; a body that is not an envelope raises
    :class:`ResponseFormatError`.
    """
    if not 200 <= status < 300:
        raise describe_yeastar_error(status, body, redact)
    document = decode_json(body, status=status)
    if not isinstance(document, Mapping):
        raise ResponseFormatError("answer is not a JSON object", status=status)
    if document.get("code") != "success":
        if "code" not in document:
            raise ResponseFormatError("answer has no 'code'", path="code", status=status)
        envelope_status = document.get("status")
        reported = envelope_status if isinstance(envelope_status, int) \
            and not isinstance(envelope_status, bool) else status
        raise _error_from(document, reported, redact)
    if "result" not in document:
        raise ResponseFormatError("answer has no 'result'", path="result", status=status)
    return document["result"]


def decode_page(
    result: object, item_type: type[T], *, page_no: int, page_size: int
) -> Page[T]:
    """A :class:`Page` from a paged ``result`` ({count, pageNo, pageSize, results, total,
    totalPage}). ``total`` falls back to ``count``; missing page numbers fall back to the
    ones asked for."""
    if not isinstance(result, Mapping):
        raise ResponseFormatError("'result' is not an object", path="result")
    items = structure_items(result.get("results"), item_type, path="result.results")
    total = whole_number(result, "total", path="result")
    if total is None:
        total = whole_number(result, "count", path="result")
    if total is None:
        raise ResponseFormatError("page has neither 'total' nor 'count'", path="result.total")
    answered_no = whole_number(result, "pageNo", path="result") or page_no
    answered_size = whole_number(result, "pageSize", path="result") or page_size
    return Page.build(
        items, page_no=answered_no, page_size=answered_size, total=total,
        reported_total_pages=whole_number(result, "totalPage", path="result"),
    )


def decode_token(result: object) -> TokenGrant:
    """A :class:`TokenGrant` from a token ``result``; ``expiresIn`` may be a string or a number."""
    if not isinstance(result, Mapping):
        raise ResponseFormatError("token 'result' is not an object", path="result")
    token = result.get("token")
    if not isinstance(token, str) or not token:
        raise ResponseFormatError("token answer has no 'token'", path="result.token")
    refresh = result.get("refreshToken")
    raw_expiry = result.get("expiresIn")
    try:
        expires_in = float(raw_expiry) if raw_expiry not in (None, "") else 1800.0
    except (TypeError, ValueError):
        raise ResponseFormatError(
            f"'expiresIn' is not a number: {raw_expiry!r}", path="result.expiresIn"
        ) from None
    if not expires_in == expires_in:  # NaN
        raise ResponseFormatError("'expiresIn' is not a number", path="result.expiresIn")
    return TokenGrant(token, refresh if isinstance(refresh, str) and refresh else None,
                      max(0.0, expires_in))
