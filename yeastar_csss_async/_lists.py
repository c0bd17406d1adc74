"""The lists the library reads, one :class:`ListSpec` each: the one place that names them.

A list's name (``orders``, ``products``, ``package-orders``: the CLI's, the jobs' and the
``sync_runs.list`` value), its model, the attribute that identifies a record, the API it comes
from, its default page size, what narrows it (product lines, CSSS filters) and how its pages
are read are written here; the clients, the CLI, the exports, the sync layer and the jobs all
read them from :data:`LISTS`. A new list is a new entry here (and a table for it appears in
the sync layer by itself).
"""

from __future__ import annotations

import operator
from collections.abc import AsyncGenerator, Callable, Hashable, Iterable, Mapping, Sequence
from typing import Any, Generic, Protocol, TypeVar

import attrs

from ._apis import CSSS, YEASTAR, ApiSpec
from ._paging import PageStream
from .models import Order, PackageOrder, Product, SubscriptionProduct

__all__ = [
    "LISTS",
    "ORDERS",
    "PACKAGE_ORDERS",
    "PRODUCTS",
    "ListQuery",
    "ListSpec",
    "Segment",
    "list_spec",
]

T = TypeVar("T")


def _optional_ints(values: Iterable[int] | None) -> tuple[int, ...] | None:
    return None if values is None else tuple(values)


@attrs.frozen
class ListQuery:
    """What part of a list to read, and how.

    ``page_size`` None is the list's default. ``product_ids`` narrows a list scoped by product
    line (products) to those lines; None reads every line the account may see. ``filters``
    narrows a list by the API's own filters (package orders: ``device_id``, ``order_id``,
    ``order_status``, ``order_type``); a filter left None is not sent.
    """

    page_size: int | None = None
    ordered: bool = True
    product_ids: tuple[int, ...] | None = attrs.field(default=None, converter=_optional_ints)
    filters: Mapping[str, str | None] = attrs.field(factory=dict)

    @property
    def active_filters(self) -> dict[str, str]:
        """The filters that narrow the list (set and not empty)."""
        return {name: value for name, value in self.filters.items() if value}


@attrs.frozen
class Segment(Generic[T]):
    """A part of a list read as one page stream: the whole list, or one product line.

    ``scope`` holds the values of the list's scope columns for this part (``{"product_id":
    13}``), empty for a list without scope. ``pages`` is open while the segment is current:
    read it before asking for the next segment.
    """

    scope: Mapping[str, object]
    pages: PageStream[T]


class YeastarSource(Protocol):
    """What reading the Yeastar lists needs of a client (:class:`YeastarPartnerClient`)."""

    def iter_order_pages(self, *, page_size: int = ..., ordered: bool = ...) -> PageStream[Order]:
        """The pages of Query Order List."""

    def iter_product_pages(
        self, product_id: int, *, page_size: int = ..., ordered: bool = ...
    ) -> PageStream[Product]:
        """The pages of Query Product List for one product line."""

    async def list_subscription_products(self) -> list[SubscriptionProduct]:
        """The product lines the account may see."""


class CSSSSource(Protocol):
    """What reading the CSSS list needs of a client (:class:`CSSSClient`)."""

    def iter_package_order_pages(
        self,
        *,
        page_size: int = ...,
        ordered: bool = ...,
        device_id: str | None = ...,
        order_id: str | None = ...,
        order_status: str | None = ...,
        order_type: str | None = ...,
    ) -> PageStream[PackageOrder]:
        """The pages of Query Package Order."""


Reader = Callable[[Any, "ListSpec[Any]", ListQuery], AsyncGenerator[Segment[Any], None]]


