"""Servers in their own process, and how much CPU they use.

Two kinds run in a spawned child process, so their CPU never counts against the client:

* ``pages``: a minimal aiohttp app serving page bodies rendered before it reports ready; a
  request only looks its bytes up by ``pageNo`` (plus optional latency and deterministic
  faults). This is the lightest server we can write, so a client measured against it is
  measured, not the server.
* ``sandbox``: the package's simulated portal (it renders every page as it is asked for).

The parent talks to the child over a pipe, answered by a thread in the child: ``stats()``
returns the child's ``time.process_time()`` and ``time.monotonic()`` with its counters, so the
server's CPU share over a run is (CPU seconds) / (wall seconds), measured in the server itself.
A sandbox child also answers ``sandbox_stats()``: its peak requests in flight and token
grants (read on its event loop), so a harness can check a fleet's shared limits.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import multiprocessing
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

from _pages import BEARER, all_pages, error_body, page_body, token_body
from aiohttp import web

from yeastar_csss_async.sandbox import Sandbox, SandboxConfig

TOKEN_PATH = "/auth/openapi/v1/oauth/token"
ORDERS_PATH = "/order/openapi/order/v1/page"
MAX_FAULTS_IN_A_ROW = 3
"""A page fails at most this many times in a row, so the default RetryPolicy (5 attempts)
always gets it in the end: the fault run measures waiting, never a failed export."""
SERVER_BOUND_SHARE = 0.8
"""Above this share of one core, the server may be what limits the run."""


@dataclass(frozen=True)
class ServerSpec:
    """What the child serves. ``kind`` is ``"pages"`` or ``"sandbox"``."""

    kind: str
    orders: int
    page_size: int = 100
    latency: float = 0.0
    fault_rate: float = 0.0
    sandbox: dict[str, Any] = field(default_factory=dict)
    client_id: str = ""
    """Sandbox only: the Yeastar client id it accepts instead of ``SANDBOX_CLIENT_ID``
    (patched in the child, which serves one sandbox), so that several sandbox processes are
    several accounts to a coordinator, which knows an account by its client id."""


@dataclass(frozen=True)
class Usage:
    """What the server did between two ``stats()`` marks."""

    cpu: float
    wall: float
    requests: int
    faults: int

    @property
    def share(self) -> float:
        """CPU seconds per wall second: 1.0 is one core kept busy."""
        return self.cpu / self.wall if self.wall > 0 else 0.0


class PageServer:
    """Pre-rendered order pages, a fixed token, optional latency and deterministic faults."""

    def __init__(self, spec: ServerSpec) -> None:
        self.spec = spec
        self.pages = all_pages(spec.orders, spec.page_size)
        self.extra = {(1, 1): page_body(spec.orders, 1, 1)}  # a client's warm-up request
        self.token = token_body()
        self.denied = error_body("invalid_token", 401, "the access token is missing")
        self.failed = error_body("internal_error", 500, "injected fault")
        self.requests = 0
        self.faults = 0
        self.fault_seed = 0
        self.attempts: Counter[int] = Counter()

    def reset(self, fault_seed: int) -> None:
        """Forget the attempts seen, and pick the faults of the next run."""
        self.attempts.clear()
        self.fault_seed = fault_seed

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post(TOKEN_PATH, self.answer_token)
        app.router.add_get(ORDERS_PATH, self.answer_page)
        return app

    async def answer_token(self, request: web.Request) -> web.Response:
        self.requests += 1
        return web.Response(body=self.token, content_type="application/json")

    async def answer_page(self, request: web.Request) -> web.Response:
        self.requests += 1
        if request.headers.get("Authorization") != BEARER:
            return web.Response(body=self.denied, status=401, content_type="application/json")
        page_no = int(request.query.get("pageNo", "1"))
        page_size = int(request.query.get("pageSize", "25"))
        if self.spec.latency:
            await asyncio.sleep(self.spec.latency)
        if page_size == self.spec.page_size:
            body = self.pages.get(page_no)
            if self.spec.fault_rate:
                fault = self.fault(page_no)
                if fault is not None:
                    return fault
        else:
            body = self.extra.get((page_no, page_size))
        if body is None:  # not asked for by the contenders: render it now
            body = self.extra.setdefault(
                (page_no, page_size), page_body(self.spec.orders, page_no, page_size)
            )
        return web.Response(body=body, content_type="application/json")

    def fault(self, page_no: int) -> web.Response | None:
        """A transient fault, decided by (seed, page, attempt) alone: both modes of a run
        see the same ones. 503 carries no Retry-After; 500 is a Yeastar error envelope."""
        self.attempts[page_no] += 1
        attempt = self.attempts[page_no]
        if attempt > MAX_FAULTS_IN_A_ROW:
            return None
        digest = hashlib.blake2b(
            f"{self.fault_seed}:{page_no}:{attempt}".encode(), digest_size=8
        ).digest()
        draw = int.from_bytes(digest) / 2**64
        if draw >= self.spec.fault_rate:
            return None
        self.faults += 1
        if digest[0] & 1:
            return web.Response(
                status=503,
                content_type="text/html",
                text="<html><body><h1>503 Service Unavailable</h1></body></html>",
            )
        return web.Response(body=self.failed, status=500, content_type="application/json")


# --- the child process ----------------------------------------------------------------------


async def _serve(spec: ServerSpec, conn: Connection) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    pages: PageServer | None = None
    sandbox: Sandbox | None = None
    if spec.kind == "pages":
        pages = PageServer(spec)
        runner = web.AppRunner(pages.app(), access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
    else:
        if spec.client_id:
            from yeastar_csss_async.sandbox import _app

            _app.SANDBOX_CLIENT_ID = spec.client_id  # type: ignore[misc]
        config = SandboxConfig(orders=spec.orders, latency=spec.latency, **spec.sandbox)
        sandbox = Sandbox(config)
        port = int((await sandbox.start()).rsplit(":", 1)[1])

    def counters() -> tuple[int, int]:
        if pages is not None:
            return pages.requests, pages.faults
        assert sandbox is not None
        return sandbox.stats.requests, sum(sandbox.stats.faults.values())

    async def reset(seed: int) -> None:
        if pages is not None:
            pages.reset(seed)

    async def sandbox_stats(reset: bool) -> dict[str, Any]:
        assert sandbox is not None
        stats = sandbox.stats
        found = {
            "requests": stats.requests,
            "token_requests": stats.token_requests,
            "grants": dict(stats.grants),
            "peak_in_flight": stats.peak_in_flight,
            "faults": dict(stats.faults),
        }
        if reset:
            stats.reset()
        return found

    def answer() -> None:  # a thread: the event loop never waits on the pipe
        while True:
            message = conn.recv()
            if message == "stats":
                requests, faults = counters()
                conn.send((time.process_time(), time.monotonic(), requests, faults))
            elif message[0] == "reset":
                asyncio.run_coroutine_threadsafe(reset(message[1]), loop).result()
                conn.send("ok")
            elif message[0] == "sandbox_stats":
                conn.send(
                    asyncio.run_coroutine_threadsafe(sandbox_stats(message[1]), loop).result()
                )
            else:
                loop.call_soon_threadsafe(stop.set)
                return

    conn.send(port)
    threading.Thread(target=answer, daemon=True).start()
    await stop.wait()
    if sandbox is not None:
        await sandbox.close()
    else:
        await runner.cleanup()


def _child(spec: ServerSpec, conn: Connection) -> None:
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(spec, conn))


# --- the parent's handle ----------------------------------------------------------------------


class ServerHandle:
    """The parent's side: the base URL, CPU marks, fault resets."""

    def __init__(self, base_url: str, conn: Connection) -> None:
        self.base_url = base_url
        self._conn = conn
        self._mark: tuple[float, float, int, int] | None = None

    def mark(self) -> None:
        """Start measuring (see :meth:`usage`)."""
        self._conn.send("stats")
        self._mark = self._conn.recv()

    def usage(self) -> Usage:
        """What the server did since :meth:`mark`."""
        assert self._mark is not None
        self._conn.send("stats")
        now = self._conn.recv()
        return Usage(*(b - a for a, b in zip(self._mark, now, strict=True)))

    def reset_faults(self, seed: int) -> None:
        """Page servers: forget attempts seen and draw faults from ``seed`` from now on."""
        self._conn.send(("reset", seed))
        self._conn.recv()

    def sandbox_stats(self, *, reset: bool = False) -> dict[str, Any]:
        """Sandboxes: requests, token requests, ``grants`` by grant type and
        ``peak_in_flight`` (business requests) since the last reset; ``reset`` zeroes them
        after reading."""
        self._conn.send(("sandbox_stats", reset))
        found: dict[str, Any] = self._conn.recv()
        return found


@contextlib.contextmanager
def server_process(spec: ServerSpec) -> Iterator[ServerHandle]:
    """Start the server in a spawned process; yield its handle once it listens."""
    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    process = context.Process(target=_child, args=(spec, child), daemon=True)
    process.start()
    try:
        if not parent.poll(300):
            raise RuntimeError("the benchmark server did not start")
        yield ServerHandle(f"http://127.0.0.1:{parent.recv()}", parent)
    finally:
        with contextlib.suppress(OSError):
            parent.send("stop")
        process.join(10)
        if process.is_alive():
            process.terminate()
            process.join(5)
