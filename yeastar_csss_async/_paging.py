"""Reading a paged list concurrently: ``PageIterator`` (records) and ``PageStream`` (pages).

Which pages to read is decided by :class:`~._page_plan.PagePlan` (pure, no I/O); the fetch
tasks are owned by :class:`~._fetcher.PageFetcher` (one task per page in flight, no task
group, so nothing is ever yielded from inside one, PEP 789). The iterator hands records out in
page order (``ordered=True``) or as pages land, drops the ones already yielded (``dedupe``),
stops at ``limit``, surfaces the first error at the consumer's next step, and cancels every
fetch as soon as the consumer leaves (``break`` in a block, exception, cancellation,
``aclose()``).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable, Iterator, Sequence
from types import TracebackType
from typing import Generic, TypeVar

import attrs

from ._fetcher import PageFetcher
from ._keyset import SeenKeys
from ._page_plan import DEFAULT_MAX_PASSES, PagePlan
from .models import Page

__all__ = ["PageIterator", "PageStream"]

T = TypeVar("T")


class _PageReader(Generic[T]):
    """What the consumer of one iteration reads through, as records or as pages: the
    fetcher, the keys already handed out (``dedupe``), the records the ``limit`` still
    allows, and the one-consumer rule. :class:`PageIterator` and :class:`PageStream` are
    views of it."""

    __slots__ = ("_mode", "_remaining", "_seen", "_waiting", "dedupe", "fetcher", "key")

    def __init__(
        self,
        fetcher: PageFetcher[T],
        key: Callable[[T], Hashable | None],
        *,
        dedupe: bool,
        limit: int | None,
    ) -> None:
        self.fetcher = fetcher
        self.key = key
        self.dedupe = dedupe
        self._seen = SeenKeys()
        self._waiting = False  # a consumer is suspended in a read
        self._remaining = limit  # records still to hand out, None for no limit
        self._mode: str | None = None  # "records" or "pages", fixed by the first read

    def choose(self, mode: str, *, first: bool = False) -> None:
        """Fix how this iteration is read: RuntimeError if it is read the other way (with
        ``first``: if it is read at all)."""
        if first and self._mode is not None:
            raise RuntimeError(f"this PageIterator is already read as {self._mode}")
        if self._mode != mode:
            if self._mode is not None:
                raise RuntimeError(
                    f"this PageIterator is already read as {self._mode}; "
                    f"make another one to read it as {mode}"
                )
            self._mode = mode

    @contextlib.contextmanager
    def reading(self, mode: str) -> Iterator[None]:
        """One consumer's read: RuntimeError if another task is inside one already."""
        if self._waiting:
            raise RuntimeError(
                "anext(): this PageIterator is already being read by another "
                "task; one iterator has one consumer"
            )
        self.choose(mode)
        self._waiting = True
        try:
            yield
        finally:
            self._waiting = False

    async def next_page(self) -> tuple[Page[T], Sequence[T]] | None:
        """The next page and the records of it to hand out: only new ones (``dedupe``), no
        more than the limit allows. None when the list is done; once the limit is reached,
        every fetch is stopped and waited for."""
        fetcher = self.fetcher
        if self._remaining == 0:
            await fetcher.aclose()
            return None
        page = await fetcher.next_page()
        if page is None:
            return None
        items = self._unseen(page.items) if self.dedupe else page.items
        remaining = self._remaining
        if remaining is not None:
            if len(items) >= remaining:
                items = items[:remaining]
                fetcher.shutdown()  # nothing past this page is wanted: stop now
            remaining -= len(items)
            self._remaining = fetcher.wanted = remaining
        fetcher.refill()
        return page, items

    def _unseen(self, items: Sequence[T]) -> Sequence[T]:
        """The items whose key was not yielded before (items without a key always pass)."""
        return self._seen.keep_new(items, list(map(self.key, items)))


