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
from typing import Any

from ._converters import structure_items
from ._errors import QUOTE_LIMIT, APIError, AuthenticationError, Redactor, ResponseFormatError
from ._wire import body_snippet, error_field, whole_number
from .models import PackageOrder, Page

__all__ = [
    "CSSS_QUERY_ORDER_PATH",
    "CSSS_SUCCESS_CODE",
    "CSSS_VERSION",
    "build_csss_body",
    "csss_sign_content",
    "decode_csss_envelope",
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
    document: object, *, status: int | None = 200, redact: Redactor | None = None,
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
            raise ResponseFormatError(
                "CSSS answer has neither 'code' nor 'success'", status=status
            )
        message = error_field(document.get("message") or None, redact, 4 * QUOTE_LIMIT)
        raise APIError(message or "CSSS request failed", status=status,
                       code=error_field(code, redact))
    data = document.get("data")
    if not isinstance(data, Mapping):
        raise ResponseFormatError("CSSS 'data' is not an object", path="data", status=status)
    return data


def describe_csss_error(status: int, body: bytes, redact: Redactor) -> APIError:
    """The error of a non-2xx CSSS answer, with the CSSS code when the body carries one."""
    document: object = None
    with contextlib.suppress(ValueError, RecursionError):  # not JSON: quote a snippet
        document = json.loads(body)
    cls = AuthenticationError if status == 401 else APIError
    if isinstance(document, Mapping) and ("code" in document or "message" in document):
        message = error_field(document.get("message") or None, redact, 4 * QUOTE_LIMIT)
        return cls(message or f"HTTP {status}", status=status,
                   code=error_field(document.get("code"), redact))
    snippet = body_snippet(body, redact)
    return cls(f"HTTP {status}" + (f": {snippet}" if snippet else ""), status=status)


def decode_package_order_page(
    data: Mapping[str, Any], *, page_no: int, page_size: int, redact: Redactor | None = None,
) -> Page[PackageOrder]:
    """A :class:`Page` from the ``data`` of a queryOrder answer (bad values quoted with
    secrets masked by ``redact``)."""
    items = structure_items(data.get("package_order"), PackageOrder, path="data.package_order",
                            redact=redact)
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
        items, page_no=number("cur_page_no") or page_no,
        page_size=number("page_size") or page_size, total=total,
        reported_total_pages=number("total_pages"),
    )
