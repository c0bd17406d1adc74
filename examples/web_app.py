"""An aiohttp.web service that serves Yeastar orders as JSON, sharing one client.

Try it against the embedded sandbox (no account needed, everything on 127.0.0.1)::

    python examples/web_app.py --sandbox --port 8080
    curl 'http://127.0.0.1:8080/orders?page=2&page_size=3'
    curl 'http://127.0.0.1:8080/orders/count'
    curl 'http://127.0.0.1:8080/orders.jsonl?limit=5'

or against the portal, with ``YEASTAR_CLIENT_ID`` and ``YEASTAR_CLIENT_SECRET`` (and
optionally ``YEASTAR_BASE_URL``) in the environment::

    python examples/web_app.py --port 8080

What it shows:

* one :class:`YeastarPartnerClient` for the app's whole life, opened and closed by a
  ``cleanup_ctx``: every request shares its connection pool, its token and its concurrency
  limit (``max_concurrency`` requests to the portal at most, however many callers);
* records returned with :func:`to_jsonable` (money as strings with their digits, times in
  ISO 8601, enums as their strings);
* a streaming route whose memory stays flat however many orders there are;
* the library's errors mapped to HTTP answers: the portal is this app's upstream, so its
  failures are 502/503/504 with the portal's request id, never a 500 or a 4xx.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

from aiohttp import web

from yeastar_csss_async import (
    APIError,
    AuthenticationError,
    ConfigurationError,
    Order,
    RateLimitError,
    TransportError,
    TransportTimeoutError,
    YeastarCSSSError,
    YeastarPartnerClient,
    to_jsonable,
)
from yeastar_csss_async.sandbox import SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET, Sandbox

log = logging.getLogger("web_app")

CLIENT = web.AppKey("client", YeastarPartnerClient)
"""Where the app keeps its one client (``request.app[CLIENT]`` in a handler)."""
MAX_PAGE_SIZE = 100

ClientFactory = Callable[[], YeastarPartnerClient]


def create_app(make_client: ClientFactory = YeastarPartnerClient.from_env) -> web.Application:
    """The application. ``make_client`` is called once, when the app starts (by default:
    a client configured from the ``YEASTAR_*`` environment variables)."""

    async def client_for_app_lifetime(app: web.Application) -> AsyncIterator[None]:
        # Runs at startup up to `yield`, and the rest at cleanup: the client is closed
        # (its session and any token renewal under way) when the app stops.
        async with make_client() as client:
            app[CLIENT] = client
            yield

    app = web.Application(middlewares=[library_errors])
    app.cleanup_ctx.append(client_for_app_lifetime)
    app.router.add_get("/orders", list_orders)
    app.router.add_get("/orders/count", count_orders)
    app.router.add_get("/orders.jsonl", stream_orders)
    return app


# --- routes ---------------------------------------------------------------------------------


async def list_orders(request: web.Request) -> web.Response:
    """``GET /orders?page=N&page_size=M``: one page of orders, with the page's metadata
    (``items``, ``page_no``, ``page_size``, ``total``, ``total_pages``, ``request_id``)."""
    page_no = query_int(request, "page")
    page_size = query_int(request, "page_size", default=25, maximum=MAX_PAGE_SIZE)
    page = await request.app[CLIENT].get_orders_page(page_no, page_size)
    return web.json_response(to_jsonable(page))


async def count_orders(request: web.Request) -> web.Response:
    """``GET /orders/count``: how many orders the portal holds (one small request)."""
    page = await request.app[CLIENT].get_orders_page(1, 1)
    return web.json_response({"total": page.total, "request_id": page.request_id})


class StreamBroken(Exception):
    """The upstream failed after the answer's status line was sent."""


async def stream_orders(request: web.Request) -> web.StreamResponse:
    """``GET /orders.jsonl?limit=N``: every order (or the first N), one JSON object per
    line, written page by page as the pages arrive."""
    limit = query_int(request, "limit") if "limit" in request.query else None
    client = request.app[CLIENT]
    # `async with`: however this handler ends (done, an error, the caller hanging up),
    # the fetches still in flight are cancelled and awaited.
    async with client.iter_order_pages(limit=limit) as pages:
        # Wait for the first page before answering, so that a failure up front (wrong
        # credentials, the portal down) is still a proper error answer.
        first = await anext(pages, None)
        response = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
        await response.prepare(request)
        try:
            if first is not None:
                await response.write(json_lines(first.items))
                async for page in pages:
                    await response.write(json_lines(page.items))
        except YeastarCSSSError as error:
            # The status line is out already: the one honest way left to say "failed" is
            # to break the connection, so the caller sees a cut stream, not a short list.
            raise StreamBroken(f"orders stream failed: {error}") from error
        await response.write_eof()
    return response


