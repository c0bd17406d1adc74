"""``CSSSClient``: Linksfield CSSS API (package orders of SIM/eSIM data plans)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Self, Unpack

import aiohttp

from ._apis import CSSS
from ._base import BaseClient, ClientOptions, account_key, credentials_from_env
from ._coordination import Coordinator
from ._csss_protocol import (
    CSSS_QUERY_ORDER_PATH,
    build_csss_body,
    decode_package_order_answer,
    describe_csss_error,
)
from ._lists import PACKAGE_ORDERS
from ._paging import PageIterator, PageStream
from ._redaction import Redactor
from ._retry import RetryPolicy
from ._transport import DEFAULT_MAX_RESPONSE_BYTES, RawResponse, RequestSpec
from ._validation import require_header_text, require_positive_int, require_text
from .models import PackageOrder, Page

__all__ = ["CSSSClient", "CSSSOptions"]


class CSSSOptions(ClientOptions, total=False):
    """The keyword options of :class:`CSSSClient` (for :meth:`~CSSSClient.from_env`)."""

    language: str


class CSSSClient(BaseClient):
    """Async client of the Linksfield CSSS API.

    Every request is signed afresh (HMAC-SHA1 over the sorted non-empty parameters, a new
    timestamp per attempt), at the last moment: after it got its concurrency slot and after
    any pause a 429 imposed, so a queued request never arrives with a stale timestamp.
    Retries are safe. Answers come in ``language`` (sent as
    ``Accept-Language``). Concurrency, retries, timeouts and session ownership work as in
    :class:`YeastarPartnerClient`.
    """

    def __init__(
        self,
        access_code: str,
        secret: str,
        *,
        base_url: str = CSSS.default_base_url,
        max_concurrency: int = 8,
        retry: RetryPolicy | None = None,
        timeout: float = 30.0,
        session: aiohttp.ClientSession | None = None,
        user_agent: str | None = None,
        language: str = "en-US",
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        coordinator: Coordinator | None = None,
    ) -> None:
        self.access_code = require_text("access_code", access_code)
        self._secret = require_text("secret", secret)
        self.language = require_header_text("language", language)
        redactor = Redactor([secret])
        super().__init__(
            base_url=base_url,
            max_concurrency=max_concurrency,
            retry=retry,
            timeout=timeout,
            session=session,
            user_agent=user_agent,
            redactor=redactor,
            describe_error=lambda r: describe_csss_error(r.status, r.body, redactor),
            max_response_bytes=max_response_bytes,
            coordinator=coordinator,
            account=account_key("csss", access_code, base_url),
        )

    @classmethod
    def from_env(
        cls, *, environ: Mapping[str, str] | None = None, **options: Unpack[CSSSOptions]
    ) -> Self:
        """A client from the environment variables the CLI reads: ``CSSS_ACCESS_CODE`` and
        ``CSSS_SECRET`` (required), ``CSSS_BASE_URL`` (optional; a ``base_url`` option wins).
        ``environ`` replaces ``os.environ``; ``options`` are the constructor's. A missing
        variable is a :class:`ConfigurationError` naming it."""
        access_code, secret, base_url = credentials_from_env(environ, CSSS)
        if base_url is not None:
            options.setdefault("base_url", base_url)
        return cls(access_code, secret, **options)

    def __repr__(self) -> str:
        return (
            f"CSSSClient(access_code={self.access_code!r}, base_url={self.base_url!r}, "
            f"max_concurrency={self.max_concurrency})"
        )

    async def _post(self, path: str, params: Mapping[str, object], *, what: str) -> RawResponse:
        """POST a signed body (signed by the transport's ``render`` hook at the last moment)."""
        headers = {"Content-Type": "application/json", "Accept-Language": self.language}

        def sign() -> bytes:  # called by the transport just before the request goes out
            return build_csss_body(params, access_code=self.access_code, secret=self._secret)

        spec = RequestSpec("POST", path, headers=headers, render=sign)

        async def build() -> RequestSpec:
            return spec

        return await self._transport.send(build, label=f"{what} (POST {path})")

    async def get_package_orders_page(
        self,
        page_no: int = 1,
        page_size: int = PACKAGE_ORDERS.default_page_size,
        *,
        device_id: str | None = None,
        order_id: str | None = None,
        order_status: str | None = None,
        order_type: str | None = None,
    ) -> Page[PackageOrder]:
        """One page of Query Package Order (``POST /package/queryOrder``).

        Filters left ``None`` (or ``""``) are not sent. ``order_id`` matches the order code.
        """
        require_positive_int("page_no", page_no)
        require_positive_int("page_size", page_size)
        response = await self._post(
            CSSS_QUERY_ORDER_PATH,
            {
                "device_id": device_id,
                "order_id": order_id,
                "order_status": order_status,
                "order_type": order_type,
                "page_no": page_no,
                "page_size": page_size,
            },
            what=f"{PACKAGE_ORDERS.title} page {page_no}",
        )
        return decode_package_order_answer(
            response.status,
            response.body,
            page_no=page_no,
            page_size=page_size,
            redact=self._redactor,
        )

    def iter_package_orders(
        self,
        *,
        page_size: int = PACKAGE_ORDERS.default_page_size,
        ordered: bool = True,
        dedupe: bool = True,
        device_id: str | None = None,
        order_id: str | None = None,
        order_status: str | None = None,
        order_type: str | None = None,
        read_ahead: int | None = None,
        start_page: int = 1,
        limit: int | None = None,
    ) -> PageIterator[PackageOrder]:
        """Every matching package order, streamed as pages arrive (pages fetched concurrently).

        Each ``PackageOrder.order_code`` is yielded once with ``dedupe=True``. ``read_ahead``,
        ``start_page`` and ``limit`` work as in :meth:`YeastarPartnerClient.iter_orders`. The
        API documents no list order; no code may rely on the one it sends.
        """

        async def fetch(page_no: int) -> Page[PackageOrder]:
            return await self.get_package_orders_page(
                page_no,
                page_size,
                device_id=device_id,
                order_id=order_id,
                order_status=order_status,
                order_type=order_type,
            )

        return self._iterate(
            fetch,
            PACKAGE_ORDERS.record_key,
            page_size=page_size,
            ordered=ordered,
            dedupe=dedupe,
            read_ahead=read_ahead,
            label=PACKAGE_ORDERS.title,
            start_page=start_page,
            limit=limit,
        )

    def iter_package_order_pages(
        self,
        *,
        page_size: int = PACKAGE_ORDERS.default_page_size,
        ordered: bool = True,
        dedupe: bool = True,
        device_id: str | None = None,
        order_id: str | None = None,
        order_status: str | None = None,
        order_type: str | None = None,
        read_ahead: int | None = None,
        start_page: int = 1,
        limit: int | None = None,
    ) -> PageStream[PackageOrder]:
        """:meth:`iter_package_orders` a :class:`Page` at a time, to commit page by page
        (``request_id`` is None: the CSSS API sends none)."""
        return self.iter_package_orders(
            page_size=page_size,
            ordered=ordered,
            dedupe=dedupe,
            device_id=device_id,
            order_id=order_id,
            order_status=order_status,
            order_type=order_type,
            read_ahead=read_ahead,
            start_page=start_page,
            limit=limit,
        ).iter_pages()

    iter_pages = iter_package_order_pages  # the one list of this API
