"""The sandbox server: one aiohttp.web application answering like both vendor APIs."""

from __future__ import annotations

import asyncio
import collections
import hmac
import math
import random
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any

import attrs
import msgspec
from aiohttp import web

from ._data import SandboxData
from ._lists import ProductLines, Record, SandboxList
from ._signing import decode_body, signature

SANDBOX_CLIENT_ID = "sandbox-client-id"
SANDBOX_CLIENT_SECRET = "sandbox-client-secret"
SANDBOX_ACCESS_CODE = "P000270"
SANDBOX_SECRET = "sandbox-csss-secret"

TOKEN_PATH = "/auth/openapi/v1/oauth/token"
ORDERS_PATH = "/order/openapi/order/v1/page"
PRODUCTS_PATH = "/product/openapi/instance_product/v1/client/instance_product_list"
PRODUCT_LINES_PATH = "/pricing/openapi/purchase/v1/product_list"
CSSS_ORDERS_PATH = "/package/queryOrder"
MAX_PAGE_SIZE = 1000

Intercept = Callable[[web.Request], Awaitable[web.StreamResponse | None]]
AfterPage = Callable[[str, int], Awaitable[None] | None]


@attrs.define
class SandboxConfig:
    """What the sandbox serves and how it misbehaves. Fields may be changed while it runs."""

    orders: int = 500
    products_per_line: int = 120
    package_orders: int = 300
    latency: float = 0.0
    """Seconds added to every request."""
    fault_rate: float = 0.0
    """Probability that a business request (not the token endpoint) fails transiently."""
    fault_kinds: tuple[str, ...] = ("500", "503", "429", "drop")
    retry_after: float = 0.05
    """Seconds sent in ``Retry-After`` with injected 429s."""
    token_lifetime: float = 1800.0
    refresh_lifetime: float = 15 * 86400.0
    seed: int = 1
    timestamp_window: float = 600.0
    """CSSS: timestamps further than this many seconds from now are rejected."""
    understate_total_pages: bool = False
    """Send ``totalPage: 1`` like seed 000 (``total`` stays right)."""
    generated: bool = False
    """Compute records from their index on demand, for totals in the millions (changes to
    the lists are kept apart, so changing one record does not materialize the others)."""
    revision: int = 0
    """Serve the data as it is after this many revision steps (0: as generated). Each step
    removes about 1 %, changes about 3 % and adds about 2 % of every list, deterministically
    for the seed (see ``SandboxData.advance_revision``); read when the sandbox is made."""


@attrs.define
class SandboxStats:
    """Counters the tests read."""

    requests: int = 0
    by_path: collections.Counter[str] = attrs.field(factory=collections.Counter)
    token_requests: int = 0
    grants: collections.Counter[str] = attrs.field(factory=collections.Counter)
    in_flight: int = 0
    peak_in_flight: int = 0
    faults: collections.Counter[str] = attrs.field(factory=collections.Counter)
    last_request_at: float = 0.0
    user_agents: set[str] = attrs.field(factory=set)

    def reset(self) -> None:
        """Zero every counter (``in_flight`` keeps counting what is under way)."""
        in_flight = self.in_flight
        self.__init__()  # type: ignore[misc]
        self.in_flight = in_flight


_ENCODER = msgspec.json.Encoder(decimal_format="number")


def _money_json(document: object) -> bytes:
    """Compact UTF-8 JSON in which Decimal money keeps its digits (``130.00``, not
    ``130.0`` or a string), as the portal sends it; msgspec writes a page in about a tenth of
    the time the standard library needs with a post-pass for the money."""
    return _ENCODER.encode(document)


def _json_response(document: object, status: int = 200) -> web.Response:
    return web.Response(body=_money_json(document), status=status, content_type="application/json")


def _envelope(
    result: object, *, code: str = "success", status: int = 200, detail: str = ""
) -> web.Response:
    return _json_response(
        {
            "code": code,
            "detailMessage": detail,
            "requestId": secrets.token_hex(16),
            "result": result,
            "status": status,
        },
        status,
    )


def _csss_error(code: str, message: str) -> web.Response:
    return _json_response({"code": code, "data": None, "message": message, "success": False})