def json_lines(orders: Sequence[Order]) -> bytes:
    """Orders as JSON Lines: one JSON object and a newline each."""
    return b"".join(json.dumps(to_jsonable(order)).encode() + b"\n" for order in orders)


def query_int(
    request: web.Request, name: str, *, default: int = 1, maximum: int | None = None
) -> int:
    """A positive integer query parameter, or a 400 answer that says what is wrong."""
    text = request.query.get(name)
    if text is None:
        return default
    if (
        not (text.isascii() and text.isdigit())
        or int(text) < 1
        or (maximum is not None and int(text) > maximum)
    ):
        upper = f" and at most {maximum}" if maximum is not None else ""
        raise web.HTTPBadRequest(
            text=json.dumps({"error": f"{name} must be an integer >= 1{upper}"}),
            content_type="application/json",
        )
    return int(text)


# --- errors ---------------------------------------------------------------------------------


@web.middleware
async def library_errors(
    request: web.Request,
    handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
) -> web.StreamResponse:
    """Turn the library's errors into JSON error answers (see :func:`error_response`)."""
    try:
        return await handler(request)
    except YeastarCSSSError as error:
        return error_response(error)


def error_response(error: YeastarCSSSError) -> web.Response:
    """How a failure of the portal looks to this app's callers.

    The library has retried already (5xx, 429, timeouts, dropped connections), so what
    reaches here is final for this request. Texts and ``body`` are redacted by the library:
    no secret or token can leak into an answer.
    """
    if isinstance(error, RateLimitError):
        answer = json_error(
            503, "the order service is rate limited; try again later", request_id=error.request_id
        )
        if error.retry_after is not None and math.isfinite(error.retry_after):
            answer.headers["Retry-After"] = str(math.ceil(error.retry_after))
        return answer
    if isinstance(error, AuthenticationError):
        # This app's credentials are wrong or revoked: the caller can do nothing about it.
        log.error("the portal refused this app's credentials: %s", error)
        return json_error(502, "the order service is misconfigured", request_id=error.request_id)
    if isinstance(error, APIError):  # 400, 403, 404, 5xx after retries, business errors
        return json_error(
            502,
            error.message,
            code=error.code,
            request_id=error.request_id,
            upstream_status=error.status,
        )
    if isinstance(error, TransportTimeoutError):
        return json_error(504, "the order service did not answer in time")
    if isinstance(error, TransportError):
        return json_error(502, "the order service cannot be reached")
    log.error("unexpected answer from the portal: %s", error)  # ResponseFormatError
    return json_error(502, "the order service sent an answer this app cannot read")


def json_error(status: int, message: str, **details: str | int | None) -> web.Response:
    """A JSON error answer: ``{"error": message, ...details that are not None}``."""
    body = {"error": message, **{k: v for k, v in details.items() if v is not None}}
    return web.json_response(body, status=status)


# --- running it -----------------------------------------------------------------------------


async def app_with_sandbox() -> web.Application:
    """The app, talking to the embedded sandbox started beside it (on the same event loop,
    on 127.0.0.1): the fixed public sandbox credentials open nothing else."""
    sandbox = Sandbox()
    await sandbox.start()

    def sandbox_client() -> YeastarPartnerClient:
        return YeastarPartnerClient(
            SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET, base_url=sandbox.base_url
        )

    async def stop_sandbox(app: web.Application) -> None:
        await sandbox.close()

    app = create_app(sandbox_client)
    app.on_cleanup.append(stop_sandbox)  # runs after the client's cleanup_ctx closed it
    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve Yeastar orders as JSON over HTTP.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080, help="0 picks a free port")
    parser.add_argument(
        "--sandbox",
        action="store_true",
        help="serve the embedded sandbox's orders (no account needed)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    try:
        # run_app stops on Ctrl-C and SIGTERM, then runs the cleanups (closing the client).
        web.run_app(
            app_with_sandbox() if args.sandbox else create_app(), host=args.host, port=args.port
        )
    except ConfigurationError as error:  # from_env(): a variable is missing
        print(f"web_app: {error}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
