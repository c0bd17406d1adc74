"""An in-memory paged list that can shift while it is read, and a PageIterator over it."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable

from yeastar_csss_async import Page
from yeastar_csss_async._paging import PageIterator


class FakeList:
    """A paged list like the APIs serve: slices of a Python list, newest first."""

    def __init__(self, total: int, *, page_size: int, understate_pages: bool = False) -> None:
        self.records = [f"r{i}" for i in range(total)]
        self.page_size = page_size
        self.understate_pages = understate_pages
        self.calls: list[int] = []
        self.in_flight = 0
        self.peak = 0
        self.before_answer: Callable[[int], None] | None = None
        self.delay: Callable[[int], float] = lambda page_no: 0.0
        self.fail: dict[int, Exception] = {}
        self._new = 0

    def insert_at_head(self, n: int) -> None:
        for _ in range(n):
            self.records.insert(0, f"new{self._new}")
            self._new += 1

    def remove_at_head(self, n: int) -> None:
        del self.records[:n]

    async def fetch(self, page_no: int) -> Page[str]:
        self.calls.append(page_no)
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            await asyncio.sleep(self.delay(page_no))
            if page_no in self.fail:
                raise self.fail[page_no]
            if self.before_answer is not None:
                self.before_answer(page_no)
            start = (page_no - 1) * self.page_size
            items = self.records[start : start + self.page_size]
            total = len(self.records)
            reported = 1 if self.understate_pages else math.ceil(total / self.page_size)
            return Page.build(
                items,
                page_no=page_no,
                page_size=self.page_size,
                total=total,
                reported_total_pages=reported,
            )
        finally:
            self.in_flight -= 1


def iterate(
    fake: FakeList,
    *,
    ordered: bool = True,
    dedupe: bool = True,
    max_ahead: int = 8,
    read_ahead: int | None = None,
) -> PageIterator[str]:
    return PageIterator(
        fake.fetch,
        lambda r: r,
        page_size=fake.page_size,
        ordered=ordered,
        dedupe=dedupe,
        max_ahead=max_ahead,
        label="test",
        read_ahead=read_ahead,
    )


async def collect(iterator: PageIterator[str]) -> list[str]:
    return [record async for record in iterator]
