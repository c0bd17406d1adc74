"""Sections 3 and 4: wall time when the network, not the CPU, sets the pace.

Section 3 puts ``iter_orders(ordered=True)`` beside ``ordered=False`` on a pre-rendered server
with latency and deterministic transient faults (both modes of a repeat see the same faults,
counted and printed). Section 4 puts the library at several concurrencies beside the best loop
a user writes by hand and the ideal, once against the sandbox and once against the
pre-rendered server, each with the server's CPU share printed: if the server were what kept
a run from the ideal, its share would be near 100% of a core.
"""

from __future__ import annotations

import functools
import math
import statistics
from collections.abc import Awaitable, Callable
from typing import Any

from _contenders import (
    Run,
    decode_dicts,
    get_token,
    library_client,
    library_count,
    raw_concurrent,
    raw_sequential,
    raw_session,
    timed,
    warm,
)
from _server import ServerHandle, ServerSpec, server_process

Work = Callable[[], Awaitable[Any]]


async def ordered_vs_unordered(quick: bool) -> dict[str, Any]:
    """Section 3: the same faults, the same latency; ordered and unordered alternate."""
    total = 100_000 if quick else 200_000
    page_size, concurrency, latency, fault_rate = 100, 8, 0.05, 0.10
    repeats = 3
    spec = ServerSpec("pages", total, page_size, latency=latency, fault_rate=fault_rate)
    runs: dict[str, list[Run]] = {"ordered": [], "unordered": []}
    with server_process(spec) as server:
        for repeat in range(repeats):
            modes = ["ordered", "unordered"]
            if repeat % 2:
                modes.reverse()
            for mode in modes:
                async with library_client(server.base_url, concurrency) as client:
                    await warm(client)
                    server.reset_faults(seed=repeat)  # the same faults for both modes
                    work = functools.partial(
                        library_count, client, page_size=page_size, ordered=mode == "ordered"
                    )
                    runs[mode].append(await timed(server, work, total))
    pages = math.ceil(total / page_size)
    return {
        "orders": total,
        "pages": pages,
        "latency": latency,
        "fault_rate": fault_rate,
        "concurrency": concurrency,
        "repeats": repeats,
        "ideal": pages / concurrency * latency,
        "wall": {m: statistics.median(r.wall for r in rs) for m, rs in runs.items()},
        "spread": {m: (min(r.wall for r in rs), max(r.wall for r in rs)) for m, rs in runs.items()},
        "faults": {m: [r.server.faults for r in rs] for m, rs in runs.items()},
        "server_share_max": max(r.server.share for rs in runs.values() for r in rs),
    }


LEVELS = (1, 4, 8, 16, 32)
LATENCY_PAGES, LATENCY_PAGE_SIZE, LATENCY = 200, 10, 0.05


async def latency_bound(quick: bool, kind: str) -> dict[str, Any]:
    """Section 4 against one server kind (``"sandbox"`` or ``"pages"``)."""
    total = LATENCY_PAGES * LATENCY_PAGE_SIZE - 5  # exactly 200 pages, the last one short
    levels = LEVELS[1:] if quick and kind == "pages" else LEVELS  # c=1 takes 20 s
    repeats = 2 if quick else 3
    runs: dict[str, list[Run]] = {f"{who}{c}": [] for c in levels for who in ("lib", "raw")}
    with server_process(ServerSpec(kind, total, LATENCY_PAGE_SIZE, latency=LATENCY)) as server:
        for repeat in range(repeats):
            for c in levels:
                if quick and c == 1 and repeat:
                    continue  # --quick: concurrency 1 once
                contenders = [("lib", library_at), ("raw", raw_at)]
                if repeat % 2:
                    contenders.reverse()
                for who, run in contenders:
                    runs[f"{who}{c}"].append(await run(server, c, total))
    return {
        "kind": kind,
        "pages": LATENCY_PAGES,
        "latency": LATENCY,
        "repeats": repeats,
        "c1_once": quick and 1 in levels,
        "levels": list(levels),
        "ideal": {c: ideal(c) for c in levels},
        "wall": {k: statistics.median(r.wall for r in rs) for k, rs in runs.items()},
        "server_share_max": {k: max(r.server.share for r in rs) for k, rs in runs.items()},
        "client_share": {
            k: statistics.median(r.client_share for r in rs) for k, rs in runs.items()
        },
    }


def ideal(concurrency: int) -> float:
    """Page 1 alone (to learn the total), then the other pages ``concurrency`` at a time."""
    return (1 + math.ceil((LATENCY_PAGES - 1) / concurrency)) * LATENCY


async def library_at(server: ServerHandle, concurrency: int, total: int) -> Run:
    async with library_client(server.base_url, concurrency) as client:
        await warm(client)
        return await timed(
            server, lambda: library_count(client, page_size=LATENCY_PAGE_SIZE), total
        )


async def raw_at(server: ServerHandle, concurrency: int, total: int) -> Run:
    """The best hand-written loop at this concurrency (at 1: the sequential loop)."""
    base_url = server.base_url
    async with raw_session(concurrency) as session:
        token = await get_token(session, base_url)
        if concurrency == 1:
            work: Work = functools.partial(
                raw_sequential, session, base_url, token, decode_dicts, page_size=LATENCY_PAGE_SIZE
            )
        else:
            work = functools.partial(
                raw_concurrent,
                session,
                base_url,
                token,
                decode_dicts,
                page_size=LATENCY_PAGE_SIZE,
                concurrency=concurrency,
            )
        return await timed(server, work, total)
