"""Benchmarks: how close the library gets to the ideal, against what a user writes by hand.

    python benchmarks/run.py            # the full run
    python benchmarks/run.py --quick    # under 2 minutes

The sandbox serves from a separate process, so its CPU and memory do not count against the
client. Every figure is a ratio measured in the same run (contenders alternate, medians of
repeats), because these machines are noisy. Results are printed and written to
``benchmarks/results/latest.md``; with matplotlib installed (``pip install -e '.[bench]'``)
also ``benchmarks/results/concurrency.png``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import math
import multiprocessing
import platform
import socket
import statistics
import sys
import time
import tracemalloc
from collections.abc import Awaitable, Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp

from yeastar_csss_async import Order, RetryPolicy, YeastarPartnerClient, __version__
from yeastar_csss_async._converters import structure_items
from yeastar_csss_async.sandbox import (
    SANDBOX_CLIENT_ID,
    SANDBOX_CLIENT_SECRET,
    SandboxConfig,
    run_sandbox,
)

RESULTS = Path(__file__).parent / "results"
TOKEN_PATH = "/auth/openapi/v1/oauth/token"
ORDERS_PATH = "/order/openapi/order/v1/page"


# --- the sandbox in its own process -----------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _serve(config: dict[str, Any], port: int) -> None:
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run_sandbox(SandboxConfig(**config), port=port))


@contextlib.contextmanager
def sandbox_process(**config: Any) -> Iterator[str]:
    """A sandbox in a child process; yields its base URL."""
    port = _free_port()
    process = multiprocessing.get_context("spawn").Process(target=_serve, args=(config, port),
                                                           daemon=True)
    process.start()
    base_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                break
        if time.monotonic() > deadline:
            raise RuntimeError("the sandbox did not start")
        time.sleep(0.05)
    try:
        yield base_url
    finally:
        process.terminate()
        process.join(10)


# --- contenders ---------------------------------------------------------------------------------

def client(base_url: str, concurrency: int) -> YeastarPartnerClient:
    return YeastarPartnerClient(SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET, base_url=base_url,
                                max_concurrency=concurrency,
                                retry=RetryPolicy(max_attempts=3, initial_backoff=0.01))


async def library_export(yeastar: YeastarPartnerClient, page_size: int, *,
                         dedupe: bool = True) -> int:
    """What a user of the library writes: one async for."""
    count = 0
    async for _ in yeastar.iter_orders(page_size=page_size, dedupe=dedupe):
        count += 1
    return count


async def get_token(session: aiohttp.ClientSession, base_url: str) -> str:
    form = {"grant_type": "pp_credentials", "client_id": SANDBOX_CLIENT_ID,
            "client_secret": SANDBOX_CLIENT_SECRET}
    async with session.post(base_url + TOKEN_PATH, data=form) as response:
        return str((await response.json())["result"]["token"])


async def hand_written_sequential(session: aiohttp.ClientSession, base_url: str, token: str,
                                  page_size: int) -> int:
    """The loop a user writes by hand: one page after another, until a short page."""
    headers = {"Authorization": f"Bearer {token}", "User-Agent": "hand-written"}
    count, page_no = 0, 1
    while True:
        async with session.get(base_url + ORDERS_PATH, headers=headers,
                               params={"pageNo": page_no, "pageSize": page_size}) as response:
            results = json.loads(await response.read())["result"]["results"]
        count += len(results)
        if len(results) < page_size:
            return count
        page_no += 1


async def raw_concurrent(session: aiohttp.ClientSession, base_url: str, token: str,
                         page_size: int, concurrency: int) -> int:
    """The fastest a hand-written loop gets: every page at once under a semaphore, dicts only."""
    headers = {"Authorization": f"Bearer {token}", "User-Agent": "raw"}
    slots = asyncio.Semaphore(concurrency)

    async def page(page_no: int) -> dict[str, Any]:
        async with slots, session.get(base_url + ORDERS_PATH, headers=headers,
                                      params={"pageNo": page_no, "pageSize": page_size}) as r:
            return dict(json.loads(await r.read())["result"])

    first = await page(1)
    pages = math.ceil(first["total"] / page_size)
    rest = await asyncio.gather(*(page(n) for n in range(2, pages + 1)))
    return len(first["results"]) + sum(len(p["results"]) for p in rest)


async def timed(work: Callable[[], Awaitable[int]]) -> tuple[float, int]:
    gc.collect()
    started = time.perf_counter()
    count = await work()
    return time.perf_counter() - started, count


# --- the three measurements ----------------------------------------------------------------

async def latency_bound(quick: bool) -> dict[str, Any]:
    pages, page_size, latency = 200, 10, 0.05
    total = pages * page_size - 5  # exactly 200 pages, the last one short
    levels = [1, 4, 8, 16, 32]
    repeats = 1 if quick else 3
    ideal = {c: (1 + math.ceil((pages - 1) / c)) * latency for c in levels}
    walls: dict[str, list[float]] = {str(c): [] for c in levels}
    walls.update({f"raw{c}": [] for c in levels})
    walls["sequential"] = []
    with sandbox_process(orders=total, latency=latency) as base_url:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64)) as session:
            token = await get_token(session, base_url)
            for _ in range(repeats):
                seconds, count = await timed(
                    lambda: hand_written_sequential(session, base_url, token, page_size))
                assert count == total
                walls["sequential"].append(seconds)
                for c in levels:
                    if quick and c == 1 and walls["1"]:
                        continue
                    async with client(base_url, c) as yeastar:
                        await yeastar.get_orders_page(1, 1)  # a warm client holds a token
                        seconds, count = await timed(lambda: library_export(yeastar, page_size))
                    assert count == total
                    walls[str(c)].append(seconds)
                    if c == 1:
                        continue  # the sequential loop is the hand-written c=1
                    seconds, count = await timed(
                        lambda c=c: raw_concurrent(session, base_url, token, page_size, c))
                    assert count == total
                    walls[f"raw{c}"].append(seconds)
    walls["raw1"] = walls["sequential"]
    medians = {k: statistics.median(v) for k, v in walls.items()}
    return {"pages": pages, "latency": latency, "ideal": ideal, "median": medians}


async def cpu_cost(quick: bool) -> dict[str, Any]:
    total, page_size, concurrency = 30_000, 100, 8
    repeats = 2 if quick else 5
    library: list[float] = []
    raw: list[float] = []
    with sandbox_process(orders=total, generated=True) as base_url:
        async with aiohttp.ClientSession() as session, client(base_url, concurrency) as yeastar:
            token = await get_token(session, base_url)
            await yeastar.get_orders_page(1, 1)
            for _ in range(repeats):
                seconds, count = await timed(lambda: library_export(yeastar, page_size))
                assert count == total
                library.append(seconds)
                seconds, count = await timed(
                    lambda: raw_concurrent(session, base_url, token, page_size, concurrency))
                assert count == total
                raw.append(seconds)
            async with session.get(base_url + ORDERS_PATH, params={"pageSize": 1000},
                                   headers={"Authorization": f"Bearer {token}"}) as response:
                sample = await response.read()
    return {"records": total, "library": statistics.median(library),
            "raw": statistics.median(raw), "decoding": decoding_rates(sample)}


def decoding_rates(body: bytes) -> dict[str, float]:
    """Records per second: json.loads, orjson.loads, and decode + structure into models."""
    records = len(json.loads(body)["result"]["results"])
    loops = 20

    def rate(work: Callable[[], object]) -> float:
        best = math.inf
        for _ in range(3):
            started = time.perf_counter()
            for _ in range(loops):
                work()
            best = min(best, time.perf_counter() - started)
        return records * loops / best

    rates = {"json.loads": rate(lambda: json.loads(body))}
    try:
        import orjson
    except ImportError:
        pass
    else:
        rates["orjson.loads"] = rate(lambda: orjson.loads(body))
    rates["json.loads(parse_float=Decimal)"] = rate(
        lambda: json.loads(body, parse_float=Decimal))
    rates["library: decode + structure"] = rate(lambda: structure_items(
        json.loads(body, parse_float=Decimal)["result"]["results"], Order, path="results"))
    return rates


async def memory(quick: bool) -> dict[str, Any]:
    sizes = [100_000, 200_000] if quick else [100_000, 1_000_000]
    peaks: dict[str, float] = {}
    for dedupe in (False, True):
        for size in sizes:
            with sandbox_process(orders=size, generated=True) as base_url:
                async with client(base_url, 8) as yeastar:
                    await yeastar.get_orders_page(1, 1)
                    gc.collect()
                    tracemalloc.start()
                    count = await library_export(yeastar, 1000, dedupe=dedupe)
                    _, peak = tracemalloc.get_traced_memory()
                    tracemalloc.stop()
            assert count == size
            peaks[f"{size:,} orders, dedupe={dedupe}"] = peak / 2**20
    return {"peaks": peaks}


# --- report -------------------------------------------------------------------------------------

def report(latency: dict[str, Any], cpu: dict[str, Any], mem: dict[str, Any],
           quick: bool) -> str:
    lines = [f"yeastar-csss-async {__version__}, Python {platform.python_version()}, "
             f"aiohttp {aiohttp.__version__}, {platform.machine()} x {multiprocessing.cpu_count()} "
             f"cores, {'--quick' if quick else 'full run'}", ""]
    seq = latency["median"]["sequential"]
    lines += [f"1. Latency-bound export: {latency['pages']} pages, "
              f"{latency['latency'] * 1000:.0f} ms per request",
              "", "| concurrency | library (s) | ideal (s) | library / ideal | hand-written "
              "concurrent (s) | library / hand-written | sequential / library |",
              "|---:|---:|---:|---:|---:|---:|---:|"]
    for c, ideal in latency["ideal"].items():
        wall, raw = latency["median"][str(c)], latency["median"][f"raw{c}"]
        lines.append(f"| {c} | {wall:.2f} | {ideal:.2f} | {wall / ideal:.3f} | {raw:.2f} | "
                     f"{wall / raw:.3f} | {seq / wall:.1f}x |")
    lines += ["", f"Hand-written sequential loop: {seq:.2f} s. Hand-written concurrent: "
              "`asyncio.gather` of every page under a semaphore, dicts only, no models "
              "(at concurrency 1 it is the sequential loop)."]
    lines += ["", f"2. CPU cost: {cpu['records']:,} orders, page size 100, no latency, "
              "concurrency 8", "",
              f"- library {cpu['library']:.3f} s, raw aiohttp + json.loads (dicts) "
              f"{cpu['raw']:.3f} s: **library / raw = {cpu['library'] / cpu['raw']:.2f}**",
              "- decoding 1000 seed-shaped orders, records per second:"]
    lines += [f"  - {name}: {value:,.0f}" for name, value in cpu["decoding"].items()]
    lines += ["", "3. Memory: peak traced memory of the consuming process (page size 1000)", ""]
    lines += [f"- {name}: {peak:.1f} MiB" for name, peak in mem["peaks"].items()]
    return "\n".join(lines) + "\n"


def plot(latency: dict[str, Any]) -> Path | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    levels = list(latency["ideal"])
    figure, axes = plt.subplots(figsize=(6, 4))
    axes.plot(levels, [latency["median"][str(c)] for c in levels], "o-", label="library")
    axes.plot(levels, [latency["median"][f"raw{c}"] for c in levels], "s:",
              label="hand-written concurrent")
    axes.plot(levels, [latency["ideal"][c] for c in levels], "--", label="ideal")
    axes.axhline(latency["median"]["sequential"], color="grey", linestyle=":",
                 label="hand-written sequential")
    axes.set_xscale("log", base=2)
    axes.set_yscale("log")
    axes.set_xlabel("max_concurrency")
    axes.set_ylabel("wall time (s)")
    axes.set_title(f"{latency['pages']} pages at {latency['latency'] * 1000:.0f} ms")
    axes.legend()
    path = RESULTS / "concurrency.png"
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    return path


async def main(quick: bool) -> None:
    started = time.monotonic()
    latency = await latency_bound(quick)
    print("latency-bound done", file=sys.stderr)
    cpu = await cpu_cost(quick)
    print("cpu cost done", file=sys.stderr)
    mem = await memory(quick)
    text = report(latency, cpu, mem, quick)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "latest.md").write_text(text, encoding="utf-8")
    picture = plot(latency)
    print(text)
    print(f"written: {RESULTS / 'latest.md'}" + (f", {picture}" if picture else
                                                   " (no picture: matplotlib not installed)"))
    print(f"took {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats, under 2 minutes")
    asyncio.run(main(parser.parse_args().quick))
