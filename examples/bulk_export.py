"""Export every list, concurrently, each to its own JSON Lines file.

Orders, the products of every product line the account sees and, when CSSS credentials are
set, the CSSS package orders::

    python examples/bulk_export.py --sandbox --output-dir export/

    export YEASTAR_CLIENT_ID=... YEASTAR_CLIENT_SECRET=...
    export CSSS_ACCESS_CODE=... CSSS_SECRET=...       # optional
    python examples/bulk_export.py --output-dir export/

writes ``orders.jsonl``, ``products-<product id>.jsonl`` and ``package-orders.jsonl``, one
JSON object per line (:func:`to_jsonable`: snake_case keys, ISO 8601 times, money as strings
with their digits).

What it shows:

* many iterators sharing one client: all the lists are read at once, yet at most
  ``max_concurrency`` requests per client are in flight (the limit is per client, not per
  iterator);
* ``async with client.iter_orders() as orders:``: an iterator left early (an error in
  another export, Ctrl-C) cancels and awaits its own fetches;
* structured concurrency with ``asyncio.TaskGroup``: the first failure cancels the other
  exports, and a file appears under its name only once its list was read to the end
  (records go to ``NAME.jsonl.part``, renamed at the end, removed on failure);
* Ctrl-C or SIGTERM: every export stops, no ``.part`` file is left, exit code 130 or 143.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TypeVar

from yeastar_csss_async import (
    ConfigurationError,
    CSSSClient,
    PageIterator,
    YeastarCSSSError,
    YeastarPartnerClient,
    to_jsonable,
)
from yeastar_csss_async.sandbox import (
    SANDBOX_ACCESS_CODE,
    SANDBOX_CLIENT_ID,
    SANDBOX_CLIENT_SECRET,
    SANDBOX_SECRET,
    Sandbox,
    SandboxConfig,
)

T = TypeVar("T")

BATCH = 1000
"""Records written to the file at a time (in a worker thread, off the event loop)."""


async def export_all(
    yeastar: YeastarPartnerClient,
    csss: CSSSClient | None,
    output_dir: Path,
    *,
    page_size: int = 100,
) -> dict[str, int]:
    """Write every list to ``output_dir`` at once; return the records written per file."""
    lines = await yeastar.list_subscription_products()
    async with asyncio.TaskGroup() as group:
        # Each task owns one iterator and one file. If one fails, the group cancels the
        # others, waits for them, and raises the failure (in an ExceptionGroup).
        exports = {
            "orders.jsonl": group.create_task(
                export_list(yeastar.iter_orders(page_size=page_size), output_dir / "orders.jsonl")
            )
        }
        for line in lines:
            name = f"products-{line.product_id}.jsonl"
            exports[name] = group.create_task(
                export_list(
                    yeastar.iter_products(line.product_id, page_size=page_size), output_dir / name
                )
            )
        if csss is not None:
            exports["package-orders.jsonl"] = group.create_task(
                export_list(csss.iter_package_orders(), output_dir / "package-orders.jsonl")
            )
    return {name: task.result() for name, task in exports.items()}


async def export_list(records: PageIterator[T], path: Path) -> int:
    """Write ``records`` to ``path`` as JSON Lines; return how many were written.

    The file appears only complete: records go to ``path.jsonl.part``, renamed at the
    end. On any failure or cancellation the ``.part`` file is removed.
    """
    part = path.with_name(path.name + ".part")
    written = 0
    # Opened right here, not in a thread: a cancellation must not come between creating
    # the file and owning it (opening is quick; the writes below go to a thread).
    out = part.open("wb")
    try:
        async with records:  # leaving it, for whatever reason, stops every fetch
            batch: list[bytes] = []
            async for record in records:
                line = json.dumps(to_jsonable(record), ensure_ascii=False)
                batch.append(line.encode() + b"\n")
                if len(batch) == BATCH:
                    await asyncio.to_thread(out.writelines, batch)
                    written, batch = written + len(batch), []
            await asyncio.to_thread(out.writelines, batch)
            written += len(batch)
        await asyncio.to_thread(out.close)
        await asyncio.to_thread(part.replace, path)
    finally:
        # Runs on errors and on cancellation (a BaseException) alike. Closing waits for
        # a write still running in its thread; removing a renamed file does nothing.
        out.close()
        part.unlink(missing_ok=True)
    return written


@contextlib.asynccontextmanager
async def clients(
    args: argparse.Namespace,
) -> AsyncIterator[tuple[YeastarPartnerClient, CSSSClient | None]]:
    """The clients to export with: the sandbox's, or the ones the environment configures
    (``CSSSClient`` only when ``CSSS_ACCESS_CODE`` is set)."""
    async with contextlib.AsyncExitStack() as stack:
        if args.sandbox:
            sandbox = await stack.enter_async_context(
                Sandbox(SandboxConfig(latency=args.sandbox_latency))
            )
            yeastar = YeastarPartnerClient(
                SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET, base_url=sandbox.base_url
            )
            csss: CSSSClient | None = CSSSClient(
                SANDBOX_ACCESS_CODE, SANDBOX_SECRET, base_url=sandbox.base_url
            )
        else:
            yeastar = YeastarPartnerClient.from_env()
            csss = CSSSClient.from_env() if "CSSS_ACCESS_CODE" in os.environ else None
        stack.push_async_callback(yeastar.aclose)  # closed before the sandbox stops
        if csss is not None:
            stack.push_async_callback(csss.aclose)
        yield yeastar, csss


async def run(args: argparse.Namespace) -> None:
    # SIGTERM cancels the export like Ctrl-C does (asyncio.run handles Ctrl-C itself).
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    async with clients(args) as (yeastar, csss):
        args.output_dir.mkdir(parents=True, exist_ok=True)
        counts = await export_all(yeastar, csss, args.output_dir, page_size=args.page_size)
    for name, count in counts.items():
        print(f"{count:8d} records -> {args.output_dir / name}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Export every list to JSON Lines files.")
    parser.add_argument("--output-dir", type=Path, required=True)
    parser.add_argument("--page-size", type=int, default=100)
    parser.add_argument(
        "--sandbox",
        action="store_true",
        help="export the embedded sandbox's lists (no account needed)",
    )
    parser.add_argument(
        "--sandbox-latency",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="delay each sandbox answer (time to try Ctrl-C)",
    )
    args = parser.parse_args(argv)
    try:
        asyncio.run(run(args))
    except KeyboardInterrupt:
        print("interrupted; no partial file left", file=sys.stderr)
        return 130
    except asyncio.CancelledError:  # SIGTERM
        print("terminated; no partial file left", file=sys.stderr)
        return 143
    except ConfigurationError as error:  # from_env(): a variable is missing
        print(f"bulk_export: {error}", file=sys.stderr)
        return 2
    except (YeastarCSSSError, ExceptionGroup) as error:
        # A failed export comes in the TaskGroup's ExceptionGroup; one line each.
        failures = error.exceptions if isinstance(error, ExceptionGroup) else (error,)
        if not all(isinstance(failure, YeastarCSSSError) for failure in failures):
            raise  # a bug, not the API: keep the traceback
        for failure in failures:
            print(f"export failed: {type(failure).__name__}: {failure}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
