"""Yeastar Partner Portal wire protocol, without I/O: token forms, envelope, page decoding."""

from __future__ import annotations

import contextlib
import json
import math
import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, TypeVar

import attrs
import msgspec

from ._converters import structure_items
from ._errors import APIError, ResponseFormatError, api_error_class
from ._fast_structure import row_fn, row_type
from ._redaction import QUOTE_LIMIT, Redactor, kept_body
from ._wire import body_snippet, decode_json, error_field, page_from_counts, whole_number
from .models import Page

__all__ = [
    "ORDER_LIST_PATH",
    "PRODUCT_LIST_PATH",
    "SUBSCRIPTION_PRODUCTS_PATH",
    "TOKEN_PATH",
    "TokenGrant",
    "credentials_form",
    "decode_page",
    "decode_page_answer",
    "decode_token",
    "decode_yeastar_envelope",
    "describe_yeastar_error",
    "is_token_rejection",
    "refresh_form",
]

TOKEN_PATH = "/auth/openapi/v1/oauth/token"
ORDER_LIST_PATH = "/order/openapi/order/v1/page"
PRODUCT_LIST_PATH = "/product/openapi/instance_product/v1/client/instance_product_list"
SUBSCRIPTION_PRODUCTS_PATH = "/pricing/openapi/purchase/v1/product_list"

T = TypeVar("T")


def credentials_form(client_id: str, client_secret: str) -> dict[str, str]:
    """Form body of Request Access Token."""
    return {"grant_type": "pp_credentials", "client_id": client_id, "client_secret": client_secret}


def refresh_form(refresh_token: str) -> dict[str, str]:
    """Form body of Refresh Access Token."""
    return {"grant_type": "refresh_token", "refresh_token": refresh_token}


@attrs.frozen
class TokenGrant:
    """A token answer: the access token, the refresh token, and seconds until expiry."""

    access_token: str = attrs.field(repr=False)
    refresh_token: str | None = attrs.field(repr=False)
    expires_in: float


TOKEN_REJECTION_CODES = frozenset(
    {
        "invalid_token",
        "token_invalid",
        "token_expired",
        "expired_token",
        "invalid_access_token",
        "access_token_invalid",
        "access_token_expired",
        "token_not_found",
        "unauthorized",
    }
)
"""Error codes that mean "this access token is not (or no longer) good": renew and replay.
A code that merely contains "token" (``token_quota_exceeded``) is an ordinary error."""


def is_token_rejection(error: APIError) -> bool:
    """Whether ``error`` rejects the access token itself (HTTP 401, or a token error code)."""
    return error.status == 401 or (error.code or "").lower() in TOKEN_REJECTION_CODES


def _error_from(
    document: Mapping[str, Any], status: int | None, body: bytes, redact: Redactor | None
) -> APIError:
    code = error_field(document.get("code"), redact)
    message = (
        error_field(document.get("detailMessage"), redact, 4 * QUOTE_LIMIT)
        or code
        or "Yeastar request failed"
    )
    cls = api_error_class(status, code)
    return cls(
        message,
        status=status,
        code=code,
        request_id=error_field(document.get("requestId"), redact),
        body=kept_body(body, redact),
    )


def _reported_status(document: Mapping[str, Any], status: int) -> int:
    """The envelope's ``status`` when it is a plausible HTTP status, else the HTTP one."""
    reported = document.get("status")
    if isinstance(reported, int) and not isinstance(reported, bool) and 100 <= reported <= 599:
        return reported
    return status


def describe_yeastar_error(status: int, body: bytes, redact: Redactor | None = None) -> APIError:
    """The :class:`APIError` for an error answer, with its code and request id when the body
    is a Yeastar envelope, or a redacted snippet of the body when it is not (an HTML page)."""
    document: object = None
    with contextlib.suppress(ValueError, RecursionError):  # not JSON: quote a snippet
        document = json.loads(body)
    if isinstance(document, Mapping):
        return _error_from(document, status, body, redact)
    snippet = body_snippet(body, redact)
    cls = api_error_class(status)
    return cls(
        f"HTTP {status}" + (f": {snippet}" if snippet else ""),
        status=status,
        body=kept_body(body, redact),
    )


def decode_yeastar_envelope(status: int, body: bytes, redact: Redactor | None = None) -> object:
    """Return ``result`` of a successful answer (HTTP 2xx and ``code == "success"``).

    An error answer raises :class:`APIError` (the subclass for its status, see
    :func:`api_error_class`) with the envelope's code, detailMessage and requestId; a body
    that is not an envelope raises :class:`ResponseFormatError`.
    """
    return _decode_envelope(status, body, redact)[0]


def _decode_envelope(
    status: int, body: bytes, redact: Redactor | None
) -> tuple[object, str | None]:
    """``result`` and the ``requestId`` of a successful answer, or the error it is."""
    if not 200 <= status < 300:
        raise describe_yeastar_error(status, body, redact)
    document = decode_json(body, status=status, redact=redact)
    if not isinstance(document, Mapping):
        raise ResponseFormatError("answer is not a JSON object", status=status)
    if document.get("code") != "success":
        if "code" not in document:
            raise ResponseFormatError("answer has no 'code'", path="code", status=status)
        raise _error_from(document, _reported_status(document, status), body, redact)
    if "result" not in document:
        raise ResponseFormatError("answer has no 'result'", path="result", status=status)
    return document["result"], _request_id(document.get("requestId"), redact)


def _request_id(value: object, redact: Redactor | None) -> str | None:
    """A success's ``requestId`` for :attr:`Page.request_id`: a string, masked and bounded
    like every other server-sent text; anything else is no request id."""
    return error_field(value, redact) if isinstance(value, str) and value else None


