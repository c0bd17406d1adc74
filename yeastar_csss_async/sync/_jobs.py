"""Sync a vendor list into a store: the jobs the CLI runs, for library users too."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

from .._csss import CSSSClient
from .._paging import PageStream
from .._yeastar import YeastarPartnerClient
from ._report import SyncReport
from ._run import Batch
from ._store import SyncStore

__all__ = ["sync_orders", "sync_package_orders", "sync_products", "sync_records"]

Progress = Callable[[SyncReport], None]


async def sync_records(
    store: SyncStore,
    list_name: str,
    pages: PageStream[Any],
    *,
    account: str = "default",
    scope: dict[str, Sequence[object]] | None = None,
    mark_gone: bool = True,
    progress: Progress | None = None,
) -> SyncReport:
    """Sync the pages of ``pages`` (any ``iter_*_pages()`` stream of list ``list_name``) into
    ``store`` for ``account``: each page is written in its own transaction as it arrives.

    ``mark_gone``: a complete run sets ``gone_at`` on stored records (of ``scope``) it did not
    see; pass False when ``pages`` is not the whole list. The stream is closed (its fetches
    cancelled) when this returns or fails.
    """

    async def batches() -> AsyncIterator[Batch]:
        async with pages:
            async for page in pages:
                yield {}, page.items

    return await store.sync(
        list_name, batches(), account=account, scope=scope, mark_gone=mark_gone, progress=progress
    )


async def sync_orders(
    store: SyncStore,
    client: YeastarPartnerClient,
    *,
    account: str = "default",
    page_size: int = 100,
    progress: Progress | None = None,
) -> SyncReport:
    """Sync every order of ``client`` into table ``orders`` for ``account``."""
    return await sync_records(
        store,
        "orders",
        client.iter_order_pages(page_size=page_size, ordered=False),
        account=account,
        progress=progress,
    )


async def sync_products(
    store: SyncStore,
    client: YeastarPartnerClient,
    product_ids: Sequence[int] | None = None,
    *,
    account: str = "default",
    page_size: int = 100,
    progress: Progress | None = None,
) -> SyncReport:
    """Sync the products of ``product_ids`` (default: every product line the account may
    see) into table ``products`` for ``account``, as one run. Records are keyed by product
    line and ``product_no``; a complete run marks gone only products of the lines it read."""
    lines = (
        list(product_ids)
        if product_ids is not None
        else [line.product_id for line in await client.list_subscription_products()]
    )

    async def batches() -> AsyncIterator[Batch]:
        for line in lines:
            async with client.iter_product_pages(line, page_size=page_size, ordered=False) as pages:
                async for page in pages:
                    yield {"product_id": line}, page.items

    scope = {"product_id": lines} if product_ids is not None else None
    return await store.sync("products", batches(), account=account, scope=scope, progress=progress)


async def sync_package_orders(
    store: SyncStore,
    client: CSSSClient,
    *,
    account: str = "default",
    page_size: int = 50,
    device_id: str | None = None,
    order_id: str | None = None,
    order_status: str | None = None,
    order_type: str | None = None,
    progress: Progress | None = None,
) -> SyncReport:
    """Sync the package orders of ``client`` into table ``package_orders`` for ``account``.
    With a filter, the run covers only the matching orders, so it marks nothing gone."""
    filtered = any(value is not None for value in (device_id, order_id, order_status, order_type))
    pages = client.iter_package_order_pages(
        page_size=page_size,
        ordered=False,
        device_id=device_id,
        order_id=order_id,
        order_status=order_status,
        order_type=order_type,
    )
    return await sync_records(
        store, "package-orders", pages, account=account, mark_gone=not filtered, progress=progress
    )
