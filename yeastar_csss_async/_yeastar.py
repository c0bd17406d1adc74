"""``YeastarPartnerClient``: Yeastar Partner Portal OpenAPI (orders, products, product lines)."""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable, Mapping
from typing import TypeVar

import aiohttp

from ._auth import TokenManager
from ._base import BaseClient
from ._converters import structure_items
from ._errors import APIError, AuthenticationError, Redactor
from ._paging import PageIterator
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

__all__ = ["YeastarPartnerClient"]

T = TypeVar("T")
R = TypeVar("R")


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
        base_url: str = "https://openapi.partner.yeastar.com",
        max_concurrency: int = 8,
        retry: RetryPolicy | None = None,
        timeout: float = 30.0,
        session: aiohttp.ClientSession | None = None,
        user_agent: str | None = None,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
    ) -> None:
        self.client_id = require_text("client_id", client_id)
        redactor = Redactor([require_text("client_secret", client_secret)])
        super().__init__(
            base_url=base_url, max_concurrency=max_concurrency, retry=retry, timeout=timeout,
            session=session, user_agent=user_agent, redactor=redactor,
            describe_error=lambda r: describe_yeastar_error(r.status, r.body, redactor),
            max_response_bytes=max_response_bytes,
        )
        self._tokens = TokenManager(self._request_token, client_id, client_secret, redactor)

    def __repr__(self) -> str:
        return (f"YeastarPartnerClient(client_id={self.client_id!r}, base_url={self.base_url!r}, "
                f"max_concurrency={self.max_concurrency})")

    async def aclose(self) -> None:
        """Stop a token renewal under way, then close the HTTP session if the client created
        it (a borrowed one stays open)."""
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

        response = await self._transport.send(build, label=f"POST {TOKEN_PATH}")
        return decode_token(decode_yeastar_envelope(response.status, response.body,
                                                    self._redactor))

    async def _get(self, path: str, params: Mapping[str, str] | None,
                   read: Callable[[RawResponse], R]) -> R:
        """GET with the Bearer token; the answer goes through ``read`` (which raises the
        API's errors). On a token rejection the request is replayed; it is rejected for good
        only after it re-authenticated itself once (see ``_MAX_SENDS``)."""
        used: list[str] = []

        tokens = self._tokens

        async def build() -> RequestSpec:
            token = tokens.current() or await tokens.token()
            used.append(token)
            return RequestSpec("GET", path, params=params,
                               headers={"Authorization": f"Bearer {token}"})

        label = f"GET {path}"
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
        raise AuthenticationError(rejection.message, status=rejection.status,
                                  code=rejection.code, request_id=rejection.request_id)

    async def _get_page(self, path: str, item_type: type[T], page_no: int, page_size: int,
                        params: Mapping[str, str]) -> Page[T]:
        def read(response: RawResponse) -> Page[T]:
            return decode_page_answer(response.status, response.body, item_type,
                                      page_no=page_no, page_size=page_size,
                                      redact=self._redactor)

        return await self._get(path, params, read)

    def _result(self, response: RawResponse) -> object:
        return decode_yeastar_envelope(response.status, response.body, self._redactor)

    # --- orders ----------------------------------------------------------------------------

    async def get_orders_page(self, page_no: int = 1, page_size: int = 25) -> Page[Order]:
        """One page of Query Order List (``GET /order/openapi/order/v1/page``)."""
        require_positive_int("page_no", page_no)
        require_positive_int("page_size", page_size)
        return await self._get_page(ORDER_LIST_PATH, Order, page_no, page_size,
                                    {"pageNo": str(page_no), "pageSize": str(page_size)})

    def iter_orders(
        self, *, page_size: int = 100, ordered: bool = True, dedupe: bool = True,
        read_ahead: int | None = None,
    ) -> PageIterator[Order]:
        """Every order, streamed as pages arrive (pages fetched concurrently).

        With ``ordered=True`` records come in page order, otherwise as soon as any page lands.
        With ``dedupe=True`` each ``Order.id`` is yielded once. ``read_ahead`` bounds the
        records fetched ahead of you (default: 20,000, or two windows of pages if that is
        more), so that in page order a page waiting in a retry backoff does not idle the
        others. Use ``async with`` (or ``contextlib.aclosing``) to stop early: leaving the
        block cancels every fetch still in flight and waits for it.
        """
        return self._iterate(
            functools.partial(self.get_orders_page, page_size=page_size),
            _order_key, page_size=page_size, ordered=ordered, dedupe=dedupe,
            read_ahead=read_ahead, label="orders",
        )

    # --- products --------------------------------------------------------------------------

    async def get_products_page(
        self, product_id: int, page_no: int = 1, page_size: int = 25
    ) -> Page[Product]:
        """One page of Query Product List for one product line (``productId``, e.g. 13)."""
        require_positive_int("product_id", product_id)
        require_positive_int("page_no", page_no)
        require_positive_int("page_size", page_size)
        return await self._get_page(PRODUCT_LIST_PATH, Product, page_no, page_size, {
            "productId": str(product_id), "pageNo": str(page_no), "pageSize": str(page_size),
        })

    def iter_products(
        self, product_id: int, *, page_size: int = 100, ordered: bool = True,
        dedupe: bool = True, read_ahead: int | None = None,
    ) -> PageIterator[Product]:
        """Every product of one product line, streamed (see :meth:`iter_orders`).

        Each ``Product.product_no`` is yielded once with ``dedupe=True``.
        """
        require_positive_int("product_id", product_id)

        async def fetch(page_no: int) -> Page[Product]:
            return await self.get_products_page(product_id, page_no, page_size)

        return self._iterate(fetch, _product_key, page_size=page_size, ordered=ordered,
                             dedupe=dedupe, read_ahead=read_ahead,
                             label=f"products of line {product_id}")

    async def list_subscription_products(self) -> list[SubscriptionProduct]:
        """The product lines this account may subscribe to (their ``product_id``s are what
        :meth:`iter_products` takes)."""
        result = await self._get(SUBSCRIPTION_PRODUCTS_PATH, None, self._result)
        return structure_items(result, SubscriptionProduct, path="result",
                               redact=self._redactor)


_order_key: Callable[[Order], str | None] = operator.attrgetter("id")
_product_key: Callable[[Product], str | None] = operator.attrgetter("product_no")
