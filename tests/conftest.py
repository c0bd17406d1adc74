"""Shared fixtures, and the aioresponses shim for aiohttp >= 3.14 (helpers that tests import
live in ``tests/_support``).

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

import inspect
import itertools
import logging
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any

import aiohttp
import aioresponses.core
import pytest

from yeastar_csss_async import CSSSClient, YeastarPartnerClient

from tests._support.clients import FAST_RETRY
from tests._support.logs import ListHandler
from tests._support.postgres_server import PostgresServer, start_server
from tests._support.redis_server import DATABASES, RedisServer, start_redis

if TYPE_CHECKING:
    from yeastar_csss_async.sandbox import Sandbox, SandboxConfig


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

    # setattr: the module's own name for the class (imported from aiohttp) is what it uses
    setattr(aioresponses.core, "ClientResponse", CompatClientResponse)  # noqa: B010
    setattr(aioresponses.core, "_yca_patched", True)  # noqa: B010


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
