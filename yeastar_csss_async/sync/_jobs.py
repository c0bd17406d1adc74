"""Sync a vendor list into a store: the jobs the CLI and the workers run, for library users
too. Which pages make up a list, and what a partial read may mark gone, come from the list
registry (:mod:`yeastar_csss_async._lists`)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import attrs

from .._base import BaseClient
from .._csss import CSSSClient
from .._lists import ORDERS, PACKAGE_ORDERS, PRODUCTS, ListQuery, list_spec
from .._paging import PageStream
from .._yeastar import YeastarPartnerClient
from ._report import SyncReport
from ._run import Batch, sync_batches
from ._store import SyncStore

__all__ = ["sync_list", "sync_orders", "sync_package_orders", "sync_products", "sync_records"]

Progress = Callable[[SyncReport], None]


async def sync_list(
    store: SyncStore,
    list_name: str,
    client: BaseClient,
    query: ListQuery | None = None,
    *,
    account: str = "default",
    progress: Progress | None = None,
) -> SyncReport:
    """Sync list ``list_name`` (``orders``, ``products``, ``package-orders``) read through
    ``client`` (a client of that list's API) into ``store`` for ``account``, as one run.

    ``query`` narrows the run (product lines, CSSS filters; see
    :class:`~yeastar_csss_async._lists.ListQuery`): a run limited to some product lines marks
    gone only records of those lines, and a run with API filters marks nothing gone. Pages
    are read as they land (the order does not matter to a sync)."""
    spec = list_spec(list_name)
    query = attrs.evolve(query or ListQuery(), ordered=False)
    segments = spec.segments(client, query)  # checks the query before the run starts
    scope, complete = spec.coverage(query)

    async def batches() -> AsyncIterator[Batch]:
        async with contextlib.aclosing(segments):
            async for segment in segments:
                async for page in segment.pages:
                    yield segment.scope, page.items

    return await sync_batches(
        store,
        spec.name,
        batches(),
        account=account,
        scope=scope,
        mark_gone=complete,
        progress=progress,
    )


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

    return await sync_batches(
        store,
        list_name,
        batches(),
        account=account,
        scope=scope,
        mark_gone=mark_gone,
        progress=progress,
    )


async def sync_orders(
    store: SyncStore,
    client: YeastarPartnerClient,
    *,
    account: str = "default",
    page_size: int = ORDERS.default_page_size,
    progress: Progress | None = None,
) -> SyncReport:
    """Sync every order of ``client`` into table ``orders`` for ``account``."""
    return await sync_list(
        store,
        ORDERS.name,
        client,
        ListQuery(page_size=page_size),
        account=account,
        progress=progress,
    )


async def sync_products(
    store: SyncStore,
    client: YeastarPartnerClient,
    product_ids: Sequence[int] | None = None,
    *,
    account: str = "default",
    page_size: int = PRODUCTS.default_page_size,
    progress: Progress | None = None,
) -> SyncReport:
    """Sync the products of ``product_ids`` (default: every product line the account may
    see) into table ``products`` for ``account``, as one run. Records are keyed by product
    line and ``product_no``; a complete run marks gone only products of the lines it read."""
    query = ListQuery(page_size=page_size, product_ids=product_ids)
    return await sync_list(store, PRODUCTS.name, client, query, account=account, progress=progress)


async def sync_package_orders(
    store: SyncStore,
    client: CSSSClient,
    *,
    account: str = "default",
    page_size: int = PACKAGE_ORDERS.default_page_size,
    device_id: str | None = None,
    order_id: str | None = None,
    order_status: str | None = None,
    order_type: str | None = None,
    progress: Progress | None = None,
) -> SyncReport:
    """Sync the package orders of ``client`` into table ``package_orders`` for ``account``.
    With a filter, the run covers only the matching orders, so it marks nothing gone."""
    filters = {
        "device_id": device_id,
        "order_id": order_id,
        "order_status": order_status,
        "order_type": order_type,
    }
    query = ListQuery(page_size=page_size, filters=filters)
    return await sync_list(
        store, PACKAGE_ORDERS.name, client, query, account=account, progress=progress
    )
