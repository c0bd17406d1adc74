"""CSSS signing and envelope decoding, with fixed vectors (no network), and properties of the
sign (hypothesis): key order and empty values do not change it, any text is signed as is."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from yeastar_csss_async import APIError, ResponseFormatError, csss_sign_content, sign_csss_body
from yeastar_csss_async._csss_protocol import build_csss_body, decode_csss_envelope

SECRET = "test-secret"


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        # vectors computed outside this library with secret `test-secret` (HMAC-SHA1,
        # Base64); they exercise the serializer, they are not vendor-issued pairs
        (
            {
                "access_code": "P000270",
                "page_no": 1,
                "page_size": 2,
                "timestamp": "1643251754",
                "version": "2.0",
            },
            "bmA4wqNXmjN+U4mDGVjfX3Zg0IM=",
        ),
        (
            {
                "access_code": "P000270",
                "page_no": "1",
                "page_size": "2",
                "timestamp": "1643251754",
                "version": "2.0",
            },
            "hzx30b0CfBUknR5Qmx4M9EyhIJo=",
        ),
        (
            {"version": "2.0", "access_code": "P012345", "timestamp": "1498723232"},
            "UC1EfiI9Lb/NMFQk6NTulbwTTmE=",
        ),
    ],
)
def test_sign_matches_the_documented_vectors(params: dict[str, object], expected: str) -> None:
    assert sign_csss_body(params, SECRET) == expected


def test_sign_content_is_compact_sorted_json_without_empty_values_or_sign() -> None:
    content = csss_sign_content(
        {
            "version": "2.0",
            "device_id": "",
            "order_id": None,
            "sign": "old",
            "access_code": "P000270",
            "page_no": 1,
        }
    )
    assert content == '{"access_code":"P000270","page_no":1,"version":"2.0"}'


def test_seed_request_with_empty_filters_signs_like_one_without_them() -> None:
    seed = {
        "access_code": "P000270",
        "device_id": "",
        "order_id": "",
        "order_status": "",
        "order_type": "",
        "page_no": 1,
        "page_size": 2,
        "timestamp": "1643251754",
        "version": "2.0",
        "sign": "ZdFRHMM/ccYeb49Rys3wOCZXDpc=",
    }
    assert sign_csss_body(seed, SECRET) == "bmA4wqNXmjN+U4mDGVjfX3Zg0IM="


def test_non_ascii_is_signed_as_utf8_not_escaped() -> None:
    params = {"package_name": "C_M_0_P_中国20M不限速月套餐", "access_code": "P1"}
    assert "中国" in csss_sign_content(params)
    # vector computed independently: HMAC-SHA1 over the UTF-8 bytes of
    # {"access_code":"P1","package_name":"C_M_0_P_中国20M不限速月套餐"}
    assert sign_csss_body(params, SECRET) == sign_csss_body(dict(reversed(params.items())), SECRET)
    assert sign_csss_body(params, SECRET) == "EGZGdv3Rb+ykiGddGD3386LM+ds="


def test_body_carries_globals_drops_empty_filters_and_verifies() -> None:
    body = json.loads(
        build_csss_body(
            {"device_id": None, "order_id": "", "order_status": "1", "page_no": 2, "page_size": 50},
            access_code="P000270",
            secret=SECRET,
            timestamp=1643251754,
        )
    )
    assert body["version"] == "2.0"
    assert body["access_code"] == "P000270"
    assert body["timestamp"] == "1643251754"
    assert "device_id" not in body
    assert "order_id" not in body
    sign = body.pop("sign")
    assert sign == sign_csss_body(body, SECRET)


def test_body_without_timestamp_uses_the_current_epoch_seconds() -> None:
    import time

    body = json.loads(build_csss_body({}, access_code="P1", secret=SECRET))
    assert abs(int(body["timestamp"]) - time.time()) < 5
    assert len(body["timestamp"]) == 10


def test_envelope_success_returns_data() -> None:
    assert decode_csss_envelope(
        {"code": "0000", "success": True, "data": {"a": 1}, "message": "成功"}
    ) == {"a": 1}


@pytest.mark.parametrize(
    "document",
    [
        {"code": "1002", "success": False, "message": "sign error", "data": None},
        {"code": "0000", "success": False, "message": "odd", "data": {}},
        {"code": "1003", "success": True, "message": "timestamp expired", "data": {}},
    ],
)
def test_envelope_failure_raises_api_error_with_code(document: dict[str, object]) -> None:
    with pytest.raises(APIError) as caught:
        decode_csss_envelope(document)
    assert caught.value.code == document["code"]
    assert caught.value.message == document["message"]


@pytest.mark.parametrize("document", [[], "x", {"message": "?"}, {"code": "0000", "success": True}])
def test_envelope_that_is_not_one_raises_format_error(document: object) -> None:
    with pytest.raises(ResponseFormatError):
        decode_csss_envelope(document)


# --- properties -----------------------------------------------------------------------------


scalars = st.one_of(st.text(), st.integers(-(10**9), 10**9), st.booleans(), st.none())


@settings(max_examples=200, deadline=None)
@given(params=st.dictionaries(st.text(min_size=1), scalars, max_size=8), data=st.data())
def test_sign_ignores_key_order_and_empty_values(
    params: dict[str, Any],
    data: st.DataObject,
) -> None:
    shuffled = dict(data.draw(st.permutations(list(params.items()))))
    assert sign_csss_body(params, "k") == sign_csss_body(shuffled, "k")
    with_empties = {**params, "zz-empty": "", "zz-none": None}
    assert sign_csss_body(params, "k") == sign_csss_body(with_empties, "k")


@settings(max_examples=200, deadline=None)
@given(value=st.text())
def test_sign_content_round_trips_any_text(value: str) -> None:
    content = csss_sign_content({"name": value, "access_code": "P1"})
    decoded = json.loads(content)
    assert decoded.get("name") == (value or None)  # "" is left out
    assert all(ord(ch) < 128 or ch in content for ch in value)  # raw UTF-8, not \\u escapes
