"""Property tests (hypothesis): paging never loses or repeats a record; the sandbox's signer
and the client's agree and ignore key order and empty values; the converter either builds a
model or names the path that did not fit."""

from __future__ import annotations

import json
import math
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from yeastar_csss_async import (
    Order,
    PackageOrder,
    Product,
    ResponseFormatError,
    csss_sign_content,
    sign_csss_body,
)
from yeastar_csss_async._converters import structure_items
from yeastar_csss_async._page_plan import PagePlan
from yeastar_csss_async.sandbox._signing import sign_content as sandbox_sign_content
from yeastar_csss_async.sandbox._signing import signature as sandbox_signature

from conftest import load_seed

# --- page planning ------------------------------------------------------------------------


class ShiftingList:
    """Records newest first; the head moves while pages are read."""

    def __init__(self, total: int) -> None:
        self.records = list(range(total))
        self.next_new = -1

    def insert(self, n: int) -> None:
        for _ in range(n):
            self.records.insert(0, self.next_new)
            self.next_new -= 1

    def remove(self, n: int) -> None:
        del self.records[:n]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    total=st.integers(0, 120),
    page_size=st.integers(1, 15),
    understate=st.booleans(),
    window=st.integers(1, 6),
    data=st.data(),
)
def test_every_record_present_throughout_is_yielded_exactly_once(
    total: int, page_size: int, understate: bool, window: int, data: st.DataObject,
) -> None:
    """The engine's bookkeeping (PagePlan + dedupe), driven step by step: hypothesis picks
    which page answers next, when the list changes at the head, and by how much."""
    server = ShiftingList(total)
    initial = set(server.records)
    removed: set[int] = set()
    plan = PagePlan(page_size)
    in_flight: list[int] = []
    yielded: list[int] = []
    seen: set[int] = set()
    mutations_left = data.draw(st.integers(0, 3), label="mutations")
    for _step in range(5000):
        if plan.finished and not in_flight:
            break
        while len(in_flight) < window and (page := plan.take()) is not None:
            in_flight.append(page)
        if not in_flight:
            break
        if mutations_left and data.draw(st.booleans(), label="mutate now"):
            mutations_left -= 1
            amount = data.draw(st.integers(1, 2 * page_size), label="amount")
            if data.draw(st.booleans(), label="insert"):
                server.insert(amount)
            else:
                removed.update(server.records[:amount])
                server.remove(amount)
        index = data.draw(st.integers(0, len(in_flight) - 1), label="which page answers")
        page_no = in_flight.pop(index)
        start = (page_no - 1) * page_size
        items = server.records[start:start + page_size]
        count = len(server.records)
        reported = 1 if understate else math.ceil(count / page_size)
        plan.record(page_no, count, reported, len(items))
        for record in items:
            if record not in seen:
                seen.add(record)
                yielded.append(record)
    assert plan.finished
    assert not plan.unstable
    assert len(yielded) == len(set(yielded))
    assert initial - removed <= set(yielded)


# --- CSSS sign ------------------------------------------------------------------------------

scalars = st.one_of(st.text(), st.integers(-10**9, 10**9), st.booleans(), st.none())


@settings(max_examples=200, deadline=None)
@given(params=st.dictionaries(st.text(min_size=1), scalars, max_size=8), data=st.data())
def test_sign_ignores_key_order_and_empty_values(
    params: dict[str, Any], data: st.DataObject,
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


json_leaves = st.one_of(st.none(), st.booleans(), st.integers(-10**20, 10**20),
                        st.floats(allow_nan=False, allow_infinity=False), st.text())
nested_json = st.recursive(json_leaves, lambda children: st.lists(children, max_size=3)
                           | st.dictionaries(st.text(max_size=4), children, max_size=3),
                           max_leaves=8)


@settings(max_examples=300, deadline=None)
@given(params=st.dictionaries(st.text(min_size=1, max_size=6), nested_json, max_size=6))
def test_the_sandbox_signer_and_the_client_signer_agree(params: dict[str, Any]) -> None:
    """Two implementations of one documented rule, written apart (the sandbox's is what
    catches client mistakes end to end): same text, same sign, for any JSON parameters,
    including non-ASCII, control characters, nested objects and big or fractional numbers."""
    assert sandbox_sign_content(params) == csss_sign_content(params)
    assert sandbox_signature(params, "k\u00e9y") == sign_csss_body(params, "k\u00e9y")


# --- converter ------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(st.text(max_size=5), children, max_size=3),
    max_leaves=6,
)

SEED_RECORDS: list[tuple[type[Any], dict[str, Any]]] = [
    (Order, load_seed("seed_000_order_list.json")["result"]["results"][0]),
    (Product, load_seed("seed_002_product_list.json")["result"]["results"][1]),
    (PackageOrder, load_seed("seed_001_query_order.json")["data"]["package_order"][0]),
]


@settings(max_examples=400, deadline=None)
@given(which=st.integers(0, len(SEED_RECORDS) - 1), data=st.data())
def test_any_value_in_any_field_gives_a_model_or_a_located_format_error(
    which: int, data: st.DataObject,
) -> None:
    cls, record = SEED_RECORDS[which]
    key = data.draw(st.sampled_from(sorted(record)), label="key")
    value = data.draw(json_values, label="value")
    broken = {**record, key: value}
    try:
        structure_items([broken], cls, path="results")
    except ResponseFormatError as error:
        assert error.path.startswith(f"results[0].{key}")  # noqa: PT017 - either outcome is fine
