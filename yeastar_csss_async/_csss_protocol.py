"""CSSS wire protocol, without I/O: the sign, the request body, and the response envelope.

Every function here is pure, so it is tested with fixed vectors and no network.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import msgspec

from ._converters import structure_items
from ._errors import APIError, ResponseFormatError, api_error_class
from ._fast_structure import row_fn, row_type
from ._redaction import QUOTE_LIMIT, Redactor, kept_body
from ._wire import body_snippet, decode_json, error_field, page_from_counts, whole_number
from .models import PackageOrder, Page

__all__ = [
    "CSSS_QUERY_ORDER_PATH",
    "CSSS_SUCCESS_CODE",
    "CSSS_VERSION",
    "build_csss_body",
    "csss_sign_content",
    "decode_csss_envelope",
    "decode_package_order_answer",
    "decode_package_order_page",
    "describe_csss_error",
    "sign_csss_body",
]

CSSS_VERSION = "2.0"
CSSS_SUCCESS_CODE = "0000"
CSSS_QUERY_ORDER_PATH = "/package/queryOrder"


def _is_empty(value: object) -> bool:
    return value is None or value == ""


def csss_sign_content(params: Mapping[str, object]) -> str:
    """The exact text that is signed: compact JSON of the non-empty parameters, keys sorted.

    ``sign`` itself and every ``None`` or ``""`` value are left out. Numbers stay numbers and
    strings stay strings, as they are sent; non-ASCII is kept as UTF-8 (``ensure_ascii=False``).
    """
    kept = {k: v for k, v in params.items() if k != "sign" and not _is_empty(v)}
    return json.dumps(kept, separators=(",", ":"), ensure_ascii=False, sort_keys=True)


def sign_csss_body(params: Mapping[str, object], secret: str) -> str:
    """``Base64(HMAC-SHA1(secret, csss_sign_content(params)))``, standard alphabet, padded."""
    digest = hmac.new(
        secret.encode("utf-8"), csss_sign_content(params).encode("utf-8"), hashlib.sha1
    ).digest()
    return base64.b64encode(digest).decode("ascii")


def build_csss_body(
    params: Mapping[str, object],
    *,
    access_code: str,
    secret: str,
    timestamp: int | None = None,
) -> bytes:
    """The signed JSON body for one CSSS request.

    Adds ``version``, ``access_code`` and ``timestamp`` (epoch seconds as a string; the
    current time unless given), drops ``None``/``""`` parameters so that the body sent is the
    body signed, and appends ``sign``. Each call signs afresh, so retries get a new timestamp.
    """
    body: dict[str, object] = {k: v for k, v in params.items() if not _is_empty(v)}
    body["version"] = CSSS_VERSION
    body["access_code"] = access_code
    body["timestamp"] = str(int(time.time()) if timestamp is None else timestamp)
    body["sign"] = sign_csss_body(body, secret)
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def decode_csss_envelope(
    document: object,
    *,
    status: int | None = 200,
    redact: Redactor | None = None,
) -> Mapping[str, Any]:
    """Check a decoded CSSS answer and return its ``data`` object.

    Success is ``success`` true and ``code == "0000"``; anything else raises
    :class:`APIError` carrying the CSSS code and message (redacted, bounded). A body that is
    not a CSSS envelope raises :class:`ResponseFormatError`.
    """
    if not isinstance(document, Mapping):
        raise ResponseFormatError("CSSS answer is not a JSON object", status=status)
    code = document.get("code")
    success = document.get("success")
    if success is not True or code != CSSS_SUCCESS_CODE:
        if code is None and success is None:
            raise ResponseFormatError("CSSS answer has neither 'code' nor 'success'", status=status)
        message = error_field(document.get("message") or None, redact, 4 * QUOTE_LIMIT)
        raise APIError(
            message or "CSSS request failed", status=status, code=error_field(code, redact)
        )
    data = document.get("data")
    if not isinstance(data, Mapping):
        raise ResponseFormatError("CSSS 'data' is not an object", path="data", status=status)
    return data


def describe_csss_error(status: int, body: bytes, redact: Redactor | None = None) -> APIError:
    """The error of a non-2xx CSSS answer, with the CSSS code when the body carries one."""
    document: object = None
    with contextlib.suppress(ValueError, RecursionError):  # not JSON: quote a snippet
        document = json.loads(body)
    cls = api_error_class(status)
    kept = kept_body(body, redact)
    if isinstance(document, Mapping) and ("code" in document or "message" in document):
        message = error_field(document.get("message") or None, redact, 4 * QUOTE_LIMIT)
        return cls(
            message or f"HTTP {status}",
            status=status,
            code=error_field(document.get("code"), redact),
            body=kept,
        )
    snippet = body_snippet(body, redact)
    return cls(f"HTTP {status}" + (f": {snippet}" if snippet else ""), status=status, body=kept)


def decode_package_order_page(
    data: Mapping[str, Any],
    *,
    page_no: int,
    page_size: int,
    redact: Redactor | None = None,
) -> Page[PackageOrder]:
    """A :class:`Page` from the ``data`` of a queryOrder answer (bad values quoted with
    secrets masked by ``redact``)."""
    items = structure_items(
        data.get("package_order"), PackageOrder, path="data.package_order", redact=redact
    )
    meta = data.get("page")
    if meta is None:
        meta = {}
    if not isinstance(meta, Mapping):
        raise ResponseFormatError("'page' is not an object", path="data.page")

    def number(key: str) -> int | None:
        return whole_number(meta, key, path="data.page", redact=redact)

    total = number("total_count")
    if total is None:
        raise ResponseFormatError("page has no 'total_count'", path="data.page.total_count")
    return Page.build(
        items,
        page_no=number("cur_page_no") or page_no,
        page_size=number("page_size") or page_size,
        total=total,
        reported_total_pages=number("total_pages"),
    )


_ROW_META = msgspec.defstruct(
    "PackageOrderPageMeta",
    [(key, Any, None) for key in ("cur_page_no", "page_size", "total_count", "total_pages")],
    gc=False,
)
_ANSWER = msgspec.defstruct(
    "PackageOrderPageAnswer",
    [
        ("code", Any, None),
        ("success", Any, None),
        (
            "data",
            msgspec.defstruct(
                "PackageOrderPageData",
                [
                    ("page", _ROW_META | None, None),
                    ("package_order", list[row_type(PackageOrder)] | None, None),  # type: ignore[misc]
                ],
                gc=False,
            )
            | None,
            None,
        ),
    ],
    gc=False,
)
_decode_answer = msgspec.json.Decoder(_ANSWER, float_hook=Decimal).decode


def decode_package_order_answer(
    status: int,
    body: bytes,
    *,
    page_no: int,
    page_size: int,
    redact: Redactor | None = None,
) -> Page[PackageOrder]:
    """A :class:`Page` from a whole queryOrder answer, as the envelope and page decoders would
    make it, or the error they would raise.

    A successful page whose values fit is decoded by msgspec straight into row structs;
    anything else takes the general path, which raises the typed, located error.
    """
    page = _fast_page(status, body, page_no, page_size)
    if page is not None:
        return page
    if not 200 <= status < 300:
        raise describe_csss_error(status, body, redact)
    try:
        data = decode_csss_envelope(
            decode_json(body, status=status, redact=redact), status=status, redact=redact
        )
    except APIError as error:  # a business error (HTTP 200): keep the body, as for the others
        error.body = kept_body(body, redact)
        raise
    return decode_package_order_page(data, page_no=page_no, page_size=page_size, redact=redact)


def _fast_page(status: int, body: bytes, page_no: int, page_size: int) -> Page[PackageOrder] | None:
    if not 200 <= status < 300:
        return None
    try:
        answer: Any = _decode_answer(body)
        data = answer.data
        if (
            answer.success is not True
            or answer.code != CSSS_SUCCESS_CODE
            or data is None
            or data.page is None
        ):
            return None
        meta, rows = data.page, data.package_order
        items = [] if rows is None else list(map(row_fn(PackageOrder), rows))
        return page_from_counts(
            items,
            total=meta.total_count,
            page_no=meta.cur_page_no,
            page_size=meta.page_size,
            total_pages=meta.total_pages,
            asked_no=page_no,
            asked_size=page_size,
        )
    except Exception:  # whatever did not fit: the general path says what and where
        return None
