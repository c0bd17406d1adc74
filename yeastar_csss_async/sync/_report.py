"""What a sync run did: :class:`SyncReport`, also the rows of the run history."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import attrs

__all__ = ["RunStatus", "SyncReport"]

RunStatus = Literal["running", "complete", "failed"]


@attrs.frozen
class SyncReport:
    """One sync run of one list for one account (a row of ``sync_runs``).

    Attributes:
        run_id: the run's ``sync_runs.id``.
        account, list: whose data and which list (``orders``, ``products``,
            ``package-orders``).
        status: ``running``, ``complete`` or ``failed``.
        seen: records read; ``new`` + ``changed`` + ``unchanged`` == ``seen``.
        new: records not in the database before (or marked gone and back again).
        changed: records stored before whose field values differ (they were rewritten).
        unchanged: records stored before with the same values (only ``last_seen_at`` moved).
        gone: stored records this run did not see; only a complete run over the whole list
            sets them (a failed run, or one limited to some product lines' or CSSS filters'
            records, marks nothing gone outside what it covered).
        started_at, finished_at: aware UTC times; ``finished_at`` is None while running.
        scope: what the run covered when not the whole list (``product_id=13``), else None.
        error: why a failed run failed (one line), else None.
    """

    run_id: int
    account: str
    list: str
    status: RunStatus
    seen: int = 0
    new: int = 0
    changed: int = 0
    unchanged: int = 0
    gone: int = 0
    started_at: datetime | None = None
    finished_at: datetime | None = None
    scope: str | None = None
    error: str | None = None

    @property
    def seconds(self) -> float | None:
        """How long the run took, None while it runs."""
        if self.started_at is None or self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()

    def summary(self, database: str | None = None) -> str:
        """``orders: 600 seen, 100 new, 12 changed, 488 unchanged, 50 gone in 3.1s -> DB``."""
        text = (
            f"{self.list}: {self.seen} seen, {self.new} new, {self.changed} changed, "
            f"{self.unchanged} unchanged, {self.gone} gone"
        )
        if self.seconds is not None:
            text += f" in {self.seconds:.1f}s"
        if database is not None:
            text += f" -> {database}"
        return text
