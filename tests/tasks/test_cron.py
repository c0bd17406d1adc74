"""The schedules' cron rules (``tasks/_cron``): what is accepted, and which minute is due."""

from __future__ import annotations

import datetime as dt
import re

import pytest

pytest.importorskip("taskiq_redis", reason="needs the [workers] extra")

from yeastar_csss_async.tasks._cron import check_cron, floor_minute, latest_due

UTC = dt.UTC


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_check_cron_normalises_the_spaces_between_fields() -> None:
    assert check_cron("  */15   *\t* * 1-5 ") == "*/15 * * * 1-5"


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ("* * * *", "expected 5 fields"),
        ("* * * * * *", "expected 5 fields"),
        ("60 * * * *", "minute field: 60 is out of range 0-59"),
        ("* 24 * * *", "hour field"),
        ("* * 0 * *", "day of month field: 0 is out of range 1-31"),
        ("* * * 13 *", "month field"),
        ("* * * * 7", "day of week field: 7 is out of range 0-6"),
        ("*/0 * * * *", "the step"),
        ("5/15 * * * *", "a step needs * or a range"),
        ("10-5 * * * *", "ends before it starts"),
        ("* * * * mon", "is not *, N, A-B"),
        ("@hourly", "expected 5 fields"),
        ("1,,2 * * * *", "is not *, N, A-B"),
    ],
)
def test_check_cron_names_the_wrong_field(rule: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        check_cron(rule)


def test_check_cron_refuses_what_is_not_a_string() -> None:
    with pytest.raises(ValueError, match="as a string"):
        check_cron(15)


@pytest.mark.parametrize(
    ("rule", "after", "upto", "due"),
    [
        ("*/15 * * * *", "2026-12-01T12:00:00", "2026-12-01T12:14:59", None),
        ("*/15 * * * *", "2026-12-01T11:59:59", "2026-12-01T12:14:59", "2026-12-01T12:00:00"),
        ("*/15 * * * *", "2026-12-01T11:00:00", "2026-12-01T12:31:10", "2026-12-01T12:30:00"),
        ("0 3 * * *", "2026-12-01T02:00:00", "2026-12-01T04:00:00", "2026-12-01T03:00:00"),
        # 2026-12-06 is a Sunday (0); both day fields restricted: either matches
        ("0 0 * * 0", "2026-12-05T00:00:00", "2026-12-06T00:00:00", "2026-12-06T00:00:00"),
        ("0 0 1 * 0", "2026-11-30T23:00:00", "2026-12-01T00:00:00", "2026-12-01T00:00:00"),
        # steps on the day of month count from 1 (1, 3, 5, ...)
        ("0 0 */2 * *", "2026-12-01T23:00:00", "2026-12-02T01:00:00", None),
    ],
)
def test_latest_due_is_the_latest_matching_minute_in_the_window(
    rule: str, after: str, upto: str, due: str | None
) -> None:
    found = latest_due(check_cron(rule), at(after), at(upto))
    assert found == (None if due is None else at(due))


def test_latest_due_reads_the_rule_in_utc_whatever_the_time_zone_given() -> None:
    paris = dt.timezone(dt.timedelta(hours=1))
    upto = dt.datetime(2026, 12, 1, 4, 0, 30, tzinfo=paris)  # 03:00:30 UTC
    assert latest_due("0 3 * * *", upto - dt.timedelta(minutes=5), upto) == at(
        "2026-12-01T03:00:00"
    )
    with pytest.raises(ValueError, match="timezone-aware"):
        floor_minute(dt.datetime(2026, 12, 1))
