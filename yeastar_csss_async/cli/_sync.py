"""``yeastar-csss sync LIST``: keep a database in step with a vendor list (extra ``[sync]``)."""

from __future__ import annotations

import argparse
import contextlib
import sys
from typing import TYPE_CHECKING, Any

from .._base import BaseClient
from .._lists import ListSpec
from ._messages import say
from ._progress import Progress
from ._sources import check_scope_options, list_query, list_specs, open_clients, skipped_lists
from ._usage import UsageError

if TYPE_CHECKING:
    from ..sync import SyncReport, SyncStore

__all__ = ["run_sync"]

MISSING_EXTRA = "sync needs the [sync] extra: pip install 'yeastar-csss-async[sync]'"
EX_TEMPFAIL = 75
"""The exit code of a sync refused because another sync of its account and list is running
(sysexits.h: a temporary failure, try again later)."""


async def run_sync(args: argparse.Namespace) -> int:
    """Sync the list(s) ``args.kind`` into ``args.db`` for ``args.account``; one summary
    line per list (unless quiet)."""
    try:
        from ..sync import SyncError, SyncLockedError, SyncStore
    except ImportError:
        raise UsageError(MISSING_EXTRA) from None
    check_scope_options(args)
    if not args.account.strip():
        raise UsageError("--account must not be empty")
    specs = list_specs(args)
    try:
        store = SyncStore(args.db)
    except SyncError as error:  # not a database URL we can use: configuration
        raise UsageError(str(error)) from None
    async with contextlib.AsyncExitStack() as stack:
        clients = await open_clients(stack, args, specs)
        try:
            await stack.enter_async_context(store)
        except ImportError as error:  # the database's driver is missing: configuration
            raise UsageError(str(error)) from None
        for spec in specs:
            try:
                report = await _sync_list(spec, store, clients[spec.api.name], args)
            except SyncLockedError as error:  # the line main() prints for any error
                say(f"error: {type(error).__name__}: {error}")
                return EX_TEMPFAIL
            if not args.quiet:
                say(report.summary(store.display_url))
        if args.kind == "all" and not args.quiet:
            for skipped, api in skipped_lists(specs):
                say(f"{skipped.name}: skipped (set {' and '.join(api.credential_env)} to sync it)")
    return 0


async def _sync_list(
    spec: ListSpec[Any], store: SyncStore, client: BaseClient, args: argparse.Namespace
) -> SyncReport:
    from ..sync import sync_list

    progress = Progress(sys.stderr if not args.quiet and sys.stderr.isatty() else None, spec.name)
    retries_before = client.stats.retries
    pages = [0]

    def tick(report: SyncReport) -> None:
        pages[0] += 1
        progress.tick(report.seen, pages[0], None, client.stats.retries - retries_before)

    try:
        return await sync_list(
            store, spec.name, client, list_query(spec, args), account=args.account, progress=tick
        )
    finally:
        progress.done()
