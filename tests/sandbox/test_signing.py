"""The sandbox's CSSS signer (``sandbox/_signing``), written apart from the client's: for any
JSON parameters it agrees with the client's signer (hypothesis)."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from yeastar_csss_async import csss_sign_content, sign_csss_body
from yeastar_csss_async.sandbox._signing import sign_content as sandbox_sign_content
from yeastar_csss_async.sandbox._signing import signature as sandbox_signature

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
