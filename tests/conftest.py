"""Shared fixtures, and the aioresponses shim for aiohttp >= 3.14.

aioresponses 0.7.9 builds ``aiohttp.ClientResponse`` without the ``stream_writer`` argument
that aiohttp 3.14 made required (aioresponses issue #289; fix proposed in its PR #288, not
released as of 2026-11). Until a release carries the fix, ``_patch_aioresponses`` swaps in a
``ClientResponse`` subclass that supplies a finished stream writer (the request was "sent"
already, so aiohttp only reads its ``output_size``). It is applied only when aiohttp's
signature asks for the argument, so it switches itself off on older aiohttp, and it is
harmless once aioresponses passes the argument itself. Remove it when aioresponses > 0.7.9
supports aiohttp 3.14.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import itertools
import json
import logging
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
import aioresponses.core
import pytest
from aiohttp import web

from yeastar_csss_async import CSSSClient, RetryPolicy, YeastarPartnerClient

from _postgres import PostgresServer, start_server
from _redis import DATABASES, RedisServer, start_redis

if TYPE_CHECKING:
    from yeastar_csss_async.sandbox import Sandbox, SandboxConfig

DATA = Path(__file__).parent / "data"

FAST_RETRY = RetryPolicy(max_attempts=5, initial_backoff=0.001, max_backoff=0.01)
"""Retries that back off for milliseconds, so fault tests stay quick."""


class _FinishedStreamWriter:
    output_size = 0


def _patch_aioresponses() -> None:
    needs_writer = "stream_writer" in inspect.signature(aiohttp.ClientResponse.__init__).parameters
    if not needs_writer or getattr(aioresponses.core, "_yca_patched", False):
        return

    class CompatClientResponse(aiohttp.ClientResponse):
        def __init__(self, method: str, url: Any, **kwargs: Any) -> None:
            kwargs.setdefault("stream_writer", _FinishedStreamWriter())
            super().__init__(method, url, **kwargs)

    aioresponses.core.ClientResponse = CompatClientResponse  # type: ignore[misc]
    aioresponses.core._yca_patched = True  # type: ignore[attr-defined]


_patch_aioresponses()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--run-slow",
        action="store_true",
        help="also run the tests marked slow (scale tests: a million ids, a million orders...)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip the tests marked ``slow`` unless ``--run-slow`` is given (.ci/run gives it)."""
    if config.getoption("--run-slow"):
        return
    skip = pytest.mark.skip(reason="slow (a scale test): run it with --run-slow, as CI does")
    for item in items:
        if item.get_closest_marker("slow") is not None:
            item.add_marker(skip)


def load_seed(name: str) -> Any:
    """The JSON example of a seed page, as text decoded by the stdlib (tests/data)."""
    return json.loads((DATA / name).read_text(encoding="utf-8"))


def seed_text(name: str) -> str:
    """The JSON example of a seed page, byte for byte as the seed shows it."""
    return (DATA / name).read_text(encoding="utf-8")


@pytest.fixture
def mocked() -> Iterator[aioresponses.aioresponses]:
    """aioresponses for unit-level cases; loopback passes through to real servers."""
    with aioresponses.aioresponses(passthrough=["http://127.0.0.1"]) as mock:
        yield mock


@pytest.fixture
def sandbox_config() -> SandboxConfig:
    """Override in a test module (or parametrize) to change the sandbox."""
    from yeastar_csss_async.sandbox import SandboxConfig

    return SandboxConfig()


@pytest.fixture
async def sandbox(sandbox_config: SandboxConfig) -> AsyncIterator[Sandbox]:
    """A real simulated portal on 127.0.0.1, random port."""
    from yeastar_csss_async.sandbox import Sandbox

    async with Sandbox(sandbox_config) as server:
        yield server


@pytest.fixture
async def yeastar(sandbox: Sandbox) -> AsyncIterator[YeastarPartnerClient]:
    """A Yeastar client of the sandbox, with quick retries."""
    from yeastar_csss_async.sandbox import SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET

    async with YeastarPartnerClient(
        SANDBOX_CLIENT_ID,
        SANDBOX_CLIENT_SECRET,
        base_url=sandbox.base_url,
        retry=FAST_RETRY,
        timeout=10.0,
    ) as client:
        yield client


@pytest.fixture
async def csss(sandbox: Sandbox) -> AsyncIterator[CSSSClient]:
    """A CSSS client of the sandbox, with quick retries."""
    from yeastar_csss_async.sandbox import SANDBOX_ACCESS_CODE, SANDBOX_SECRET

    async with CSSSClient(
        SANDBOX_ACCESS_CODE,
        SANDBOX_SECRET,
        base_url=sandbox.base_url,
        retry=FAST_RETRY,
        timeout=10.0,
    ) as client:
        yield client


