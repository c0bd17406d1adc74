"""Dedupe keys: exact whatever the keys look like, and a few bytes per digit-string key."""

from __future__ import annotations

import asyncio
import tracemalloc
from collections.abc import Hashable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from yeastar_csss_async import Page, PageIterator, _keyset
from yeastar_csss_async._keyset import SeenKeys, _IntSet

keys = st.one_of(
    st.integers(0, 10**6).map(str),  # order ids
    st.integers(0, 999).map(lambda n: f"{n:04d}"),  # leading zeros: "0123" is not "123"
    st.integers(0, 10**18 - 1).map(lambda n: f"L{n}"),  # CSSS order codes
    st.integers(0, 99).map(lambda n: f"M{n}"),
    st.text(min_size=1, max_size=4),  # anything else, Arabic-Indic digits included
    st.sampled_from(["", "1" * 19, "٣", "x12", None]),
)


async def _yielded(pages: list[list[Hashable | None]]) -> list[Hashable | None]:
    async def fetch(page_no: int) -> Page[Hashable | None]:
        items = pages[page_no - 1] if page_no <= len(pages) else []
        return Page.build(
            items,
            page_no=page_no,
            page_size=5,
            total=5 * len(pages),
            reported_total_pages=len(pages),
        )

    iterator = PageIterator(
        fetch, lambda item: item, page_size=5, ordered=True, dedupe=True, max_ahead=3, label="t"
    )
    return [item async for item in iterator]


@settings(max_examples=300, deadline=None)
@given(pages=st.lists(st.lists(keys, min_size=5, max_size=5), min_size=1, max_size=12))
def test_dedupe_yields_each_key_once_exactly_like_a_plain_set(
    pages: list[list[Hashable | None]],
) -> None:
    """Compaction every 7 keys, so most lookups go to the compact stores."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_keyset, "RECENT_MAX", 7)
        got = asyncio.run(_yielded(pages))
    expected, seen = [], set()
    for item in (k for page in pages for k in page):
        if item is None or item not in seen:
            expected.append(item)
            if item is not None:
                seen.add(item)
    assert got == expected


@pytest.mark.slow
def test_sequential_ids_cost_a_few_bits_each() -> None:
    """A million order ids in sequence: 16 bitmaps of 8 KiB, not 90 MiB of strings."""
    numbers = _IntSet()
    numbers.update(range(1_000_000, 2_000_000))
    assert numbers.nbytes() <= 17 * 8192
    assert 1_500_000 in numbers
    assert 999_999 not in numbers
    assert 2_000_000 not in numbers


def test_sparse_ids_cost_two_bytes_each_plus_their_chunk() -> None:
    numbers = _IntSet()
    numbers.update(range(0, 50_000_000, 1000))  # 50,000 ids, one in a thousand
    assert numbers.nbytes() == 2 * 50_000
    assert 49_999_000 in numbers
    assert 49_999_001 not in numbers


@pytest.mark.slow
def test_compacting_a_million_order_ids_keeps_memory_small() -> None:
    seen = SeenKeys()
    tracemalloc.start()
    try:
        for start in range(1_000_000, 2_000_000, 100):
            page = [str(n) for n in range(start, start + 100)]
            assert seen.keep_new(page, page) == page
        current, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert seen.keep_new(["1999999", "2000000"], ["1999999", "2000000"]) == ["2000000"]
    # The newest 65,536 keys stay in a plain set (about 6 MiB); the other 934,464 are
    # compacted into 16 bitmaps. A set of all the strings would hold about 90 MiB.
    assert current < 12 << 20
