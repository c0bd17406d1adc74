"""Hypothesis strategies the property tests share, and the seed records they vary."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from yeastar_csss_async import Order, PackageOrder, Product

from tests._support.seeds import load_seed

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=6,
)


SEED_RECORDS: list[tuple[type[Any], dict[str, Any]]] = [
    (Order, load_seed("seed_000_order_list.json")["result"]["results"][0]),
    (Product, load_seed("seed_002_product_list.json")["result"]["results"][1]),
    (PackageOrder, load_seed("seed_001_query_order.json")["data"]["package_order"][0]),
]
