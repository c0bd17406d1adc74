"""Which pages to read: ``PagePlan``, pure bookkeeping tested without I/O.

It reads page 1 (or ``start_page``), then plans ``max(totalPage, ceil(total / pageSize))``
pages, grows the plan when a later page reports a larger total or a page at the end comes back
full, and ends a pass at the first empty page.

Records shift between pages while a list changes under the reader: an insertion at the head
pushes records onto pages not read yet (seen twice: dedupe drops the copy), a removal pulls
records onto pages already read (missed). Reading pages out of order makes both happen. Every
page reports the total it saw; when the totals of a pass disagree, the data moved during the
pass, and the plan reads again from the last page that may have shifted (``D`` records before
the end of the prefix of pages that saw the first total, where ``D`` is the spread of the
totals), yielding only keys not yet seen, until a pass sees one total. Changes that keep the
total equal (one insertion and one removal) cannot be seen by any reader of this API.
"""

from __future__ import annotations

from collections.abc import Hashable

__all__ = ["DEFAULT_MAX_PASSES", "PagePlan"]

DEFAULT_MAX_PASSES = 5


class PagePlan:
    """Which page to read next; fed with what each page reported. No I/O."""

    def __init__(
        self, page_size: int, *, max_passes: int = DEFAULT_MAX_PASSES, start_page: int = 1
    ) -> None:
        self.page_size = page_size
        self.max_passes = max_passes
        self.start_page = start_page  # earlier pages: read only in a re-read (see _start_pass)
        self.pass_no = 1
        self.finished = False
        self.unstable = False  # gave up re-reading after max_passes while totals kept moving
        self._lo = start_page
        self._end: int | None = None  # last page of this pass, known once page `lo` answered
        self._stop: int | None = None  # last page before the first empty page of this pass
        self._next = start_page
        self._outstanding = 0
        self._totals: dict[int, int] = {}  # page -> total it reported, this pass
        self._min_total: int | None = None
        self._max_total: int | None = None
        self._reported_end = 0  # the most pages any answer said there are
        self.latest_total = 0  # the total of the latest answer
        self._prefix_pages = 0  # pass 1: pages 1..k that reported the first total
        self._prefix_total = 0
        self._spread_used = 0
        self._keys: dict[int, tuple[Hashable, ...]] = {}  # record keys of pages at the end
        self.repeated_at: int | None = None  # first page found repeating its predecessor

    @property
    def reread_from(self) -> int:
        """First page of the current pass (``start_page`` on the first pass; a re-read after
        records moved back across ``start_page`` starts before it)."""
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

    def wants_keys(self, page_no: int) -> bool:
        """Whether :meth:`record` needs the record keys of ``page_no``: pages from the last
        reported one on, to tell a new full page past the end from a repeated one."""
        return page_no >= self._reported_end

    def _planned_end(self, total: int, reported_pages: int | None) -> int:
        pages = max(reported_pages or 0, -(-total // self.page_size))
        # When the last page should be exactly full, read one page past it in the same round:
        # an empty page there proves the end without costing another round trip.
        if total > 0 and total % self.page_size == 0:
            pages += 1
        return pages

    def record(
        self,
        page_no: int,
        total: int,
        reported_pages: int | None,
        count: int,
        keys: tuple[Hashable, ...] | None = None,
    ) -> None:
        """What page ``page_no`` reported: the total it saw, its totalPage, its record count,
        and (when :meth:`wants_keys` said so) the keys of its records in order."""
        self._outstanding -= 1
        self._totals[page_no] = total
        self.latest_total = total
        self._reported_end = max(
            self._reported_end, reported_pages or 0, -(-total // self.page_size)
        )
        if keys is not None and count:
            self._keys[page_no] = keys
            count = self._unless_repeated(page_no, count)
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

    def _unless_repeated(self, page_no: int, count: int) -> int:
        """``count``, or 0 when this page past the end repeats the page before it; a page
        after it that repeats this one (it may have landed first) stops the plan here."""
        keys = self._keys[page_no]
        if page_no > self._reported_end and self._keys.get(page_no - 1) == keys:
            self._repeated(page_no)
            count = 0
        following = page_no + 1
        if following > self._reported_end and self._keys.get(following) == keys:
            self._repeated(following)
        for stale in [p for p in self._keys if p < min(page_no, self._reported_end) - 1]:
            del self._keys[stale]
        return count

    def _repeated(self, page_no: int) -> None:
        if self.repeated_at is None or page_no < self.repeated_at:
            self.repeated_at = page_no
        self._stop = page_no - 1 if self._stop is None else min(self._stop, page_no - 1)

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
            while (
                k < len(pages)
                and self._totals[pages[k]] == first
                and pages[k] == self.start_page + k
            ):
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
        before = (self.start_page - 1 + self._prefix_pages) * size  # records read in order
        lo = (before - spread) // size + 1
        if lo < self.start_page:
            # Records move back across ``start_page`` only when some were removed before
            # them: re-read before it only as far as the totals dropped (records that were
            # before it may then come too), else a list that grew would bring earlier pages.
            assert self._min_total is not None
            drop = max(0, self._prefix_total - self._min_total)
            lo = min(self.start_page, max(lo, (before - drop) // size + 1))
        self._lo = max(1, lo)
        assert self._max_total is not None
        self._end = max(self._lo, self._planned_end(self._max_total, None))
        self._stop = None
        self._next = self._lo
        self._totals = {}
        self._keys = {}
        self.pass_no += 1
