"""PagePlan (``_page_plan``): which page to read next, pure bookkeeping without I/O."""

from __future__ import annotations

from yeastar_csss_async._page_plan import PagePlan


def test_plan_reads_page_one_alone_then_the_rest() -> None:
    plan = PagePlan(10)
    assert plan.take() == 1
    assert plan.take() is None  # nothing more until page 1 says how many there are
    plan.record(1, total=35, reported_pages=4, count=10)
    assert [plan.take() for _ in range(4)] == [2, 3, 4, None]


def test_plan_trusts_the_larger_of_total_pages_and_total() -> None:
    plan = PagePlan(5)
    plan.take()
    plan.record(1, total=117, reported_pages=1, count=5)  # seed 000: totalPage 1
    pages = []
    while (p := plan.take()) is not None:
        pages.append(p)
    assert pages == list(range(2, 25))


def test_plan_probes_one_page_past_an_exactly_full_last_page() -> None:
    plan = PagePlan(10)
    plan.take()
    plan.record(1, total=30, reported_pages=3, count=10)
    assert [plan.take() for _ in range(4)] == [2, 3, 4, None]


def test_plan_grows_when_a_later_page_reports_more() -> None:
    plan = PagePlan(10)
    plan.take()
    plan.record(1, total=25, reported_pages=3, count=10)
    assert [plan.take(), plan.take(), plan.take()] == [2, 3, None]
    plan.record(3, total=45, reported_pages=5, count=10)
    assert [plan.take(), plan.take(), plan.take()] == [4, 5, None]


def test_plan_ends_where_a_page_past_the_end_repeats_its_predecessor_in_any_order() -> None:
    plan = PagePlan(10)
    assert plan.take() == 1
    plan.record(1, total=20, reported_pages=2, count=10)
    assert [plan.take(), plan.take(), plan.take(), plan.take()] == [2, 3, None, None]
    same = tuple(str(n) for n in range(10))
    assert not plan.wants_keys(1)
    assert plan.wants_keys(3)
    plan.record(3, total=20, reported_pages=2, count=10, keys=same)  # lands first, full
    assert plan.take() == 4  # a full page past the end: the list may go on
    plan.record(2, total=20, reported_pages=2, count=10, keys=same)  # page 3 repeated it
    assert plan.take() is None
    plan.record(4, total=20, reported_pages=2, count=10, keys=same)
    assert plan.finished
    assert plan.repeated_at == 3


def test_plan_keeps_going_while_pages_past_the_end_bring_new_records() -> None:
    plan = PagePlan(10)
    plan.take()
    plan.record(1, total=20, reported_pages=2, count=10)
    for page in (2, 3, 4):
        assert plan.take() == page
        plan.record(
            page, total=20, reported_pages=2, count=10, keys=tuple(f"{page}-{n}" for n in range(10))
        )
    assert plan.take() == 5
    assert plan.repeated_at is None


def test_plan_ends_at_an_empty_page() -> None:
    plan = PagePlan(10)
    plan.take()
    plan.record(1, total=10**9, reported_pages=10**8, count=10)  # an absurd total
    taken = [plan.take() for _ in range(3)]
    assert taken == [2, 3, 4]
    plan.record(2, total=10**9, reported_pages=10**8, count=0)
    assert plan.take() is None  # nothing past an empty page
    plan.record(3, total=10**9, reported_pages=10**8, count=0)
    plan.record(4, total=10**9, reported_pages=10**8, count=0)
    assert plan.finished


def test_plan_with_an_empty_list_is_done_after_page_one() -> None:
    plan = PagePlan(10)
    plan.take()
    plan.record(1, total=0, reported_pages=0, count=0)
    assert plan.finished
    assert plan.take() is None


def test_plan_rereads_from_before_the_shift_when_totals_disagree() -> None:
    plan = PagePlan(10)
    plan.take()
    plan.record(1, total=48, reported_pages=5, count=10)
    assert [plan.take() for _ in range(5)] == [2, 3, 4, 5, None]
    plan.record(2, total=48, reported_pages=5, count=10)
    plan.record(3, total=48, reported_pages=5, count=10)
    plan.record(4, total=45, reported_pages=5, count=10)  # 3 removed before page 4 was read
    plan.record(5, total=45, reported_pages=5, count=5)
    finished = plan.finished  # a local: mypy would keep plan.finished narrowed to False
    assert not finished
    assert plan.pass_no == 2
    # pages 1..3 saw 48; 3 records may have slid from page 4 onto page 3
    assert plan.reread_from == 3
    assert [plan.take() for _ in range(4)] == [3, 4, 5, None]
    for page in (3, 4, 5):
        plan.record(page, total=45, reported_pages=5, count=10 if page < 5 else 5)
    assert plan.finished
    assert not plan.unstable


def test_plan_gives_up_after_max_passes_and_says_so() -> None:
    plan = PagePlan(10, max_passes=2)
    plan.take()
    plan.record(1, total=20, reported_pages=2, count=10)
    plan.take()
    plan.record(2, total=21, reported_pages=3, count=10)
    while (p := plan.take()) is not None:
        plan.record(p, total=22 + p, reported_pages=3, count=3)  # totals never settle
    assert plan.finished
    assert plan.unstable


def test_plan_from_a_start_page_reads_it_alone_then_the_rest_never_before() -> None:
    plan = PagePlan(10, start_page=3)
    assert plan.take() == 3
    assert plan.take() is None
    plan.record(3, total=60, reported_pages=6, count=10)
    assert [plan.take() for _ in range(5)] == [4, 5, 6, 7, None]  # 7 proves the end
    for page in (4, 5, 6, 7):
        plan.record(page, total=60, reported_pages=6, count=10 if page < 7 else 0)
    assert plan.finished
    assert plan.pass_no == 1


def test_plan_from_a_start_page_rereads_before_it_only_as_far_as_records_were_removed() -> None:
    shrunk = PagePlan(10, start_page=3)
    shrunk.take()
    shrunk.record(3, total=60, reported_pages=6, count=10)
    while (p := shrunk.take()) is not None:  # 15 removed at the head after page 3
        shrunk.record(p, total=45, reported_pages=5, count=10 if p < 5 else 5)
    # records of page 4 and on slid back by up to 15: onto page 2 (before the start page)
    assert shrunk.pass_no == 2
    assert shrunk.reread_from == 2
    grown = PagePlan(10, start_page=3)
    grown.take()
    grown.record(3, total=60, reported_pages=6, count=10)
    while (p := grown.take()) is not None:  # 15 added: records only moved forward
        grown.record(p, total=75, reported_pages=8, count=10 if p < 8 else 5)
    assert grown.pass_no == 2
    assert grown.reread_from == 3
