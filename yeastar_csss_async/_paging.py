"""The concurrent page engine: which pages to read (``PagePlan``), and reading them.

``PagePlan`` is pure bookkeeping, tested without I/O. It reads page 1, then plans
``max(totalPage, ceil(total / pageSize))`` pages, grows the plan when a later page reports a
larger total or a page at the end comes back full, and ends a pass at the first empty page.

Records shift between pages while a list changes under the reader: an insertion at the head
pushes records onto pages not read yet (seen twice: dedupe drops the copy), a removal pulls
records onto pages already read (missed). Reading pages out of order makes both happen. Every
page reports the total it saw; when the totals of a pass disagree, the data moved during the
pass, and the plan reads again from the last page that may have shifted (``D`` records before
the end of the prefix of pages that saw the first total, where ``D`` is the spread of the
totals), yielding only keys not yet seen, until a pass sees one total. Changes that keep the
total equal (one insertion and one removal) cannot be seen by any reader of this API.

``PageIterator`` owns one task per page in flight (no task group, so nothing is ever yielded
from inside one, PEP 789), hands pages to the consumer in page order (``ordered=True``) or as
they land, keeps at most ``max_ahead`` pages fetched ahead of the consumer, surfaces the first
error at the consumer's next step and cancels every other fetch, and cancels everything as soon
as the consumer leaves (``break``, exception, cancellation, ``aclose()``).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable, Sequence
from types import TracebackType
from typing import Generic, TypeVar

from ._errors import APIError, ResponseFormatError
from ._transport import logger
from .models import Page

__all__ = ["PageIterator", "PagePlan"]

T = TypeVar("T")

DEFAULT_MAX_PASSES = 5


class PagePlan:
    """Which page to read next; fed with what each page reported. No I/O."""

    def __init__(self, page_size: int, *, max_passes: int = DEFAULT_MAX_PASSES) -> None:
        self.page_size = page_size
        self.max_passes = max_passes
        self.pass_no = 1
        self.finished = False
        self.unstable = False  # gave up re-reading after max_passes while totals kept moving
        self._lo = 1
        self._end: int | None = None  # last page of this pass, known once page `lo` answered
        self._stop: int | None = None  # last page before the first empty page of this pass
        self._next = 1
        self._outstanding = 0
        self._totals: dict[int, int] = {}  # page -> total it reported, this pass
        self._min_total: int | None = None
        self._max_total: int | None = None
        self._reported_end = 0  # the most pages any answer said there are
        self.latest_total = 0  # the total of the latest answer
        self._prefix_pages = 0  # pass 1: pages 1..k that reported the first total
        self._prefix_total = 0
        self._spread_used = 0

    @property
    def reread_from(self) -> int:
        """First page of the current pass (1 on the first pass)."""
        return self._lo

    def _limit(self) -> int | None:
        if self._end is None:
            return None
        return self._end if self._stop is None else min(self._end, self._stop)

    def take(self) -> int | None:
        """The next page to read now, or None (wait for an answer, or nothing left)."""
        if self.finished:
            return None
        limit = self._limit()
        if limit is None:  # the first page of the pass decides the plan
            if self._next != self._lo:
                return None
        elif self._next > limit:
            return None
        page_no = self._next
        self._next += 1
        self._outstanding += 1
        return page_no

    def is_speculative(self, page_no: int) -> bool:
        """True for a page past every end the server reported: read only to prove the end."""
        return self._end is not None and page_no > self._reported_end

    def _planned_end(self, total: int, reported_pages: int | None) -> int:
        pages = max(reported_pages or 0, math.ceil(total / self.page_size))
        # When the last page should be exactly full, read one page past it in the same round:
        # an empty page there proves the end without costing another round trip.
        if total > 0 and total % self.page_size == 0:
            pages += 1
        return pages

    def record(self, page_no: int, total: int, reported_pages: int | None, count: int) -> None:
        """What page ``page_no`` reported: the total it saw, its totalPage, its record count."""
        self._outstanding -= 1
        self._totals[page_no] = total
        self.latest_total = total
        self._reported_end = max(self._reported_end, reported_pages or 0,
                                 math.ceil(total / self.page_size))
        self._min_total = total if self._min_total is None else min(self._min_total, total)
        self._max_total = total if self._max_total is None else max(self._max_total, total)
        end = self._planned_end(total, reported_pages)
        if count >= self.page_size and page_no >= end:
            end = page_no + 1  # full page at the end: the list goes on
        self._end = end if self._end is None else max(self._end, end)
        if count == 0:
            self._stop = page_no - 1 if self._stop is None else min(self._stop, page_no - 1)
        if self._outstanding == 0 and self._next > (self._limit() or 0):
            self._close_pass()

    def _close_pass(self) -> None:
        totals = [self._totals[p] for p in sorted(self._totals)]
        assert self._min_total is not None
        assert self._max_total is not None
        spread = self._max_total - self._min_total
        if self.pass_no == 1:
            if len(set(totals)) <= 1:
                self.finished = True
                return
            first = totals[0]
            pages = sorted(self._totals)
            k = 0
            while k < len(pages) and self._totals[pages[k]] == first and pages[k] == k + 1:
                k += 1
            self._prefix_pages, self._prefix_total = k, first
        else:
            latest = set(totals)
            if len(latest) <= 1 and (
                not latest or abs(latest.pop() - self._prefix_total) <= self._spread_used
            ):
                self.finished = True
                return
        if self.pass_no >= self.max_passes:
            self.finished = True
            self.unstable = True
            return
        self._start_pass(spread)

    def _start_pass(self, spread: int) -> None:
        size = self.page_size
        self._spread_used = spread
        self._lo = max(1, (self._prefix_pages * size - spread) // size + 1)
        assert self._max_total is not None
        self._end = max(self._lo, self._planned_end(self._max_total, None))
        self._stop = None
        self._next = self._lo
        self._totals = {}
        self.pass_no += 1


class PageIterator(AsyncIterator[T], Generic[T]):
    """Streams the records of a paged list, fetching pages concurrently.

    Use it with ``async for``; leave early freely. ``aclose()`` (or ``async with``) also
    waits for the cancelled fetches to finish.
    """

    def __init__(
        self,
        fetch: Callable[[int], Awaitable[Page[T]]],
        key: Callable[[T], Hashable | None],
        *,
        page_size: int,
        ordered: bool,
        dedupe: bool,
        max_ahead: int,
        label: str,
        max_passes: int = DEFAULT_MAX_PASSES,
    ) -> None:
        # The fetch tasks reference only the fetcher, never this object, so dropping the
        # iterator (``break``) really drops it, and __del__ cancels the fetches at once.
        self._fetcher = _Fetcher(fetch, PagePlan(page_size, max_passes=max_passes),
                                 ordered=ordered, max_ahead=max_ahead, label=label)
        self._key = key
        self._dedupe = dedupe
        self._items: Sequence[T] = ()
        self._pos = 0
        self._seen: set[Hashable] = set()

    @property
    def pages_read(self) -> int:
        """Pages answered so far (re-read pages included)."""
        return self._fetcher.pages_read

    @property
    def total(self) -> int | None:
        """The total the latest page reported (for progress displays), None before page 1."""
        return self._fetcher.total

    @property
    def passes(self) -> int:
        """Passes over the list so far (more than 1 when it changed while it was read)."""
        return self._fetcher.plan.pass_no

    def __repr__(self) -> str:
        fetcher = self._fetcher
        return (f"PageIterator({fetcher.label}, pages_read={fetcher.pages_read}, "
                f"in_flight={len(fetcher.tasks)}, closed={fetcher.closed})")

    def __aiter__(self) -> PageIterator[T]:
        return self

    async def __aenter__(self) -> PageIterator[T]:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def __anext__(self) -> T:
        fetcher = self._fetcher
        while True:
            if fetcher.error is not None:
                self._items = ()
                await fetcher.fail()
            if self._pos < len(self._items):
                item = self._items[self._pos]
                self._pos += 1
                return item
            page = await fetcher.next_page()
            if page is None:
                self._items = ()
                raise StopAsyncIteration
            self._items = self._unseen(page.items) if self._dedupe else page.items
            self._pos = 0

    async def aclose(self) -> None:
        """Stop: cancel every fetch still in flight and wait until they are gone."""
        self._items = ()
        await self._fetcher.aclose()

    def __del__(self) -> None:
        # `break` out of `async for` drops the last reference: cancel at once, synchronously.
        fetcher = self._fetcher
        if fetcher.tasks and not fetcher.closed:
            with contextlib.suppress(RuntimeError):  # the loop may be closed already
                fetcher.shutdown()

    def _unseen(self, items: Sequence[T]) -> list[T]:
        seen, key, kept = self._seen, self._key, []
        for item in items:
            k = key(item)
            if k is None:
                kept.append(item)
            elif k not in seen:
                seen.add(k)
                kept.append(item)
        return kept


class _Fetcher(Generic[T]):
    """Owns the page fetch tasks of one iteration and the pages they brought."""

    def __init__(self, fetch: Callable[[int], Awaitable[Page[T]]], plan: PagePlan, *,
                 ordered: bool, max_ahead: int, label: str) -> None:
        self.fetch = fetch
        self.plan = plan
        self.ordered = ordered
        self.max_ahead = max(1, max_ahead)
        self.label = label
        self.tasks: dict[asyncio.Future[tuple[int, Page[T]]], int] = {}  # fetch -> slot
        self.ready_by_slot: dict[int, Page[T]] = {}
        self.ready: deque[Page[T]] = deque()
        self.launched = 0
        self.next_slot = 0
        self.error: BaseException | None = None
        self.waiter: asyncio.Future[None] | None = None
        self.started = False
        self.closed = False
        self.pages_read = 0
        self.total: int | None = None

    async def next_page(self) -> Page[T] | None:
        """The next page for the consumer, or None when the list is done (or closed)."""
        while True:
            if self.error is not None:
                await self.fail()
            page = self._take_ready()
            if page is not None:
                self._fill()
                return page
            if self.closed:
                return None
            if not self.started:
                self.started = True
                self._fill()
                continue
            if not self.tasks:
                self._fill()
                if not self.tasks:
                    self._finish()
                    return None
            await self._wait()

    async def aclose(self) -> None:
        self.shutdown()
        pending = list(self.tasks)
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)

    async def fail(self) -> None:
        error, self.error = self.error, None
        await self.aclose()
        assert error is not None
        raise error

    def shutdown(self) -> None:
        self.closed = True
        self.ready.clear()
        self.ready_by_slot.clear()
        for task in list(self.tasks):
            task.cancel()

    async def _wait(self) -> None:
        waiter = asyncio.get_running_loop().create_future()
        self.waiter = waiter
        try:
            await waiter
        except BaseException:
            self.shutdown()
            raise
        finally:
            self.waiter = None

    def _wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _take_ready(self) -> Page[T] | None:
        if self.ordered:
            page = self.ready_by_slot.pop(self.next_slot, None)
            if page is not None:
                self.next_slot += 1
            return page
        return self.ready.popleft() if self.ready else None

    def _fill(self) -> None:
        """Launch pages while the plan has some and the read-ahead window has room."""
        plan = self.plan
        while not self.closed and self.error is None:
            if self.ordered:
                if self.launched - self.next_slot >= self.max_ahead:
                    return
            elif len(self.tasks) + len(self.ready) >= self.max_ahead:
                return
            page_no = plan.take()
            if page_no is None:
                return
            task = asyncio.ensure_future(self._fetch_page(page_no))
            self.tasks[task] = self.launched
            self.launched += 1
            task.add_done_callback(self._on_done)

    async def _fetch_page(self, page_no: int) -> tuple[int, Page[T]]:
        try:
            return page_no, await self.fetch(page_no)
        except (APIError, ResponseFormatError) as error:
            if self.plan.is_speculative(page_no):
                # A strict server may refuse a page past its end instead of answering it
                # empty: for a page read only to prove the end, that is the end.
                logger.debug("%s: page %d past the reported end refused (%s); done",
                             self.label, page_no, type(error).__name__)
                return page_no, Page.build((), page_no=page_no, page_size=self.plan.page_size,
                                           total=self.plan.latest_total,
                                           reported_total_pages=None)
            self._fail_fast(error)
            raise
        except Exception as error:
            # Stop the siblings now, inside this task: the slot this fetch just released may
            # already have woken a queued fetch, which must not get to send its request.
            self._fail_fast(error)
            raise

    def _on_done(self, task: asyncio.Future[tuple[int, Page[T]]]) -> None:
        slot = self.tasks.pop(task)
        if task.cancelled():
            return
        error = task.exception()
        if error is not None:
            self._fail_fast(error)
            return
        if self.closed:
            return
        page_no, page = task.result()
        self.pages_read += 1
        self.total = page.total
        self.plan.record(page_no, page.total, page.reported_total_pages, len(page.items))
        if self.ordered:
            self.ready_by_slot[slot] = page
        else:
            self.ready.append(page)
        self._fill()
        self._wake()

    def _fail_fast(self, error: BaseException) -> None:
        """The first error wins: keep it for the consumer, cancel every other fetch."""
        if self.error is None and not self.closed:
            self.error = error
            current = asyncio.current_task()
            for other in list(self.tasks):
                if other is not current:
                    other.cancel()
        self._wake()

    def _finish(self) -> None:
        self.closed = True
        if self.plan.unstable:
            logger.warning(
                "%s: the list kept changing during %d passes; records that moved in the "
                "last pass may be missing", self.label, self.plan.pass_no,
            )
        elif self.plan.pass_no > 1:
            logger.debug("%s: the list changed while it was read; re-read %d time(s)",
                         self.label, self.plan.pass_no - 1)
