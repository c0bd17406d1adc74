"""The fetch tasks of one iteration: ``PageFetcher`` launches, owns and cancels them.

It asks :class:`~._page_plan.PagePlan` which page to read next, keeps at most ``max_ahead``
fetches in flight and at most ``read_ahead`` records (and, with a ``limit``, no more than the
records still ``wanted``) fetched ahead of the consumer, pages in flight counting as full;
hands pages over in page order (``ordered``) or as they land; keeps the first error and
cancels every other fetch at once.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

from ._errors import APIError
from ._log import logger
from ._page_plan import PagePlan
from .models import Page

__all__ = ["NO_SUCH_PAGE_STATUSES", "PageFetcher"]

T = TypeVar("T")

NO_SUCH_PAGE_STATUSES = frozenset({400, 404, 422})
"""Answers that say "no such page": for a page past every reported end, they end the list."""


class PageFetcher(Generic[T]):
    """Owns the page fetch tasks of one iteration and the pages they brought."""

    def __init__(
        self,
        fetch: Callable[[int], Awaitable[Page[T]]],
        plan: PagePlan,
        *,
        ordered: bool,
        max_ahead: int,
        label: str,
        key: Callable[[T], Hashable | None],
        read_ahead: int | None,
        wanted: int | None = None,
    ) -> None:
        self.fetch = fetch
        self.key = key
        self.plan = plan
        self.ordered = ordered
        self.max_ahead = max(1, max_ahead)
        self.read_ahead = self.max_ahead * plan.page_size if read_ahead is None else read_ahead
        self.buffered = 0  # records in pages that landed and wait for the consumer
        self.wanted = wanted  # records the consumer still takes (a limit), None: all
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
                return page  # the consumer calls refill() once it has counted the page
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

    def refill(self) -> None:
        """Launch what the window allows now that the consumer took a page (and updated
        :attr:`wanted`)."""
        self._fill()

    async def aclose(self) -> None:
        self.shutdown()
        pending = list(self.tasks)
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
            # Their done callbacks may not have run yet (Python 3.12 runs them after the
            # waiter resumes): every fetch has ended, so none is in flight any more.
            for task in pending:
                self.tasks.pop(task, None)

    async def fail(self) -> None:
        error, self.error = self.error, None
        await self.aclose()
        assert error is not None
        raise error

    def shutdown(self) -> None:
        """Stop: drop what is buffered, cancel every fetch, release a waiting consumer."""
        self.closed = True
        self.ready.clear()
        self.ready_by_slot.clear()
        self.buffered = 0
        for task in list(self.tasks):
            task.cancel()
        self._wake()

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
        else:
            page = self.ready.popleft() if self.ready else None
        if page is not None:
            self.buffered -= len(page.items)
        return page

    def _fill(self) -> None:
        """Launch pages while the plan has some, fewer than ``max_ahead`` fetches are in
        flight, and the records ahead of the consumer (landed, plus a full page per fetch in
        flight) stay within ``read_ahead``. In page order, a page waiting in a retry backoff
        thus no longer idles the others: they go on until the record budget is used."""
        plan = self.plan
        size = plan.page_size
        while not self.closed and self.error is None:
            in_flight = len(self.tasks)
            if in_flight >= self.max_ahead:
                return
            ahead = self.buffered + (in_flight + 1) * size
            if ahead > self.read_ahead and (in_flight or self.buffered):
                return
            if self.wanted is not None and self.buffered + in_flight * size >= self.wanted:
                return  # what landed or is coming covers the limit (unless dedupe drops some)
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
        except APIError as error:
            if error.status in NO_SUCH_PAGE_STATUSES and self.plan.is_speculative(page_no):
                # A strict server may answer "no such page" (400/404/422) for a page past its
                # end instead of an empty page: for a page read only to prove the end, that
                # is the end. Anything else there (5xx, 401, 429, a bad body) is an error.
                logger.debug(
                    "%s: page %d past the reported end answered HTTP %s; done",
                    self.label,
                    page_no,
                    error.status,
                )
                return page_no, Page.build(
                    (),
                    page_no=page_no,
                    page_size=self.plan.page_size,
                    total=self.plan.latest_total,
                    reported_total_pages=None,
                )
            self._fail_fast(error)
            raise
        except Exception as error:
            # Stop the siblings now, inside this task: the slot this fetch just released may
            # already have woken a queued fetch, which must not get to send its request.
            self._fail_fast(error)
            raise

    def _on_done(self, task: asyncio.Future[tuple[int, Page[T]]]) -> None:
        slot = self.tasks.pop(task, None)
        if slot is None:  # already forgotten by aclose(), which waited for it
            return
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
        keys = tuple(map(self.key, page.items)) if self.plan.wants_keys(page_no) else None
        if keys is not None and None in keys:
            keys = None  # records without a key cannot be told apart: never call them repeats
        self.plan.record(page_no, page.total, page.reported_total_pages, len(page.items), keys)
        if self.ordered:
            self.ready_by_slot[slot] = page
        else:
            self.ready.append(page)
        self.buffered += len(page.items)
        self._fill()
        if not self.ordered or slot == self.next_slot or not self.tasks:
            self._wake()  # in page order, only the page the consumer waits for wakes it

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
        self._wake()
        if self.plan.repeated_at is not None:
            logger.warning(
                "%s: page %d past the reported end repeats page %d (the server seems to "
                "ignore the page number); the list ends there",
                self.label,
                self.plan.repeated_at,
                self.plan.repeated_at - 1,
            )
        if self.plan.unstable:
            logger.warning(
                "%s: the list kept changing during %d passes; records that moved in the "
                "last pass may be missing",
                self.label,
                self.plan.pass_no,
            )
        if self.plan.pass_no > 1 and not self.plan.unstable:
            logger.debug(
                "%s: the list changed while it was read; re-read %d time(s)",
                self.label,
                self.plan.pass_no - 1,
            )
