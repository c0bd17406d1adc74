"""An embedded, simulated Yeastar Partner Portal and Linksfield CSSS API on loopback.

It lets newcomers and tests run the real clients with no account::

    async with Sandbox(SandboxConfig(orders=1000, latency=0.05)) as sandbox:
        async with YeastarPartnerClient(SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET,
                                        base_url=sandbox.base_url) as client:
            ...

It answers like the two services as documented (token grants with real expiry, Bearer checks,
paged envelopes, productId validation, CSSS sign and timestamp checks with CSSS error codes),
from a deterministic dataset, and can add latency and transient faults (5xx, 429 with
Retry-After, dropped connections). The credentials are fixed and public: they open nothing
but the sandbox. ``SandboxConfig(revision=r)`` serves the data set ``r`` deterministic steps
later (records added, removed and changed in every list; see :func:`step_counts`), and
``sandbox.data.advance_revision()`` takes a running sandbox one step further.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

from ._app import (
    SANDBOX_ACCESS_CODE,
    SANDBOX_CLIENT_ID,
    SANDBOX_CLIENT_SECRET,
    SANDBOX_SECRET,
    Sandbox,
    SandboxConfig,
    SandboxStats,
)
from ._data import PRODUCT_LINES, SandboxData
from ._revisions import ListChanges, RevisionStep, StepCounts, step_counts

__all__ = [
    "PRODUCT_LINES",
    "SANDBOX_ACCESS_CODE",
    "SANDBOX_CLIENT_ID",
    "SANDBOX_CLIENT_SECRET",
    "SANDBOX_SECRET",
    "ListChanges",
    "RevisionStep",
    "Sandbox",
    "SandboxConfig",
    "SandboxData",
    "SandboxStats",
    "StepCounts",
    "run_sandbox",
    "serve",
    "step_counts",
]


@contextlib.asynccontextmanager
async def serve(
    config: SandboxConfig | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
) -> AsyncIterator[str]:
    """``async with serve() as base_url:`` — the sandbox for as long as the block runs.

    Use :class:`Sandbox` instead when a test needs its stats, data or hooks.
    """
    async with Sandbox(config, host=host, port=port) as sandbox:
        yield sandbox.base_url


async def run_sandbox(
    config: SandboxConfig | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    on_ready: Callable[[Sandbox], None] | None = None,
) -> None:
    """Serve the sandbox until cancelled; ``on_ready`` is called once it listens."""
    async with Sandbox(config, host=host, port=port) as sandbox:
        if on_ready is not None:
            on_ready(sandbox)
        await asyncio.Event().wait()
