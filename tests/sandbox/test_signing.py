"""The sandbox's CSSS signer (``sandbox/_signing``), written apart from the client's: the
documented vectors, what JSON can and cannot carry, that it never imports the client's signer,
that it rejects our client when that client signs wrongly, and (hypothesis) that for any JSON
parameters it agrees with the client's signer."""

from __future__ import annotations

import ast
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from yeastar_csss_async import APIError, CSSSClient, csss_sign_content, sign_csss_body
from yeastar_csss_async.sandbox import SANDBOX_ACCESS_CODE, SANDBOX_SECRET, Sandbox
from yeastar_csss_async.sandbox._signing import decode_body, sign_content, signature
from yeastar_csss_async.sandbox._signing import sign_content as sandbox_sign_content
from yeastar_csss_async.sandbox._signing import signature as sandbox_signature

# Vectors computed outside this library (secret `test-secret`), plus one with the Chinese
# package name of the orderPackage example, computed the same way from its literal content.
SIGN_VECTORS = [
    (
        {
            "access_code": "P000270",
            "page_no": 1,
            "page_size": 2,
            "timestamp": "1643251754",
            "version": "2.0",
        },
        '{"access_code":"P000270","page_no":1,"page_size":2,"timestamp":"1643251754",'
        '"version":"2.0"}',
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
        '{"access_code":"P000270","page_no":"1","page_size":"2","timestamp":"1643251754",'
        '"version":"2.0"}',
        "hzx30b0CfBUknR5Qmx4M9EyhIJo=",
    ),
    (
        {"version": "2.0", "access_code": "P012345", "timestamp": "1498723232"},  # doc order in
        '{"access_code":"P012345","timestamp":"1498723232","version":"2.0"}',  # sorted out
        "UC1EfiI9Lb/NMFQk6NTulbwTTmE=",
    ),
    (
        {
            "version": "2.0",
            "package_name": "C_M_0_P_中国20M不限速月套餐",
            "device_id": "",
            "order_id": None,
            "access_code": "P000270",
            "timestamp": "1643251754",
            "sign": "old",
        },
        '{"access_code":"P000270","package_name":"C_M_0_P_中国20M不限速月套餐",'
        '"timestamp":"1643251754","version":"2.0"}',
        "qnsvE6EcKvrAXbx9HK1f5u+fstM=",
    ),
]


@pytest.mark.parametrize(("params", "content", "sign"), SIGN_VECTORS)
def test_sandbox_signer_matches_the_documented_vectors(
    params: Mapping[str, object],
    content: str,
    sign: str,
) -> None:
    assert sign_content(params) == content
    assert signature(params, "test-secret") == sign
    # the same parameters in the documentation's unsorted order sign differently: the
    # sandbox never produces that content
    assert signature(params, "test-secret") != "mdaOF2vxt68XrUSvkb/XdDCu29s="


def test_sandbox_signer_signs_numbers_as_sent_and_escapes_only_what_json_must() -> None:
    body = decode_body('{"b":1.50,"a":"q\\"\\n\\u0001中/","c":[2,{"z":null,"y":1e3}]}'.encode())
    assert isinstance(body, dict)
    assert sign_content(body) == '{"a":"q\\"\\n\\u0001中/","b":1.50,"c":[2,{"y":1e3,"z":null}]}'
    with pytest.raises(ValueError, match="NaN"):
        decode_body(b'{"a":NaN}')


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ({"a": float("nan")}, ValueError),
        ({"a": {1: "x"}}, TypeError),
        ({"a": b"bytes"}, TypeError),
        ({"a": {"set"}}, TypeError),
    ],
)
def test_sandbox_signer_refuses_what_json_cannot_carry(
    params: Mapping[str, object],
    error: type[Exception],
) -> None:
    with pytest.raises(error):
        sign_content(params)


def test_sandbox_does_not_import_the_client_signer() -> None:
    """The sandbox's sign check must stay independent of the code it is meant to catch."""
    forbidden_modules = {"_csss_protocol", "_yeastar_protocol", "_wire"}
    forbidden_names = {"sign_csss_body", "csss_sign_content", "build_csss_body"}
    sandbox_dir = Path(__file__).parents[2] / "yeastar_csss_async" / "sandbox"
    sources = sorted(sandbox_dir.glob("*.py"))
    assert len(sources) >= 3
    for source in sources:
        for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                module = (node.module or "").rsplit(".", 1)[-1]
                assert module not in forbidden_modules, f"{source.name} imports {module}"
                names = {alias.name for alias in node.names}
                assert not names & forbidden_names, f"{source.name} imports {names}"
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    assert alias.name.rsplit(".", 1)[-1] not in forbidden_modules


def _wrong_sign_content(mistake: str) -> Any:
    """A client-side sign content with one plausible bug."""

    def content(params: Mapping[str, object]) -> str:
        kept = {k: v for k, v in params.items() if k != "sign" and v not in (None, "")}
        return json.dumps(
            kept,
            separators=(",", ":"),
            ensure_ascii=mistake == "ascii_escapes",
            sort_keys=mistake != "unsorted_keys",
        )

    return content


@pytest.mark.parametrize("mistake", ["ascii_escapes", "unsorted_keys"])
async def test_sandbox_rejects_our_client_when_it_signs_wrongly(
    sandbox: Sandbox,
    monkeypatch: pytest.MonkeyPatch,
    mistake: str,
) -> None:
    from yeastar_csss_async import _csss_protocol

    status = "已完成"  # non-ASCII: \u-escaping it changes the signed text
    async with CSSSClient(SANDBOX_ACCESS_CODE, SANDBOX_SECRET, base_url=sandbox.base_url) as client:
        right = await client.get_package_orders_page(order_status=status, order_id="Z")
        assert (right.total, right.items) == (0, [])  # the correct sign is accepted
        monkeypatch.setattr(_csss_protocol, "csss_sign_content", _wrong_sign_content(mistake))
        with pytest.raises(APIError) as caught:
            await client.get_package_orders_page(order_status=status, order_id="Z")
    assert (caught.value.code, caught.value.message) == ("1002", "sign error")


# --- a property: the two signers agree on any JSON --------------------------------------


json_leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**20), 10**20),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(),
)


nested_json = st.recursive(
    json_leaves,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=4), children, max_size=3)
    ),
    max_leaves=8,
)


@settings(max_examples=300, deadline=None)
@given(params=st.dictionaries(st.text(min_size=1, max_size=6), nested_json, max_size=6))
def test_the_sandbox_signer_and_the_client_signer_agree(params: dict[str, Any]) -> None:
    """Two implementations of one documented rule, written apart (the sandbox's is what
    catches client mistakes end to end): same text, same sign, for any JSON parameters,
    including non-ASCII, control characters, nested objects and big or fractional numbers."""
    assert sandbox_sign_content(params) == csss_sign_content(params)
    assert sandbox_signature(params, "k\u00e9y") == sign_csss_body(params, "k\u00e9y")