class ListHandler(logging.Handler):
    """Collects every formatted record, with its arguments and exception text."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.texts: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        text = self.format(record)
        self.texts.append(text + " " + repr(record.__dict__))


@pytest.fixture
def debug_log() -> Iterator[ListHandler]:
    """Every record of the library's logger at DEBUG, as text."""
    handler = ListHandler()
    logger = logging.getLogger("yeastar_csss_async")
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)


def client_side_tasks() -> set[asyncio.Task[object]]:
    """Tasks of this loop other than the current one and the sandbox server's own handlers
    (which share the loop in end-to-end tests)."""
    current = asyncio.current_task()
    return {
        task
        for task in asyncio.all_tasks()
        if task is not current
        and not task.get_coro().__qualname__.startswith(  # type: ignore[union-attr]
            ("RequestHandler.", "Server.", "BaseSelectorEventLoop._accept_connection")
        )
    }


@contextlib.asynccontextmanager
async def serve_app(app: web.Application) -> AsyncIterator[str]:
    """Serve a hand-written aiohttp app on 127.0.0.1 (free port); yield its base URL."""
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


@contextlib.asynccontextmanager
async def serve_raw(answer: bytes, *, hold: bool = False) -> AsyncIterator[str]:
    """A TCP server on 127.0.0.1 that reads a request head and writes ``answer`` as is (a
    malformed HTTP response, a lying Content-Length...); with ``hold`` it then keeps the
    connection open until the client leaves. Yields its base URL."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(answer)
            await writer.drain()
            if hold:
                await reader.read()  # until the client closes
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.close()
        await server.wait_closed()


# -- PostgreSQL (a throwaway cluster per session; see tests/_postgres.py) ----------------------


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A real PostgreSQL server on 127.0.0.1 for the whole session, with a password-protected
    role: ``.host``, ``.port``, ``.user``, ``.password``, ``.database``, ``.sqlalchemy_url``
    (``postgresql+asyncpg://``), ``.dsn`` (``postgresql://``). Skips locally and fails under
    ``CI=true`` when PostgreSQL cannot be started; stopped and removed at the end."""
    server = start_server()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """SQLAlchemy URL (``postgresql+asyncpg://``) of a fresh empty database ``test_<uuid>``,
    owned by the test role and dropped after the test, so tests never see each other's
    tables. Dispose your engines (``await engine.dispose()``) before the test ends."""
    with postgres_server.temporary_database() as name:
        yield postgres_server.sqlalchemy_url_for(name)


# -- Redis (one throwaway server per session; see tests/_redis.py) -----------------------------


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """A real redis-server on 127.0.0.1 for the whole session (no persistence): ``.port``,
    ``.url(db)``, ``.command(...)``, and ``.stop()``/``.kill()``/``.start()``/``.restart()``
    for tests that take Redis away (``redis_url`` starts it again for the next test). Skips
    locally and fails under ``CI=true`` when redis-server is missing."""
    server = start_redis()
    try:
        yield server
    finally:
        server.close()


_redis_databases = itertools.count()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """URL of an empty logical database of ``redis_server``, a different one per test (so a
    straggler of an earlier test cannot write into this one). Close your clients
    (``await client.aclose()``) before the test ends."""
    redis_server.ensure_running()
    db = next(_redis_databases) % DATABASES
    redis_server.command("FLUSHDB", db=db)
    return redis_server.url(db)


class OneRateLimit:
    """A sandbox ``intercept`` that answers one orders page with 429 and ``Retry-After:
    pause``, and records when every other orders request reached the handler (``time.
    monotonic()``), to check who waited out the pause."""

    def __init__(self, pause: float, page_no: int) -> None:
        self.pause = pause
        self.page_no = str(page_no)
        self.limited: list[float] = []  # when the 429 was answered (once)
        self.arrivals: list[float] = []

    async def __call__(self, request: web.Request) -> web.StreamResponse | None:
        from yeastar_csss_async.sandbox._app import ORDERS_PATH

        if request.path != ORDERS_PATH:
            return None
        now = time.monotonic()
        if not self.limited and request.query.get("pageNo") == self.page_no:
            self.limited.append(now)
            return web.json_response(
                {"code": "too_many_requests"}, status=429, headers={"Retry-After": str(self.pause)}
            )
        self.arrivals.append(now)
        return None

    def during(self, margin: float) -> list[float]:
        """Arrivals after the 429 and before the pause's end, less ``margin`` seconds."""
        start = self.limited[0]
        return [t for t in self.arrivals if start < t < start + self.pause - margin]
