"""``YeastarPartnerClient``: Yeastar Partner Portal OpenAPI (orders, products, product lines)."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Literal, Self, TypeVar, Unpack, overload

import aiohttp

from ._apis import YEASTAR
from ._auth import TokenManager
from ._base import BaseClient, ClientOptions, account_key, credentials_from_env
from ._converters import structure_items
from ._coordination import Coordinator
from ._errors import APIError, AuthenticationError
from ._lists import ORDERS, PRODUCTS
from ._paging import PageIterator, PageStream
from ._redaction import Redactor
from ._retry import RetryPolicy
from ._transport import DEFAULT_MAX_RESPONSE_BYTES, RawResponse, RequestSpec
from ._validation import require_positive_int, require_text
from ._yeastar_protocol import (
    ORDER_LIST_PATH,
    PRODUCT_LIST_PATH,
    SUBSCRIPTION_PRODUCTS_PATH,
    TOKEN_PATH,
    TokenGrant,
    decode_page_answer,
    decode_token,
    decode_yeastar_envelope,
    describe_yeastar_error,
    is_token_rejection,
)
from .models import Order, Page, Product, SubscriptionProduct

__all__ = ["YeastarOptions", "YeastarPartnerClient"]

T = TypeVar("T")
R = TypeVar("R")


YeastarOptions = ClientOptions
"""The keyword options of :class:`YeastarPartnerClient`, for its ``from_env()``."""


_MAX_SENDS = 5
"""Sends of one request at most. A request whose token is refused is replayed with the token
another task renewed to meanwhile (it may have been revoked as well), and is refused for good
only after a renewal of its own (one started after its own rejection); the cap only stops a
server that revokes every token at once, forever."""


class YeastarPartnerClient(BaseClient):
    """Async client of the Yeastar Partner Portal OpenAPI.

    Authenticates with OAuth2 client credentials (``grant_type=pp_credentials``) on first use,
    reuses and refreshes the token, and on HTTP 401 renews it once and replays the request.
    At most ``max_concurrency`` requests are in flight, across every call and iterator of the
    client. Safe to share between the tasks of one event loop.

    ``timeout`` is in seconds per attempt, counted from when the request gets its concurrency
    slot. ``session`` lets you bring your own ``aiohttp.ClientSession``; the client then never
    closes it. ``max_response_bytes`` bounds every answer body (32 MiB by default): a larger
    one is a :class:`ResponseFormatError`, read no further.
    """

    def __init__(
        self,
        client_id: str,
        client_secret: str,
        *,
        base_url: str = YEASTAR.default_base_url,
        max_concurrency: int = 8,
        retry: RetryPolicy | None = None,
        timeout: float = 30.0,
        session: aiohttp.ClientSession | None = None,
        user_agent: str | None = None,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        coordinator: Coordinator | None = None,
    ) -> None:
        self.client_id = require_text("client_id", client_id)
        redactor = Redactor([require_text("client_secret", client_secret)])
        super().__init__(
            base_url=base_url,
            max_concurrency=max_concurrency,
            retry=retry,
            timeout=timeout,
            session=session,
            user_agent=user_agent,
            redactor=redactor,
            describe_error=lambda r: describe_yeastar_error(r.status, r.body, redactor),
            max_response_bytes=max_response_bytes,
            coordinator=coordinator,
            account=account_key("yeastar", client_id, base_url),
        )
        self._tokens = TokenManager(
            self._request_token, client_id, client_secret, redactor, self._transport.link
        )

    @classmethod
    def from_env(
        cls, *, environ: Mapping[str, str] | None = None, **options: Unpack[YeastarOptions]
    ) -> Self:
        """A client from the environment variables the CLI reads: ``YEASTAR_CLIENT_ID`` and
        ``YEASTAR_CLIENT_SECRET`` (required), ``YEASTAR_BASE_URL`` (optional; a ``base_url``
        option wins). ``environ`` replaces ``os.environ``; ``options`` are the constructor's.
        A missing variable is a :class:`ConfigurationError` naming it."""
        client_id, client_secret, base_url = credentials_from_env(environ, YEASTAR)
        if base_url is not None:
            options.setdefault("base_url", base_url)
        return cls(client_id, client_secret, **options)

    def __repr__(self) -> str:
        return (
            f"YeastarPartnerClient(client_id={self.client_id!r}, base_url={self.base_url!r}, "
            f"max_concurrency={self.max_concurrency})"
        )

    async def aclose(self) -> None:
        """Stop a token renewal under way, then close the HTTP session if the client created
        it (a borrowed one stays open). On a :meth:`with_options` view: nothing."""
        if self._view_of is None:
            await self._tokens.aclose()
        await super().aclose()

    @property
    def token_requests(self) -> int:
        """Token grants obtained so far (credentials and refresh)."""
        return self._tokens.renewals

    # --- requests --------------------------------------------------------------------------

    async def _request_token(self, form: Mapping[str, str]) -> TokenGrant:
        spec = RequestSpec("POST", TOKEN_PATH, data=dict(form))

        async def build() -> RequestSpec:
            return spec

        response = await self._transport.send(build, label=f"token request (POST {TOKEN_PATH})")
        return decode_token(decode_yeastar_envelope(response.status, response.body, self._redactor))

    async def _get(
        self,
        path: str,
        params: Mapping[str, str] | None,
        read: Callable[[RawResponse], R],
        *,
        what: str,
    ) -> R:
        """GET with the Bearer token; the answer goes through ``read`` (which raises the
        API's errors). On a token rejection the request is replayed; it is rejected for good
        only after it re-authenticated itself once (see ``_MAX_SENDS``)."""
        used: list[str] = []

        tokens = self._tokens

        async def build() -> RequestSpec:
            token = tokens.current() or await tokens.token()
            used.append(token)
            return RequestSpec(
                "GET", path, params=params, headers={"Authorization": f"Bearer {token}"}
            )

        label = f"{what} (GET {path})"  # names the list and page in logs and errors
        reauthenticated = False
        for send in range(1, _MAX_SENDS + 1):
            response = await self._transport.send(build, label=label)
            rejection: APIError | None = None
            try:
                return read(response)
            except APIError as error:
                if not is_token_rejection(error):
                    raise
                rejection = error
            if reauthenticated or send == _MAX_SENDS:
                break
            _, renewed = await self._tokens.rejected(used[-1])
            reauthenticated = renewed
        assert rejection is not None
        if isinstance(rejection, AuthenticationError):
            raise rejection
        raise AuthenticationError(
            rejection.message,
            status=rejection.status,
            code=rejection.code,
            request_id=rejection.request_id,
            body=rejection.body,
        )

    async def _get_page(
        self,
        path: str,
        item_type: type[T],
        page_no: int,
        page_size: int,
        params: Mapping[str, str],
        *,
        what: str,
    ) -> Page[T]:
        def read(response: RawResponse) -> Page[T]:
            return decode_page_answer(
                response.status,
                response.body,
                item_type,
                page_no=page_no,
                page_size=page_size,
                redact=self._redactor,
            )

        return await self._get(path, params, read, what=f"{what} page {page_no}")

    def _result(self, response: RawResponse) -> object:
        return decode_yeastar_envelope(response.status, response.body, self._redactor)

    # --- orders ----------------------------------------------------------------------------

    async def get_orders_page(self, page_no: int = 1, page_size: int = 25) -> Page[Order]:
        """One page of Query Order List (``GET /order/openapi/order/v1/page``)."""
        require_positive_int("page_no", page_no)
        require_positive_int("page_size", page_size)
        return await self._get_page(
            ORDER_LIST_PATH,
            Order,
            page_no,
            page_size,
            {"pageNo": str(page_no), "pageSize": str(page_size)},
            what=ORDERS.title,
        )

    def iter_orders(
        self,
        *,
        page_size: int = ORDERS.default_page_size,
        ordered: bool = True,
        dedupe: bool = True,
        read_ahead: int | None = None,
        start_page: int = 1,
        limit: int | None = None,
    ) -> PageIterator[Order]:
        """Every order, streamed as pages arrive (pages fetched concurrently).

        With ``ordered=True`` records come in page order, otherwise as soon as any page lands.
        With ``dedupe=True`` each ``Order.id`` is yielded once. ``read_ahead`` bounds the
        records fetched ahead of you (default: 20,000, or two windows of pages if that is
        more), so that in page order a page waiting in a retry backoff does not idle the
        others. ``start_page`` skips the pages before it; ``limit`` stops after that many
        records. Use ``async with`` (or ``contextlib.aclosing``) to stop early: leaving the
        block cancels every fetch still in flight and waits for it.

        The order is the server's: the API documents none (its own example adds ``sort=id``,
        which this client does not send). The client assumes only that, while the list does
        not change, each record stays on one page; a list that changes while it is read is
        re-read where it shifted (see the README). No code may rely on the order.
        """
        return self._iterate(
            functools.partial(self.get_orders_page, page_size=page_size),
            ORDERS.record_key,
            page_size=page_size,
            ordered=ordered,
            dedupe=dedupe,
            read_ahead=read_ahead,
            label=ORDERS.title,
            start_page=start_page,
            limit=limit,
        )

    def iter_order_pages(
        self,
        *,
        page_size: int = ORDERS.default_page_size,
        ordered: bool = True,
        dedupe: bool = True,
        read_ahead: int | None = None,
        start_page: int = 1,
        limit: int | None = None,
    ) -> PageStream[Order]:
        """:meth:`iter_orders` a :class:`Page` at a time (``page.items``, ``page.page_no``,
        ``page.total``, ``page.request_id``), to commit page by page."""
        return self.iter_orders(
            page_size=page_size,
            ordered=ordered,
            dedupe=dedupe,
            read_ahead=read_ahead,
            start_page=start_page,
            limit=limit,
        ).iter_pages()

    # --- products --------------------------------------------------------------------------

    async def get_products_page(
        self, product_id: int, page_no: int = 1, page_size: int = 25
    ) -> Page[Product]:
        """One page of Query Product List for one product line (``productId``, e.g. 13)."""
        require_positive_int("product_id", product_id)
        require_positive_int("page_no", page_no)
        require_positive_int("page_size", page_size)
        return await self._get_page(
            PRODUCT_LIST_PATH,
            Product,
            page_no,
            page_size,
            {
                "productId": str(product_id),
                "pageNo": str(page_no),
                "pageSize": str(page_size),
            },
            what=f"{PRODUCTS.title} of line {product_id}",
        )

    def iter_products(
        self,
        product_id: int,
        *,
        page_size: int = PRODUCTS.default_page_size,
        ordered: bool = True,
        dedupe: bool = True,
        read_ahead: int | None = None,
        start_page: int = 1,
        limit: int | None = None,
    ) -> PageIterator[Product]:
        """Every product of one product line, streamed (see :meth:`iter_orders`).

        Each ``Product.product_no`` is yielded once with ``dedupe=True``.
        """
        require_positive_int("product_id", product_id)

        async def fetch(page_no: int) -> Page[Product]:
            return await self.get_products_page(product_id, page_no, page_size)

        return self._iterate(
            fetch,
            PRODUCTS.record_key,
            page_size=page_size,
            ordered=ordered,
            dedupe=dedupe,
            read_ahead=read_ahead,
            label=f"{PRODUCTS.title} of line {product_id}",
            start_page=start_page,
            limit=limit,
        )

    def iter_product_pages(
        self,
        product_id: int,
        *,
        page_size: int = PRODUCTS.default_page_size,
        ordered: bool = True,
        dedupe: bool = True,
        read_ahead: int | None = None,
        start_page: int = 1,
        limit: int | None = None,
    ) -> PageStream[Product]:
        """:meth:`iter_products` a :class:`Page` at a time (see :meth:`iter_order_pages`)."""
        return self.iter_products(
            product_id,
            page_size=page_size,
            ordered=ordered,
            dedupe=dedupe,
            read_ahead=read_ahead,
            start_page=start_page,
            limit=limit,
        ).iter_pages()

    @overload
    def iter_pages(
        self,
        what: Literal["orders"] = "orders",
        *,
        product_id: None = None,
        page_size: int = ORDERS.default_page_size,
        ordered: bool = True,
        dedupe: bool = True,
        read_ahead: int | None = None,
        start_page: int = 1,
        limit: int | None = None,
    ) -> PageStream[Order]: ...

    @overload
    def iter_pages(
        self,
        what: Literal["products"] | None = None,
        *,
        product_id: int,
        page_size: int = PRODUCTS.default_page_size,
        ordered: bool = True,
        dedupe: bool = True,
        read_ahead: int | None = None,
        start_page: int = 1,
        limit: int | None = None,
    ) -> PageStream[Product]: ...

    def iter_pages(
        self,
        what: Literal["orders", "products"] | None = None,
        *,
        product_id: int | None = None,
        page_size: int = ORDERS.default_page_size,
        ordered: bool = True,
        dedupe: bool = True,
        read_ahead: int | None = None,
        start_page: int = 1,
        limit: int | None = None,
    ) -> PageStream[Order] | PageStream[Product]:
        """The pages of a list: ``iter_pages()`` (or ``iter_pages("orders")``) is
        :meth:`iter_order_pages`; ``iter_pages(product_id=13)`` (or
        ``iter_pages("products", product_id=13)``) is :meth:`iter_product_pages`."""
        if what is None:
            what = "orders" if product_id is None else "products"
        options = {
            "page_size": page_size,
            "ordered": ordered,
            "dedupe": dedupe,
            "read_ahead": read_ahead,
            "start_page": start_page,
            "limit": limit,
        }
        if what == "orders":
            if product_id is not None:
                raise ValueError("product_id applies to products only")
            return self.iter_order_pages(**options)  # type: ignore[arg-type]
        if what == "products":
            if product_id is None:
                raise ValueError('iter_pages("products") needs product_id=')
            return self.iter_product_pages(product_id, **options)  # type: ignore[arg-type]
        raise ValueError(f'what must be "orders" or "products", not {what!r}')

    async def list_subscription_products(self) -> list[SubscriptionProduct]:
        """The product lines this account may subscribe to (their ``product_id``s are what
        :meth:`iter_products` takes)."""
        result = await self._get(
            SUBSCRIPTION_PRODUCTS_PATH, None, self._result, what="product lines"
        )
        return structure_items(result, SubscriptionProduct, path="result", redact=self._redactor)
