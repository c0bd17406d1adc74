"""``yeastar-csss sync LIST``: keep a database in step with a vendor list (extra ``[sync]``)."""

from __future__ import annotations

import argparse
import contextlib
import sys
from typing import TYPE_CHECKING, Any

from .._base import BaseClient
from .._csss import CSSSClient
from .._yeastar import YeastarPartnerClient
from ._commands import UsageError, list_names, open_clients
from ._export import Progress
from ._output import say

if TYPE_CHECKING:
    from ..sync import SyncReport, SyncStore

__all__ = ["run_sync"]

MISSING_EXTRA = "sync needs the [sync] extra: pip install 'yeastar-csss-async[sync]'"


async def run_sync(args: argparse.Namespace) -> int:
    """Sync the list(s) ``args.kind`` into ``args.db`` for ``args.account``; one summary
    line per list (unless quiet)."""
    try:
        from ..sync import SyncError, SyncStore
    except ImportError:
        raise UsageError(MISSING_EXTRA) from None
    if args.product_id and args.kind not in ("products", "all"):
        raise UsageError("--product-id applies to products only")
    if not args.account.strip():
        raise UsageError("--account must not be empty")
    names = list_names(args)
    try:
        store = SyncStore(args.db)
    except SyncError as error:  # not a database URL we can use: configuration
        raise UsageError(str(error)) from None
    async with contextlib.AsyncExitStack() as stack:
        yeastar, csss = await open_clients(stack, args, names)
        try:
            await stack.enter_async_context(store)
        except ImportError as error:  # the database's driver is missing: configuration
            raise UsageError(str(error)) from None
        for name in names:
            client = csss if name == "package-orders" else yeastar
            assert client is not None
            report = await _sync_list(name, store, client, args)
            if not args.quiet:
                say(report.summary(store.display_url))
        if args.kind == "all" and "package-orders" not in names and not args.quiet:
            say("package-orders: skipped (set CSSS_ACCESS_CODE and CSSS_SECRET to sync it)")
    return 0


async def _sync_list(
    name: str, store: SyncStore, client: BaseClient, args: argparse.Namespace
) -> SyncReport:
    from ..sync import sync_orders, sync_package_orders, sync_products

    progress = Progress(sys.stderr if not args.quiet and sys.stderr.isatty() else None, name)
    retries_before = client.stats.retries
    pages = [0]

    def tick(report: SyncReport) -> None:
        pages[0] += 1
        progress.tick(report.seen, pages[0], None, client.stats.retries - retries_before)

    options: dict[str, Any] = {"account": args.account, "progress": tick}
    if args.page_size:
        options["page_size"] = args.page_size
    try:
        if isinstance(client, CSSSClient):
            return await sync_package_orders(
                store,
                client,
                device_id=args.device_id,
                order_id=args.order_id,
                order_status=args.order_status,
                order_type=args.order_type,
                **options,
            )
        assert isinstance(client, YeastarPartnerClient)
        if name == "orders":
            return await sync_orders(store, client, **options)
        return await sync_products(store, client, args.product_id, **options)
    finally:
        progress.done()