def decode_page(
    result: object,
    item_type: type[T],
    *,
    page_no: int,
    page_size: int,
    redact: Redactor | None = None,
    request_id: str | None = None,
) -> Page[T]:
    """A :class:`Page` from a paged ``result`` ({count, pageNo, pageSize, results, total,
    totalPage}). ``total`` falls back to ``count``; missing page numbers fall back to the
    ones asked for. Bad values are quoted with secrets masked by ``redact``."""
    if not isinstance(result, Mapping):
        raise ResponseFormatError("'result' is not an object", path="result")
    items = structure_items(result.get("results"), item_type, path="result.results", redact=redact)

    def number(key: str) -> int | None:
        return whole_number(result, key, path="result", redact=redact)

    total = number("total")
    if total is None:
        total = number("count")
    if total is None:
        raise ResponseFormatError("page has neither 'total' nor 'count'", path="result.total")
    return Page.build(
        items,
        page_no=number("pageNo") or page_no,
        page_size=number("pageSize") or page_size,
        total=total,
        reported_total_pages=number("totalPage"),
        request_id=request_id,
    )


_BEARER_TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")  # RFC 6750 b64token
_SECONDS_TEXT = re.compile(r"\s*[-+]?[0-9]{1,12}(\.[0-9]{1,9})?\s*")
MAX_TOKEN_LENGTH = 8192
DEFAULT_TOKEN_LIFETIME = 1800.0  # documented: access tokens last 30 minutes


_PAGE_DECODERS: dict[type[Any], msgspec.json.Decoder[Any]] = {}


def _page_decoder(item_type: type[Any]) -> msgspec.json.Decoder[Any]:
    """A msgspec decoder of a whole page answer straight into structs (see ``row_type``)."""
    if item_type not in _PAGE_DECODERS:
        name = item_type.__name__
        result = msgspec.defstruct(
            f"{name}PageResult",
            [
                *(
                    (key, Any, None)
                    for key in ("count", "pageNo", "pageSize", "total", "totalPage")
                ),
                ("results", list[row_type(item_type)] | None, None),  # type: ignore[misc]
            ],
            gc=False,
        )
        answer = msgspec.defstruct(
            f"{name}PageAnswer",
            [("code", Any, None), ("requestId", Any, None), ("result", result | None, None)],
            gc=False,
        )
        _PAGE_DECODERS[item_type] = msgspec.json.Decoder(answer, float_hook=Decimal)
    return _PAGE_DECODERS[item_type]


def decode_page_answer(
    status: int,
    body: bytes,
    item_type: type[T],
    *,
    page_no: int,
    page_size: int,
    redact: Redactor | None = None,
) -> Page[T]:
    """A :class:`Page` from a whole paged answer, as ``decode_page(decode_yeastar_envelope(...))``
    would make it, or the error that would raise.

    The common case, a successful page whose values fit, is decoded by msgspec straight into
    row structs and structured from them; anything else (an error answer, a value that does
    not fit) takes the general path, which raises the typed, located error.
    """
    page = _fast_page(status, body, item_type, page_no, page_size, redact)
    if page is not None:
        return page
    result, request_id = _decode_envelope(status, body, redact)
    return decode_page(
        result,
        item_type,
        page_no=page_no,
        page_size=page_size,
        redact=redact,
        request_id=request_id,
    )


def _fast_page(
    status: int,
    body: bytes,
    item_type: type[T],
    page_no: int,
    page_size: int,
    redact: Redactor | None,
) -> Page[T] | None:
    if not 200 <= status < 300:
        return None
    try:
        answer = _page_decoder(item_type).decode(body)
        result = answer.result
        if answer.code != "success" or result is None:
            return None
        rows = result.results
        items: list[T] = [] if rows is None else list(map(row_fn(item_type), rows))
        total = result.total if result.total is not None else result.count
        return page_from_counts(
            items,
            total=total,
            page_no=result.pageNo,
            page_size=result.pageSize,
            total_pages=result.totalPage,
            asked_no=page_no,
            asked_size=page_size,
            request_id=_request_id(answer.requestId, redact),
        )
    except Exception:  # whatever did not fit: the general path says what and where
        return None


def decode_token(result: object) -> TokenGrant:
    """A :class:`TokenGrant` from a token ``result``; ``expiresIn`` may be a string or a number.

    The access token must be a valid bearer token (RFC 6750 characters, at most 8 KiB), so
    that it can go into a header. Nothing from a token answer is quoted in an error: the
    answer is full of secrets the redactor does not know yet.
    """
    if not isinstance(result, Mapping):
        raise ResponseFormatError("token 'result' is not an object", path="result")
    token = result.get("token")
    if not isinstance(token, str) or not token:
        raise ResponseFormatError("token answer has no 'token'", path="result.token")
    if len(token) > MAX_TOKEN_LENGTH or not _BEARER_TOKEN.fullmatch(token):
        raise ResponseFormatError("'token' is not a valid bearer token", path="result.token")
    refresh = result.get("refreshToken")
    if not isinstance(refresh, str) or not refresh or len(refresh) > MAX_TOKEN_LENGTH:
        refresh = None
    return TokenGrant(token, refresh, _expires_in(result.get("expiresIn")))


def _expires_in(raw: object) -> float:
    if raw is None or raw == "":
        return DEFAULT_TOKEN_LIFETIME
    number = isinstance(raw, int | float | Decimal) and not isinstance(raw, bool)
    text = isinstance(raw, str) and _SECONDS_TEXT.fullmatch(raw) is not None
    seconds = float(raw) if number or text else math.nan  # type: ignore[arg-type]
    if math.isnan(seconds):
        raise ResponseFormatError("'expiresIn' is not a number", path="result.expiresIn")
    return seconds
