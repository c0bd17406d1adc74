"""Section 7: client CPU per page after 1,000 token renewals, beside a fresh client.

A client masks its secrets, tokens included, in every text it makes (a page's request id,
every error). A client that runs for weeks renews its token hundreds of times; this section
checks that it costs what a new one costs. The sandbox runs in its own process and issues a
new access and refresh token on every grant. One client first renews 1,000 times through the
token endpoint (refresh grants, as three weeks of 30-minute tokens would), the CPU of each
renewal recorded; then it and a fresh client read the same small pages (10 orders, so the
per-page work weighs most), alternating, with a token that outlasts the measurement. Client
CPU is ``time.process_time()`` of this process.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

from _server import ServerSpec, server_process

from yeastar_csss_async import YeastarPartnerClient
from yeastar_csss_async.sandbox import SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET

RENEWALS = 1000
TARGET = 1.10
"""CPU per page after the renewals, at most this many times a fresh client's."""
GROWTH_TARGET = 1.5
"""CPU of the last renewals, at most this many times that of the first (a renewal is an HTTP
request; what it does for the redactor must not grow with the tokens seen before)."""


async def _read_all(client: YeastarPartnerClient, page_size: int) -> tuple[float, int]:
    started = time.process_time()
    pages = 0
    async with client.iter_order_pages(page_size=page_size) as stream:
        async for _ in stream:
            pages += 1
    return time.process_time() - started, pages


async def renewals_benchmark(quick: bool) -> dict[str, Any]:
    """CPU per page of a fresh client and of one after :data:`RENEWALS` renewals; CPU per
    renewal at the start and at the end of the renewals."""
    page_size, pages = 10, 200 if quick else 500
    repeats = 5 if quick else 9
    spec = ServerSpec("sandbox", pages * page_size, page_size)
    with server_process(spec) as server:
        options: dict[str, Any] = {"base_url": server.base_url, "max_concurrency": 8}
        fresh = YeastarPartnerClient(SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET, **options)
        renewed = YeastarPartnerClient(SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET, **options)
        async with fresh, renewed:
            await fresh.get_orders_page(1, page_size)
            await renewed.get_orders_page(1, page_size)
            renewal_cpu = []
            for _ in range(RENEWALS):
                token = renewed._tokens.current()
                assert token is not None
                started = time.process_time()
                await renewed._tokens.rejected(token)  # a 401's renewal: a refresh grant
                renewal_cpu.append(time.process_time() - started)
            assert renewed.token_requests == RENEWALS + 1
            per_page: dict[str, list[float]] = {"fresh": [], "renewed": []}
            counts = set()
            server.mark()
            wall_started = time.monotonic()
            client_cpu_started = time.process_time()
            for repeat in range(repeats):
                order = [("fresh", fresh), ("renewed", renewed)]
                for name, client in order if repeat % 2 == 0 else order[::-1]:
                    cpu, read = await _read_all(client, page_size)
                    counts.add(read)
                    per_page[name].append(cpu / read)
            usage = server.usage()
            client_share = (time.process_time() - client_cpu_started) / (
                time.monotonic() - wall_started
            )
            assert len(counts) == 1, counts  # both read the same pages every time
            pages = counts.pop()
    window = 50
    return {
        "pages": pages,
        "page_size": page_size,
        "repeats": repeats,
        "renewals": RENEWALS,
        "per_page_us": {name: [v * 1e6 for v in values] for name, values in per_page.items()},
        "renewal_us": {
            "first": statistics.median(renewal_cpu[:window]) * 1e6,
            "last": statistics.median(renewal_cpu[-window:]) * 1e6,
            "window": window,
        },
        "server_share": usage.share,
        "client_share": client_share,
    }


def renewals_section(result: dict[str, Any]) -> tuple[list[str], list[tuple[str, str, str, str]]]:
    """The section's markdown lines and its summary rows."""
    fresh = statistics.median(result["per_page_us"]["fresh"])
    renewed = statistics.median(result["per_page_us"]["renewed"])
    ratio = renewed / fresh
    first, last = result["renewal_us"]["first"], result["renewal_us"]["last"]
    lines = [
        f"## 7. Client CPU per page after {result['renewals']:,} token renewals",
        "",
        f"{result['pages']} pages of {result['page_size']} orders from the sandbox in its own "
        f"process, {result['repeats']} repeats alternating, medians (min-max).",
        "",
        "| client | CPU per page (us) |",
        "|---|---:|",
    ]
    for name, label in (("fresh", "fresh"), ("renewed", f"after {result['renewals']} renewals")):
        values = result["per_page_us"][name]
        lines.append(
            f"| {label} | {statistics.median(values):,.0f} "
            f"({min(values):,.0f}-{max(values):,.0f}) |"
        )
    window = result["renewal_us"]["window"]
    lines += [
        "",
        f"While the pages were read, the client used {result['client_share']:.0%} of a core "
        f"and the sandbox {result['server_share']:.0%} (its own process): the client is what "
        "is measured."
        + (
            " **!!! The server may have set the pace. !!!**" if result["server_share"] > 0.8 else ""
        ),
        "",
        f"CPU per renewal (median of {window}): the first {window} {first:,.0f} us, "
        f"the last {window} {last:,.0f} us.",
    ]
    ok = ratio <= TARGET
    rows = [
        (
            f"CPU per page after {result['renewals']} renewals / fresh",
            f"{ratio:.2f}",
            f"<= {TARGET}",
            "yes" if ok else "**no**",
        ),
        (
            f"CPU per renewal, last {window} / first {window}",
            f"{last / first:.2f}",
            f"<= {GROWTH_TARGET} (no growth)",
            "yes" if last / first <= GROWTH_TARGET else "**no**",
        ),
    ]
    return lines, rows
