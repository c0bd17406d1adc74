"""Poll the order list every N seconds and report the orders that are new, changed or gone.

    python examples/periodic_worker.py --sandbox --interval 5
    YEASTAR_CLIENT_ID=... YEASTAR_CLIENT_SECRET=... python examples/periodic_worker.py

With ``--sandbox`` the embedded sandbox gets a new order, a changed one and loses one between
polls, so there is something to report. ``--iterations N`` stops after N polls.

What it shows:

* one client for the worker's whole life (one token, reused and refreshed by the library);
* reading a list a page at a time (``iter_order_pages``), the way a worker that stores what
  it reads commits page by page: a page's records are applied together;
* what the worker may conclude: "new" and "changed" from each page, "gone" only after a
  complete pass (the library re-reads pages that shifted while the list changed, so a
  complete pass has every order exactly once);
* a clean stop on SIGINT or SIGTERM: the poll under way stops at the next page boundary,
  the fetches still in flight are cancelled and awaited, and the process exits 0;
* a failed poll (the portal down after the library's retries) is reported and tried again
  at the next interval; rejected credentials stop the worker, as waiting will not fix them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field

from yeastar_csss_async import (
    AuthenticationError,
    ConfigurationError,
    Order,
    YeastarCSSSError,
    YeastarPartnerClient,
)
from yeastar_csss_async.sandbox import (
    SANDBOX_CLIENT_ID,
    SANDBOX_CLIENT_SECRET,
    Sandbox,
    SandboxConfig,
)

log = logging.getLogger("periodic_worker")


@dataclass
class PollReport:
    """What one complete pass over the orders found, compared with the pass before."""

    poll_no: int
    total: int
    new: list[Order] = field(default_factory=list)
    changed: list[Order] = field(default_factory=list)
    gone: list[Order] = field(default_factory=list)


class OrderTracker:
    """What the worker knows: the latest version of every order, by id (in memory here;
    a real worker keeps it in its database)."""

    def __init__(self) -> None:
        self.known: dict[str, Order] = {}
        self.polls = 0

    async def poll(
        self, client: YeastarPartnerClient, stop: asyncio.Event, *, page_size: int = 100
    ) -> PollReport | None:
        """Read every order once and apply it; None if ``stop`` was set during the pass."""
        report = PollReport(poll_no=self.polls + 1, total=0)
        seen: set[str] = set()
        # `async with`: leaving early (stop, an error, a cancellation) cancels the fetches
        # still in flight and waits for them.
        async with client.iter_order_pages(page_size=page_size) as pages:
            async for page in pages:
                self.apply(page.items, report)  # one page: one commit in a real worker
                seen.update(order.id for order in page.items)
                if stop.is_set():
                    return None  # the pages applied so far stay applied
        # Only a complete pass can tell which orders are gone.
        report.gone = [self.known.pop(key) for key in sorted(self.known.keys() - seen)]
        report.total = len(seen)
        self.polls += 1
        return report

    def apply(self, orders: Sequence[Order], report: PollReport) -> None:
        for order in orders:
            before = self.known.get(order.id)
            if before is None:
                report.new.append(order)
            elif before != order:  # frozen attrs models compare field by field
                report.changed.append(order)
            self.known[order.id] = order


def print_report(report: PollReport) -> None:
    print(
        f"poll {report.poll_no}: {report.total} orders, {len(report.new)} new, "
        f"{len(report.changed)} changed, {len(report.gone)} gone",
        flush=True,
    )
    if report.poll_no == 1:
        return  # the first poll finds everything "new": no need to list it
    for kind, orders in (("new", report.new), ("changed", report.changed), ("gone", report.gone)):
        for order in orders:
            print(
                f"  {kind:8} {order.id} {order.order_no} {order.order_status} "
                f"{order.total_amount} {order.currency_code}",
                flush=True,
            )


async def run_worker(
    client: YeastarPartnerClient,
    *,
    interval: float,
    iterations: int | None = None,
    stop: asyncio.Event | None = None,
    on_report: Callable[[PollReport], None] = print_report,
) -> int:
    """Poll every ``interval`` seconds until ``stop`` is set (or ``iterations`` polls,
    failed ones included, are done); return the number of complete polls."""
    stop = stop or asyncio.Event()
    tracker = OrderTracker()
    attempts = 0
    while not stop.is_set() and (iterations is None or attempts < iterations):
        attempts += 1
        try:
            report = await tracker.poll(client, stop)
        except AuthenticationError:
            raise  # wrong or revoked credentials: waiting will not fix them
        except YeastarCSSSError as error:
            # The library retried already (5xx, 429, timeouts); try again next interval.
            log.warning("poll failed, next try in %g s: %s", interval, error)
        else:
            if report is not None:
                on_report(report)
        if iterations is not None and attempts >= iterations:
            break
        # Sleep until the next poll, or until a signal sets `stop`.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval)
    return tracker.polls


@contextlib.asynccontextmanager
async def worker_client(
    sandbox: bool,
) -> AsyncIterator[tuple[YeastarPartnerClient, Callable[[PollReport], None]]]:
    """The client to poll with, and what to do with each report."""
    if not sandbox:
        async with YeastarPartnerClient.from_env() as client:
            yield client, print_report
        return
    async with (
        Sandbox(SandboxConfig(orders=50)) as server,
        YeastarPartnerClient(
            SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET, base_url=server.base_url
        ) as client,
    ):

        def report_and_change_the_sandbox(report: PollReport) -> None:
            print_report(report)
            # Something for the next poll to find: a new order, a changed one, a gone one.
            orders = server.orders  # a list the sandbox serves, newest first
            orders.add()
            oldest = orders[len(orders) - 1]
            status = "refunded" if oldest["orderStatus"] != "refunded" else "succeed"
            orders.change(oldest["id"], order_status=status)
            orders.remove(orders[len(orders) // 2]["id"])

        yield client, report_and_change_the_sandbox


async def main_async(args: argparse.Namespace) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with worker_client(args.sandbox) as (client, on_report):
        polls = await run_worker(
            client,
            interval=args.interval,
            iterations=args.iterations,
            stop=stop,
            on_report=on_report,
        )
    print(f"stopped after {polls} complete poll(s)", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Report new, changed and gone orders.")
    parser.add_argument("--interval", type=float, default=60.0, metavar="SECONDS")
    parser.add_argument(
        "--iterations",
        type=int,
        default=None,
        metavar="N",
        help="stop after N polls (default: run until SIGINT/SIGTERM)",
    )
    parser.add_argument(
        "--sandbox",
        action="store_true",
        help="poll the embedded sandbox, which changes between polls",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        return asyncio.run(main_async(args))
    except ConfigurationError as error:  # from_env(): a variable is missing
        print(f"periodic_worker: {error}", file=sys.stderr)
        return 2
    except YeastarCSSSError as error:  # credentials rejected: one line, no traceback
        print(f"periodic_worker: {type(error).__name__}: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
