"""When to retry, and how long to wait: the retry policy and its pure helpers."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import attrs

from ._validation import require_positive_int, require_seconds

__all__ = ["RetryPolicy", "is_retryable_status", "parse_retry_after"]


def _seconds(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    require_seconds(attribute.name, value)


@attrs.frozen
class RetryPolicy:
    """How failed attempts are retried.

    HTTP 429, 5xx, connection errors and timeouts are retried; other 4xx answers and business
    errors are not. Waits grow exponentially with full jitter: before retry ``n`` (1-based)
    the wait is uniform in ``[0, min(max_backoff, initial_backoff * 2 ** (n - 1))]`` seconds,
    unless the server sent ``Retry-After``, which is honoured as given, up to
    ``max_retry_after``: a server asking for a longer pause makes the call fail at once with
    :class:`RateLimitError` (its ``retry_after`` says how long the server asked for).

    Attributes:
        max_attempts: attempts in all, counting the first try (1 disables retries).
        initial_backoff: seconds (finite, > 0); the cap of the first wait.
        max_backoff: seconds (finite, > 0); no computed wait is longer.
        max_retry_after: seconds (finite, > 0); the longest ``Retry-After`` pause honoured.
    """

    max_attempts: int = attrs.field(default=5)
    initial_backoff: float = attrs.field(default=0.5, validator=_seconds)
    max_backoff: float = attrs.field(default=30.0, validator=_seconds)
    max_retry_after: float = attrs.field(default=60.0, validator=_seconds)

    @max_attempts.validator
    def _check_attempts(self, _: attrs.Attribute[int], value: int) -> None:
        require_positive_int("max_attempts", value)

    def backoff(self, retry_number: int, rng: random.Random | None = None) -> float:
        """Seconds to wait before retry ``retry_number`` (1 for the first retry)."""
        cap = min(self.max_backoff, self.initial_backoff * 2 ** min(retry_number - 1, 62))
        return (rng or random).uniform(0.0, cap)


def is_retryable_status(status: int) -> bool:
    """HTTP 429 and every 5xx are worth another try."""
    return status == 429 or 500 <= status <= 599


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP-date).

    None if absent or unreadable; never negative; ``inf`` for a pause too long to represent
    (``inf`` itself, ``1e999``, a date in year 9999 or past it).
    """
    if not value:
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        reference = datetime.now(UTC).timestamp() if now is None else now
        seconds = when.timestamp() - reference
    if math.isnan(seconds):
        return None
    return max(0.0, seconds)
