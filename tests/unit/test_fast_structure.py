"""The generated structure functions (``_fast_structure``): the per-record hot path from JSON
to a model, on the dict path and the msgspec row path. What it builds is an ordinary frozen
model, and (hypothesis) the same model the detailed converter builds, or a refusal where that
converter refuses; a fast-decoded page is the page the general path decodes."""

from __future__ import annotations

import pickle
from collections.abc import Callable, Sequence
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from yeastar_csss_async import APIError, Order, PackageOrder, Page, Product, ResponseFormatError
from yeastar_csss_async._converters import _DETAILED, _FAST, structure_items
from yeastar_csss_async._csss_protocol import _fast_page as csss_fast_page
from yeastar_csss_async._csss_protocol import decode_csss_envelope, decode_package_order_page
from yeastar_csss_async._wire import decode_json
from yeastar_csss_async._yeastar_protocol import _decode_envelope, decode_page
from yeastar_csss_async._yeastar_protocol import _fast_page as yeastar_fast_page
from yeastar_csss_async.sandbox._app import _money_json as money_json

from tests._support.seeds import load_seed, seed_text
from tests._support.strategies import SEED_RECORDS, json_values

_plain_values = (
    json_values
    | st.integers(-(10**16), 10**16)
    | st.text(alphabet="0123456789.-+e ")
    | st.sampled_from(
        [
            "",
            "succeed",
            "USD",
            "activated",
            "20190302172719",
            "2019-03-02 17:27:19",
            "1700000000000",
            "130.00",
        ]
    )
)


value_for_a_field = _plain_values | st.decimals(allow_nan=True, places=None)


@settings(max_examples=600, deadline=None)
@given(which=st.integers(0, len(SEED_RECORDS) - 1), data=st.data())
def test_the_generated_fast_path_agrees_with_the_detailed_converter(
    which: int,
    data: st.DataObject,
) -> None:
    """The hot path is a generated function per model; errors are located by cattrs' detailed
    converter. Both must make the same model of any record, or both refuse it: a value the
    fast path wrongly refused would fail a page the API sent correctly."""
    cls, record = SEED_RECORDS[which]
    broken = dict(record)
    for key in data.draw(st.lists(st.sampled_from(sorted(record)), max_size=3), label="keys"):
        broken[key] = data.draw(value_for_a_field, label=key)
    if data.draw(st.booleans(), label="drop a key"):
        broken.pop(data.draw(st.sampled_from(sorted(record))), None)
    outcomes = []
    for converter in (_FAST, _DETAILED):
        try:
            outcomes.append(converter.structure(broken, cls))
        except Exception:
            outcomes.append("refused")
    fast, detailed = outcomes
    assert fast == detailed


def _general_or_refused(decode: Callable[[], object]) -> object:
    try:
        return decode()
    except ResponseFormatError:
        return "refused"
    except APIError as error:
        return ("api error", error.code)


# A page is JSON: no NaN or infinite numbers (msgspec cannot write them as numbers).
page_values = (
    _plain_values
    | st.decimals(allow_nan=False, allow_infinity=False, places=None)
    | st.lists(st.dictionaries(st.text(max_size=3), json_values, max_size=2), max_size=2)
)


@settings(max_examples=500, deadline=None)
@given(which=st.sampled_from(["orders", "products", "package orders"]), data=st.data())
def test_the_fast_page_decoder_agrees_with_the_general_path(
    which: str,
    data: st.DataObject,
) -> None:
    """A page is first decoded by msgspec straight into row structs; whenever that path gives
    a page, it must be the page the general path (dicts, then the detailed converter on error)
    gives; when the general path refuses, the fast one must step aside."""
    if which == "package orders":
        document = load_seed("seed_001_query_order.json")
        holder, items_key = document["data"], "package_order"
        meta = holder["page"]
    else:
        name = "seed_000_order_list.json" if which == "orders" else "seed_002_product_list.json"
        document = load_seed(name)
        holder = meta = document["result"]
        items_key = "results"
    records = holder[items_key]
    for _ in range(data.draw(st.integers(0, 3), label="changes")):
        where = data.draw(st.sampled_from(["record", "meta", "envelope"]), label="where")
        target = (
            data.draw(st.sampled_from(records), label="record")
            if where == "record" and records
            else meta
            if where == "meta"
            else document
        )
        key = data.draw(st.sampled_from(sorted(target)), label="key")
        target[key] = data.draw(page_values, label="value")
    body = money_json(document)  # Decimals as JSON numbers with their digits
    fast: Page[PackageOrder] | Page[Order | Product] | None
    if which == "package orders":
        fast = csss_fast_page(200, body, 1, 50)
        general = _general_or_refused(
            lambda: decode_package_order_page(
                decode_csss_envelope(decode_json(body)), page_no=1, page_size=50
            )
        )
    else:
        item: type[Order | Product] = Order if which == "orders" else Product
        fast = yeastar_fast_page(200, body, item, 1, 25, None)

        def general_path() -> object:
            result, request_id = _decode_envelope(200, body, None)
            return decode_page(result, item, page_no=1, page_size=25, request_id=request_id)

        general = _general_or_refused(general_path)
    if fast is not None:
        assert fast == general


@pytest.mark.parametrize(
    "name", ["seed_000_order_list.json", "seed_002_product_list.json", "seed_001_query_order.json"]
)
def test_models_built_by_the_fast_paths_are_ordinary_frozen_instances(name: str) -> None:
    """The generated functions fill a private builder subclass and then set ``__class__`` to
    the model: what comes out must be exactly the model (nested models too), frozen, equal to
    one built by ``__init__``, and picklable, on both the dict and the row
    path."""
    from yeastar_csss_async._csss_protocol import decode_package_order_answer
    from yeastar_csss_async._fast_structure import structure_fn
    from yeastar_csss_async._yeastar_protocol import decode_page_answer

    body = seed_text(name).encode()
    document = decode_json(body)
    assert isinstance(document, dict)
    rows: Sequence[object]
    if name == "seed_001_query_order.json":
        records = document["data"]["package_order"]
        rows = decode_package_order_answer(200, body, page_no=1, page_size=10).items
        cls: type[Any] = PackageOrder
    else:
        cls = Order if name == "seed_000_order_list.json" else Product
        records = document["result"]["results"]
        rows = decode_page_answer(200, body, cls, page_no=1, page_size=100).items
    from_dicts = [structure_fn(cls)(record) for record in records]
    assert rows == from_dicts == structure_items(records, cls, path="results")
    models = [*rows, *from_dicts]
    models += [
        value
        for model in list(models)
        for value in attrs.astuple(model, recurse=False)
        if attrs.has(type(value))
    ]
    models += [
        value
        for model in list(models)
        for value in attrs.astuple(model, recurse=False)
        if isinstance(value, list)
        for value in value
        if attrs.has(type(value))
    ]
    assert {type(model) for model in models} >= {cls}
    for model in models:
        assert type(model).__module__ == "yeastar_csss_async.models", type(model)
        assert not type(model).__name__.startswith("_"), type(model)
        assert attrs.evolve(model) == model
        assert pickle.loads(pickle.dumps(model)) == model
        first = attrs.fields(type(model))[0].name
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            setattr(model, first, None)
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            delattr(model, first)