def _sign_matches(body: dict[str, Any]) -> bool:
    """Whether the request's ``sign`` is the sandbox's own signature of its parameters."""
    sent = body.get("sign")
    expected = signature(body, SANDBOX_SECRET)  # a decoded body holds only JSON values
    return isinstance(sent, str) and hmac.compare_digest(sent.encode(), expected.encode())


def _int_param(value: str | None, default: int) -> int | None:
    if value is None or value == "":
        return default
    return int(value) if re.fullmatch(r"\d+", value) and int(value) >= 1 else None


class Sandbox:
    """A simulated Yeastar Partner Portal and CSSS API on loopback.

    ``async with Sandbox(SandboxConfig(...)) as sandbox:`` serves both APIs on
    ``sandbox.base_url`` (a random free port by default) until the block ends. Use the
    ``SANDBOX_*`` credentials. Tests may set ``intercept`` (answer a request themselves),
    ``after_page`` (change the data while pages are served) and ``clock`` (token expiry).
    """

    def __init__(
        self, config: SandboxConfig | None = None, *, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.config = config or SandboxConfig()
        self.host = host
        self.port = port
        self.base_url = ""
        self.stats = SandboxStats()
        self.data = SandboxData(
            seed=self.config.seed,
            orders=self.config.orders,
            products_per_line=self.config.products_per_line,
            package_orders=self.config.package_orders,
            generated=self.config.generated,
            revision=self.config.revision,
        )
        self.intercept: Intercept | None = None
        self.after_page: AfterPage | None = None
        self.clock: Callable[[], float] = time.monotonic
        """Seconds on the clock that token lifetimes are measured on (tests may replace it)."""
        self._tokens: dict[str, float] = {}
        self._refresh_tokens: dict[str, float] = {}
        self._faults = random.Random(self.config.seed)
        self._runner: web.AppRunner | None = None
        self._handlers: set[asyncio.Task[Any]] = set()  # requests being answered
        self._closing = False

    def __repr__(self) -> str:
        return f"Sandbox(base_url={self.base_url!r})"

    async def __aenter__(self) -> Sandbox:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def start(self) -> str:
        """Start serving; return the base URL."""
        app = web.Application(middlewares=[self._middleware])
        app.router.add_post(TOKEN_PATH, self._token)
        app.router.add_get(ORDERS_PATH, self._orders)
        app.router.add_get(PRODUCTS_PATH, self._products)
        app.router.add_get(PRODUCT_LINES_PATH, self._product_lines)
        app.router.add_post(CSSS_ORDERS_PATH, self._package_orders)
        self._runner = web.AppRunner(
            app, access_log=None, handle_signals=False, shutdown_timeout=0.1
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        port = self._runner.addresses[0][1] if self._runner.addresses else self.port
        self.base_url = f"http://{self.host}:{port}"
        return self.base_url

    async def close(self) -> None:
        """Stop serving: requests still being answered are cancelled and awaited first.

        (Left to ``runner.cleanup()``, a request that ends in the very loop iteration in which
        aiohttp 3.14's shutdown grace period runs out makes aiohttp log an InvalidStateError
        traceback: it sets a result on a future its timeout has just cancelled.)
        """
        runner, self._runner = self._runner, None
        if runner is None:
            return
        self._closing = True
        while self._handlers:
            pending = list(self._handlers)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            self._handlers.difference_update(pending)
        await runner.cleanup()

    @property
    def orders(self) -> SandboxList:
        """The orders served, newest first; change them between requests (``add``,
        ``change``, ``remove``)."""
        return self.data.orders

    @property
    def products(self) -> ProductLines:
        """The products served, by product line id: ``sandbox.products[13]``."""
        return self.data.products

    @property
    def package_orders(self) -> SandboxList:
        """The CSSS package orders served, oldest first."""
        return self.data.package_orders

    def expire_tokens(self) -> None:
        """Make every access token issued so far invalid at once."""
        self._tokens.clear()

    # --- the plumbing every request goes through ----------------------------------------

    @web.middleware
    async def _middleware(
        self,
        request: web.Request,
        handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
    ) -> web.StreamResponse:
        if self._closing:
            return web.Response(status=503, text="the sandbox is stopping")
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
        stats = self.stats
        stats.requests += 1
        stats.by_path[request.path] += 1
        stats.last_request_at = time.monotonic()
        stats.user_agents.add(request.headers.get("User-Agent", ""))
        business = request.path != TOKEN_PATH
        if business:
            stats.in_flight += 1
            stats.peak_in_flight = max(stats.peak_in_flight, stats.in_flight)
        try:
            if self.config.latency > 0:
                await asyncio.sleep(self.config.latency)
            if self.intercept is not None:
                answer = await self.intercept(request)
                if answer is not None:
                    return answer
            if (
                business
                and self.config.fault_rate > 0
                and self._faults.random() < self.config.fault_rate
            ):
                return self._fault(request, self._faults.choice(self.config.fault_kinds))
            if business and not request.path.startswith("/package/"):
                denied = self._check_bearer(request)
                if denied is not None:
                    return denied
            return await handler(request)
        except ConnectionResetError:  # the client went away mid-request: nothing to answer
            return web.Response(status=499)
        finally:
            if business:
                stats.in_flight -= 1
            if task is not None:
                self._handlers.discard(task)

    def _fault(self, request: web.Request, kind: str) -> web.StreamResponse:
        self.stats.faults[kind] += 1
        if kind == "429":
            response = _envelope(None, code="too_many_requests", status=429, detail="slow down")
            response.headers["Retry-After"] = f"{self.config.retry_after:g}"
            return response
        if kind == "503":
            return web.Response(
                status=503,
                content_type="text/html",
                text="<html><body><h1>503 Service Unavailable</h1></body></html>",
            )
        if kind == "drop":
            if request.transport is not None:
                request.transport.close()
            return web.Response(status=500)  # never reaches the client
        return _envelope(None, code="internal_error", status=500, detail="injected fault")

    def _check_bearer(self, request: web.Request) -> web.Response | None:
        auth = request.headers.get("Authorization", "")
        token = auth[7:] if auth.startswith("Bearer ") else ""
        expires = self._tokens.get(token)
        if expires is None or expires <= self.clock():
            return _envelope(
                None,
                code="invalid_token",
                status=401,
                detail="the access token is missing, invalid or expired",
            )
        return None

    # --- Yeastar --------------------------------------------------------------------------

    def _issue(self) -> web.Response:
        now, config = self.clock(), self.config
        token, refresh = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
        self._tokens[token] = now + config.token_lifetime
        self._refresh_tokens[refresh] = now + config.refresh_lifetime
        return _envelope(
            {
                "expiresIn": str(max(1, math.ceil(config.token_lifetime))),
                "refreshToken": refresh,
                "token": token,
                "tokenHead": "Bearer",
            }
        )

    async def _token(self, request: web.Request) -> web.StreamResponse:
        self.stats.token_requests += 1
        form = await request.post()
        grant = str(form.get("grant_type", ""))
        if grant == "pp_credentials":
            if "client_id" not in form or "client_secret" not in form:
                return _envelope(
                    None,
                    code="parameter_validation_failed",
                    status=400,
                    detail="client_id and client_secret are required",
                )
            if (form["client_id"], form["client_secret"]) != (
                SANDBOX_CLIENT_ID,
                SANDBOX_CLIENT_SECRET,
            ):
                return _envelope(
                    None,
                    code="invalid_client",
                    status=401,
                    detail="client_id or client_secret is wrong",
                )
        elif grant == "refresh_token":
            refresh = str(form.get("refresh_token", ""))
            expires = self._refresh_tokens.pop(refresh, None)  # rotation: single use
            if expires is None or expires <= self.clock():
                return _envelope(
                    None,
                    code="invalid_refresh_token",
                    status=401,
                    detail="the refresh token is invalid or expired",
                )
        else:
            return _envelope(
                None,
                code="parameter_validation_failed",
                status=400,
                detail="grant_type must be pp_credentials or refresh_token",
            )
        self.stats.grants[grant] += 1
        return self._issue()

    async def _page(
        self, name: str, records: SandboxList | list[Record], page_no: int, page_size: int
    ) -> dict[str, Any]:
        start = (page_no - 1) * page_size
        if isinstance(records, SandboxList):
            items = records._span(start, start + page_size)
        else:
            items = records[start : start + page_size]
        total = len(records)
        if self.after_page is not None:
            outcome = self.after_page(name, page_no)
            if outcome is not None:
                await outcome
        return {
            "items": items,
            "total": total,
            "pages": math.ceil(total / page_size) if total else 0,
        }

    async def _yeastar_page(
        self, request: web.Request, name: str, records: SandboxList | list[Record]
    ) -> web.Response:
        page_no = _int_param(request.query.get("pageNo"), 1)
        page_size = _int_param(request.query.get("pageSize"), 25)
        if page_no is None or page_size is None or page_size > MAX_PAGE_SIZE:
            return _envelope(
                None,
                code="parameter_validation_failed",
                status=400,
                detail="pageNo and pageSize must be whole numbers >= 1",
            )
        page = await self._page(name, records, page_no, page_size)
        return _envelope(
            {
                "count": page["total"],
                "pageNo": page_no,
                "pageSize": page_size,
                "results": page["items"],
                "total": page["total"],
                "totalPage": 1 if self.config.understate_total_pages else page["pages"],
            }
        )

    async def _orders(self, request: web.Request) -> web.StreamResponse:
        return await self._yeastar_page(request, "orders", self.data.orders)

    async def _products(self, request: web.Request) -> web.StreamResponse:
        product_id = request.query.get("productId", "")
        if not re.fullmatch(r"\d+", product_id):
            return _envelope(
                None, code="parameter_validation_failed", status=400, detail="productId is required"
            )
        return await self._yeastar_page(
            request, "products", self.data.products.get(int(product_id), [])
        )

    async def _product_lines(self, request: web.Request) -> web.StreamResponse:
        return _envelope(self.data.subscription_products)

    # --- CSSS -------------------------------------------------------------------------------

    async def _package_orders(self, request: web.Request) -> web.StreamResponse:
        try:
            body = decode_body(await request.read())
        except ValueError:
            return _csss_error("1004", "body is not JSON")
        if not isinstance(body, dict):
            return _csss_error("1004", "body is not a JSON object")
        if body.get("access_code") != SANDBOX_ACCESS_CODE:
            return _csss_error("1001", "access_code invalid")
        timestamp = str(body.get("timestamp", ""))
        if (
            not timestamp.isdigit()
            or abs(int(timestamp) - time.time()) > self.config.timestamp_window
        ):
            return _csss_error("1003", "timestamp expired")
        if not _sign_matches(body):
            return _csss_error("1002", "sign error")
        page_no, page_size = body.get("page_no"), body.get("page_size")
        if (
            not isinstance(page_no, int)
            or isinstance(page_no, bool)
            or page_no < 1
            or not isinstance(page_size, int)
            or isinstance(page_size, bool)
            or page_size < 1
        ):
            return _csss_error("1004", "page_no and page_size must be integers >= 1")
        records: SandboxList | list[Record] = self.data.package_orders
        filters = {
            "device_id": "device_id",
            "order_id": "orderCode",
            "order_status": "orderStatus",
            "order_type": "buyType",
        }
        wanted = {key: body[param] for param, key in filters.items() if body.get(param)}
        if wanted:
            records = [
                r
                for r in self.data.package_orders._span(0, len(records))
                if all(r.get(k) == v for k, v in wanted.items())
            ]
        page = await self._page("package_orders", records, page_no, page_size)
        english = request.headers.get("Accept-Language", "").lower().startswith("en")
        data: dict[str, Any] = {
            "page": {
                "cur_page_no": page_no,
                "page_size": page_size,
                "total_count": page["total"],
                "total_pages": page["pages"],
            },
            "package_order": page["items"],
            "package_order_num": len(page["items"]),
        }
        # The API does not document how it signs answers; the sandbox signs them as requests are.
        data["sign"] = signature(data, SANDBOX_SECRET)
        return _json_response(
            {
                "code": "0000",
                "data": data,
                "message": "success" if english else "成功",
                "success": True,
            }
        )
