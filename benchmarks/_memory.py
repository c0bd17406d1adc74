"""Section 5: peak traced memory of a process that streams a very long list.

The sandbox runs in its own process and computes each page as it is asked for
(``generated=True``), so nothing of the server is traced here; tracemalloc traces only this
process while it consumes ``iter_orders()`` with default options (page size 100,
``ordered=True``, ``dedupe=True``), and then with ``dedupe=False``.
"""

from __future__ import annotations

import gc
import tracemalloc
from typing import Any

from _contenders import warm
from _server import ServerSpec, server_process

from yeastar_csss_async import YeastarPartnerClient
from yeastar_csss_async.sandbox import SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET


async def peak_memory(quick: bool) -> dict[str, Any]:
    """Peak MiB while streaming every order, default options, then ``dedupe=False``.

    Always 1,000,000 orders, also with ``--quick``: what dedupe keeps does not grow linearly
    (old keys are compacted), so a shorter run cannot be scaled up."""
    total = 1_000_000
    peaks: dict[str, float] = {}
    spec = ServerSpec("sandbox", total, sandbox={"generated": True})
    with server_process(spec) as server:
        for dedupe in (True, False):
            async with YeastarPartnerClient(
                SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET, base_url=server.base_url
            ) as client:
                await warm(client)
                gc.collect()
                server.mark()
                tracemalloc.start()
                try:
                    # the defaults, as a user writes them; then only dedupe=False
                    orders = client.iter_orders() if dedupe else client.iter_orders(dedupe=False)
                    count = 0
                    async for _ in orders:
                        count += 1
                    _, peak = tracemalloc.get_traced_memory()
                finally:
                    tracemalloc.stop()
                usage = server.usage()
            if count != total:
                raise RuntimeError(f"expected {total} orders, got {count}")
            peaks[f"dedupe={dedupe}"] = peak / 2**20
            peaks[f"server_share dedupe={dedupe}"] = usage.share
    return {"orders": total, "peaks": peaks}
