"""The options and help of ``result`` and ``status``, the commands that look at a fleet
(``--redis`` and ``--queue`` are added by the parser, as for ``enqueue``)."""

from __future__ import annotations

import argparse
import math

__all__ = ["DEAD_AFTER", "OPS_HELP", "add_result", "add_status"]

DEAD_AFTER = 120.0
"""Seconds of idleness after which ``status`` counts a taken job as held by a dead worker:
the job and the consumer (worker) that took it have both been idle that long. A live worker
touches its consumer every few seconds while it has room for jobs (taskiq-redis blocks on
XREADGROUP for 2 s at a time), and the contract gives a dead worker's job 2 minutes."""

RESULT_DESCRIPTION = """\
Print what became of a job queued with yeastar-csss enqueue (read from the workers' result
backend in Redis, where results stay for 7 days):

  orders: 600 seen, 100 new, 12 changed, 488 unchanged, 50 gone in 3.1s   (a sync; exit 0)
  orders: 600 records -> /exports/acme-orders.jsonl                      (an export; exit 0)
  error: ConfigurationError: account 'acme': ...        (the job failed; stderr, exit 1)
  pending                       (no result yet: queued, running or unknown id; exit 75)
"""

STATUS_DESCRIPTION = f"""\
Print the job queue and, per account the coordinator has keys for, what the fleet shares;
one line per item, never a token or a password:

  queue yeastar-csss:jobs waiting=3 running=1 dead=0 dead_after=120s
  consumer 5c1f... pending=1 idle=0.4s
  account yeastar-3f2a... slots=2 pause=0.0s token_age=1520s token_ttl=5560s

waiting: jobs no worker has taken yet. running: jobs taken and not acknowledged. dead: taken
jobs whose worker looks dead (the job and its consumer idle over --dead-after seconds,
default {DEAD_AFTER:g}); another worker takes them over once its reclaim time has passed.
slots: the account's concurrency leases in use now. pause: seconds left of a 429 pause.
token_age: seconds since the token was stored (? when stored by an older release);
token_ttl: seconds until it leaves Redis (token=none when there is none).
"""

OPS_HELP: dict[str, dict[str, object]] = {
    "result": {
        "help": "print a queued job's summary line, its error, or pending",
        "description": RESULT_DESCRIPTION,
        "formatter_class": argparse.RawDescriptionHelpFormatter,
    },
    "status": {
        "help": "print the job queue and each account's slots, pause and token age",
        "description": STATUS_DESCRIPTION,
        "formatter_class": argparse.RawDescriptionHelpFormatter,
    },
}


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 <= value < math.inf:
        raise argparse.ArgumentTypeError(f"expected seconds >= 0, got {text[:80]!r}")
    return value


def add_result(result: argparse.ArgumentParser) -> None:
    """``yeastar-csss result TASK_ID``."""
    result.add_argument("task_id", metavar="TASK_ID", help="the id enqueue printed")


def add_status(status: argparse.ArgumentParser) -> None:
    """``yeastar-csss status``."""
    status.add_argument(
        "--namespace",
        default="yeastar-csss",
        metavar="NAME",
        help="the workers' --namespace (default yeastar-csss)",
    )
    status.add_argument(
        "--dead-after",
        type=_seconds,
        default=DEAD_AFTER,
        metavar="SECONDS",
        help=f"idle time after which a taken job counts as held by a dead worker "
        f"(default {DEAD_AFTER:g})",
    )
    status.add_argument("--json", action="store_true", help="one JSON object instead of lines")
