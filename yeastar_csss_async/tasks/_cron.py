"""Cron rules of the schedules: checked here (pycron silently never matches a rule it cannot
read), matched by :mod:`pycron`, always in UTC.

Standard 5-field rules: minute (0-59), hour (0-23), day of month (1-31), month (1-12) and day
of week (0-6, 0 = Sunday); each field ``*``, a number, ``A-B``, ``*/STEP`` or ``A-B/STEP``, or a
comma list of them. When both day fields are restricted, a day matching either is due (as in
cron).
"""

from __future__ import annotations

import datetime as dt
import re

import pycron  # type: ignore[import-untyped]  # no stubs, no py.typed

__all__ = ["check_cron", "floor_minute", "latest_due"]

_FIELDS = (
    ("minute", 0, 59),
    ("hour", 0, 23),
    ("day of month", 1, 31),
    ("month", 1, 12),
    ("day of week", 0, 6),
)
_ITEM = re.compile(r"(?:(\*)|(\d+)(?:-(\d+))?)(?:/(\d+))?\Z")
_MINUTE = dt.timedelta(minutes=1)


def check_cron(text: object) -> str:
    """``text`` with its fields separated by single spaces, if it is a rule of the grammar
    above; otherwise ValueError saying which field is wrong."""
    if not isinstance(text, str):
        raise ValueError("expected a cron rule as a string, e.g. '*/15 * * * *'")
    fields = text.split()
    if len(fields) != len(_FIELDS):
        raise ValueError(
            f"expected 5 fields (minute hour day-of-month month day-of-week), "
            f"got {len(fields)} in {text[:80]!r}"
        )
    for field, (name, low, high) in zip(fields, _FIELDS, strict=True):
        for item in field.split(","):
            _check_item(item, name, low, high)
    return " ".join(fields)


def _check_item(item: str, name: str, low: int, high: int) -> None:
    found = _ITEM.match(item)
    if found is None:
        raise ValueError(
            f"{name} field: {item[:80]!r} is not *, N, A-B, */STEP or A-B/STEP "
            f"(numbers {low}-{high})"
        )
    star, start, end, step = found.groups()
    if star is None and end is None and step is not None:
        raise ValueError(f"{name} field: {item!r}: a step needs * or a range before it")
    for value in (start, end):
        if value is not None and not low <= int(value) <= high:
            raise ValueError(f"{name} field: {value} is out of range {low}-{high}")
    if start is not None and end is not None and int(start) > int(end):
        raise ValueError(f"{name} field: the range {item!r} ends before it starts")
    if step is not None and not 1 <= int(step) <= high:
        raise ValueError(f"{name} field: the step in {item!r} must be 1-{high}")


def floor_minute(when: dt.datetime) -> dt.datetime:
    """The start of ``when``'s minute, in UTC (``when`` must be timezone-aware)."""
    if when.tzinfo is None:
        raise ValueError("expected a timezone-aware time")
    return when.astimezone(dt.UTC).replace(second=0, microsecond=0)


def latest_due(cron: str, after: dt.datetime, upto: dt.datetime) -> dt.datetime | None:
    """The latest minute start ``m`` with ``after < m <= upto`` that the (checked) rule
    ``cron`` matches, in UTC; None if there is none."""
    minute = floor_minute(upto)
    while minute > after:
        # pycron compares the fields of the time given: hand it UTC.
        if bool(pycron.is_now(cron, minute)):
            return minute
        minute -= _MINUTE
    return None