class PageIterator(AsyncIterator[T], Generic[T]):
    """Streams the records of a paged list, fetching pages concurrently.

    Use it with ``async for``. To stop early, use ``async with client.iter_orders() as
    orders:`` or ``contextlib.aclosing(...)``: leaving the block cancels every fetch and waits
    for them. An exception or a cancellation in the loop cancels them too; an iterator merely
    dropped after ``break`` is cancelled when it is garbage-collected (a safety net only: while
    a reference to it lives, its read-ahead goes on until the window is full).

    One iterator is read by one task: a second ``__anext__`` while one waits raises
    RuntimeError. ``aclose()`` from another task releases a consumer waiting in ``__anext__``
    at once (it then ends as if the list were done).

    ``limit`` stops after that many records (after de-duplication): the fetches still in
    flight are cancelled as soon as the page that completes it arrives, and no page past what
    it needs is read ahead. :meth:`iter_pages` reads the same list a page at a time instead.
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
        read_ahead: int | None = None,
        start_page: int = 1,
        limit: int | None = None,
    ) -> None:
        plan = PagePlan(page_size, max_passes=max_passes, start_page=start_page)
        # The fetch tasks reference only the fetcher, never this object, so dropping the
        # iterator (``break``) really drops it, and __del__ cancels the fetches at once.
        self._fetcher = PageFetcher(
            fetch,
            plan,
            ordered=ordered,
            max_ahead=max_ahead,
            label=label,
            key=key,
            read_ahead=read_ahead,
            wanted=limit,
        )
        self._reader = _PageReader(self._fetcher, key, dedupe=dedupe, limit=limit)
        self._items: Sequence[T] = ()
        self._pos = 0

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
        return (
            f"PageIterator({fetcher.label}, pages_read={fetcher.pages_read}, "
            f"in_flight={len(fetcher.tasks)}, closed={fetcher.closed})"
        )

    def __aiter__(self) -> PageIterator[T]:
        return self

    async def __aenter__(self) -> PageIterator[T]:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def __anext__(self) -> T:
        if self._pos < len(self._items) and self._fetcher.error is None:  # no await: no race
            item = self._items[self._pos]
            self._pos += 1
            return item
        with self._reader.reading("records"):
            return await self._next_from_pages()

    async def _next_from_pages(self) -> T:
        fetcher = self._fetcher
        while True:
            if fetcher.error is not None:
                self._items = ()
                await fetcher.fail()
            if self._pos < len(self._items):
                item = self._items[self._pos]
                self._pos += 1
                return item
            taken = await self._reader.next_page()
            if taken is None:
                self._items = ()
                raise StopAsyncIteration
            self._items = taken[1]
            self._pos = 0

    def iter_pages(self) -> PageStream[T]:
        """The same list, a :class:`~yeastar_csss_async.Page` at a time (with ``page_no``,
        ``total`` and ``request_id``), to commit page by page. Each page holds only records
        not yielded before (with ``dedupe``), so a page may be empty; the order, read-ahead
        and ``limit`` are this iterator's. Read it instead of this iterator, not beside it."""
        self._reader.choose("pages", first=True)
        return PageStream(self._reader)

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


class PageStream(AsyncIterator[Page[T]], Generic[T]):
    """The pages of a list (see :meth:`PageIterator.iter_pages`): ``async for page in ...``.

    Stopping early, cancellation, errors and the one-consumer rule work as for
    :class:`PageIterator`: use ``async with`` (or ``contextlib.aclosing``) to stop early.
    """

    def __init__(self, reader: _PageReader[T]) -> None:
        self._reader = reader

    @property
    def pages_read(self) -> int:
        """Pages answered so far (re-read pages included)."""
        return self._reader.fetcher.pages_read

    @property
    def total(self) -> int | None:
        """The total the latest page reported, None before the first page."""
        return self._reader.fetcher.total

    def __repr__(self) -> str:
        fetcher = self._reader.fetcher
        return (
            f"PageStream(PageIterator({fetcher.label}, pages_read={fetcher.pages_read}, "
            f"in_flight={len(fetcher.tasks)}, closed={fetcher.closed}))"
        )

    def __aiter__(self) -> PageStream[T]:
        return self

    async def __aenter__(self) -> PageStream[T]:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def __anext__(self) -> Page[T]:
        with self._reader.reading("pages"):
            taken = await self._reader.next_page()  # raises the first error of any fetch
        if taken is None:
            raise StopAsyncIteration
        page, items = taken
        return page if items is page.items else attrs.evolve(page, items=items)

    async def aclose(self) -> None:
        """Stop: cancel every fetch still in flight and wait until they are gone."""
        await self._reader.fetcher.aclose()