@attrs.frozen
class ListSpec(Generic[T]):
    """One list: what it is called, what it holds and how it is read.

    ``key`` is the model attribute that identifies a record within its scope (``Order.id``);
    ``scope`` the key columns outside the model with their Python type (products are
    identified within their product line: ``(("product_id", int),)``); ``filters`` the API
    filters a query may set. ``table`` names its table in a sync database, ``sandbox_size``
    the :class:`~yeastar_csss_async.sandbox.SandboxConfig` field that sizes it in the sandbox.
    """

    name: str
    title: str
    model: type[T]
    key: str
    api: ApiSpec
    default_page_size: int
    table: str
    sandbox_size: str
    reader: Reader = attrs.field(repr=False)
    scope: tuple[tuple[str, type], ...] = ()
    filters: tuple[str, ...] = ()
    record_key: Callable[[T], Hashable] = attrs.field(init=False, repr=False)

    @record_key.default
    def _record_key(self) -> Callable[[T], Hashable]:
        getter: Callable[[T], Hashable] = operator.attrgetter(self.key)
        return getter

    @property
    def scope_names(self) -> tuple[str, ...]:
        """The names of the scope columns (``("product_id",)`` for products)."""
        return tuple(name for name, _ in self.scope)

    def check(self, query: ListQuery) -> None:
        """ValueError for a query that sets what this list does not take."""
        if query.product_ids is not None and "product_id" not in self.scope_names:
            raise ValueError(f"product ids apply to products only, not to {self.name}")
        unknown = sorted(set(query.filters) - set(self.filters))
        if unknown:
            raise ValueError(f"{self.name} takes no filter {', '.join(unknown)}")

    def page_size(self, query: ListQuery) -> int:
        """The page size ``query`` asks for, or this list's default."""
        return query.page_size or self.default_page_size

    def coverage(self, query: ListQuery) -> tuple[dict[str, Sequence[object]] | None, bool]:
        """What a run of ``query`` covers, for marking records gone: the scope values it is
        limited to (None: every scope), and whether it reads every record of that scope (a
        query with API filters does not, so it may mark nothing gone)."""
        limited: dict[str, Sequence[object]] | None = None
        if query.product_ids is not None:
            limited = {"product_id": list(query.product_ids)}
        return limited, not query.active_filters

    def segments(
        self, client: Any, query: ListQuery | None = None
    ) -> AsyncGenerator[Segment[T], None]:
        """The list read through ``client`` (a client of :attr:`api`): one
        :class:`Segment` per part, each open until the next is asked for. Close the iterator
        (``contextlib.aclosing``) to stop early: the open stream is closed with it."""
        query = query or ListQuery()
        self.check(query)
        return self.reader(client, self, query)


async def _orders(
    client: YeastarSource, spec: ListSpec[Any], query: ListQuery
) -> AsyncGenerator[Segment[Order], None]:
    stream = client.iter_order_pages(page_size=spec.page_size(query), ordered=query.ordered)
    async with stream:
        yield Segment({}, stream)


async def _products(
    client: YeastarSource, spec: ListSpec[Any], query: ListQuery
) -> AsyncGenerator[Segment[Product], None]:
    lines = query.product_ids
    if lines is None:
        lines = tuple(
            line.product_id
            for line in await client.list_subscription_products()
            if line.product_id is not None
        )
    for line in lines:
        stream = client.iter_product_pages(
            line, page_size=spec.page_size(query), ordered=query.ordered
        )
        async with stream:
            yield Segment({"product_id": line}, stream)


async def _package_orders(
    client: CSSSSource, spec: ListSpec[Any], query: ListQuery
) -> AsyncGenerator[Segment[PackageOrder], None]:
    filters = {name: query.filters.get(name) for name in spec.filters}
    stream = client.iter_package_order_pages(
        page_size=spec.page_size(query), ordered=query.ordered, **filters
    )
    async with stream:
        yield Segment({}, stream)


ORDERS: ListSpec[Order] = ListSpec(
    name="orders",
    title="orders",
    model=Order,
    key="id",
    api=YEASTAR,
    default_page_size=100,
    table="orders",
    sandbox_size="orders",
    reader=_orders,
)
PRODUCTS: ListSpec[Product] = ListSpec(
    name="products",
    title="products",
    model=Product,
    key="product_no",
    api=YEASTAR,
    default_page_size=100,
    table="products",
    sandbox_size="products_per_line",
    reader=_products,
    scope=(("product_id", int),),
)
PACKAGE_ORDERS: ListSpec[PackageOrder] = ListSpec(
    name="package-orders",
    title="package orders",
    model=PackageOrder,
    key="order_code",
    api=CSSS,
    default_page_size=50,
    table="package_orders",
    sandbox_size="package_orders",
    reader=_package_orders,
    filters=("device_id", "order_id", "order_status", "order_type"),
)

LISTS: dict[str, ListSpec[Any]] = {spec.name: spec for spec in (ORDERS, PRODUCTS, PACKAGE_ORDERS)}
"""Every list by name, in the order ``export all`` and ``sync all`` read them."""


def list_spec(name: str) -> ListSpec[Any]:
    """The list called ``name``; ValueError naming the known ones for any other name."""
    try:
        return LISTS[name]
    except KeyError:
        raise ValueError(
            f"unknown list {name[:80]!r} (expected one of: {', '.join(LISTS)})"
        ) from None
