"""Sections 1 and 2: the client's CPU per order, end to end and in the decode path alone.

How we know the client is what is measured (section 1): the server is the pre-rendered
``pages`` server in its own process; its CPU share is measured in that process for every run
and printed. On the CI machine type (2 cores) it stays well under one core (about 30-50% while
raw dicts run at ~340,000 records/s, 20-30% for the slower contenders) while the client
process sits at 100% of a core (client CPU / wall is printed too). A run in which the server
passes 80% of a core is flagged SERVER-BOUND in the output. Other work on the machine shows
up as a client CPU / wall well under 100%: rerun then.
"""

from __future__ import annotations

import json
import statistics
import timeit
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

import attrs
from _contenders import (
    Run,
    decode_dicts,
    decode_hand_attrs,
    get_token,
    library_client,
    library_list,
    raw_concurrent,
    raw_session,
    timed,
    warm,
)
from _pages import page_body
from _server import ServerSpec, server_process

from yeastar_csss_async import Order

CONTENDERS = ("raw dicts", "raw + hand attrs", "library")


def library_decode(body: bytes) -> Sequence[Order]:
    """The library's own decode path for one page, as ``get_orders_page`` runs it (the whole
    answer to a page of models; the general path only when something does not fit)."""
    from yeastar_csss_async._yeastar_protocol import decode_page_answer

    return decode_page_answer(200, body, Order, page_no=1, page_size=100).items


async def cpu_comparison(quick: bool) -> dict[str, Any]:
    """Section 1: the same pages, the same concurrency, each contender's client CPU."""
    total, page_size, concurrency = 30_000, 100, 8
    repeats = 5 if quick else 9
    runs: dict[str, list[Run]] = {name: [] for name in CONTENDERS}
    with server_process(ServerSpec("pages", total, page_size)) as server:
        base_url = server.base_url
        async with (
            raw_session(concurrency) as session,
            library_client(base_url, concurrency) as client,
        ):
            await warm(client)
            token = await get_token(session, base_url)
            work = {
                "raw dicts": lambda: raw_concurrent(
                    session,
                    base_url,
                    token,
                    decode_dicts,
                    page_size=page_size,
                    concurrency=concurrency,
                ),
                "raw + hand attrs": lambda: raw_concurrent(
                    session,
                    base_url,
                    token,
                    decode_hand_attrs,
                    page_size=page_size,
                    concurrency=concurrency,
                ),
                "library": lambda: library_list(client, page_size=page_size),
            }
            for name in CONTENDERS:  # warm-up round, not counted
                await timed(server, work[name], total)
            for repeat in range(repeats):
                turn = repeat % len(CONTENDERS)  # who goes first rotates
                for name in CONTENDERS[turn:] + CONTENDERS[:turn]:
                    runs[name].append(await timed(server, work[name], total))
    return {
        "orders": total,
        "page_size": page_size,
        "concurrency": concurrency,
        "repeats": repeats,
        "summary": {n: summarize(r) for n, r in runs.items()},
    }


def summarize(runs: list[Run]) -> dict[str, float]:
    """Medians and spread of one contender's runs (per-order CPU in microseconds)."""
    per_order = [r.cpu / r.records * 1e6 for r in runs]
    shares = [r.server.share for r in runs]
    return {
        "us": statistics.median(per_order),
        "us_min": min(per_order),
        "us_max": max(per_order),
        "wall": statistics.median(r.wall for r in runs),
        "records_per_s": statistics.median(r.records / r.wall for r in runs),
        "client_share": statistics.median(r.client_share for r in runs),
        "server_share": statistics.median(shares),
        "server_share_max": max(shares),
    }


def same_values(body: bytes) -> bool:
    """Whether the hand-written class holds exactly what the library's Order holds."""
    library = [attrs.asdict(o) for o in library_decode(body)]
    hand = [attrs.asdict(o) for o in decode_hand_attrs(body)[1]]
    return library == hand


def decode_micro(quick: bool) -> dict[str, Any]:
    """Section 2: microseconds per order to decode one pre-rendered page of 100 orders."""
    body = page_body(100_000, 1, 100)
    records = 100
    repeat, number = (15, 30) if quick else (25, 60)
    work: dict[str, Callable[[], object]] = {
        "library: decode_page_answer (what get_orders_page runs)": lambda: library_decode(body),
        "hand-written attrs (json.loads(parse_float=Decimal) + HandOrder)": lambda: (
            decode_hand_attrs(body)
        ),
        "json.loads": lambda: json.loads(body),
        "json.loads(parse_float=Decimal)": lambda: json.loads(body, parse_float=Decimal),
    }
    try:
        import msgspec
    except ImportError:
        pass
    else:
        decoder = msgspec.json.Decoder(float_hook=Decimal)
        work["msgspec.json.Decoder(float_hook=Decimal).decode"] = lambda: decoder.decode(body)
    try:
        import orjson
    except ImportError:
        pass
    else:
        work["orjson.loads (floats, not Decimal)"] = lambda: orjson.loads(body)
    results: dict[str, dict[str, float]] = {}
    for name, call in work.items():
        call()  # warm-up
        times = [
            t / number / records * 1e6
            for t in timeit.Timer(call).repeat(repeat=repeat, number=number)
        ]
        results[name] = {"best": min(times), "median": statistics.median(times)}
    return {
        "repeat": repeat,
        "number": number,
        "records": records,
        "us": results,
        "same_values": same_values(body),
    }
