"""Benchmarks: the library's client CPU, decode cost, wall time and memory, side by side with
what a user writes by hand and with the physical limit.

    python benchmarks/run.py                  # the full run (about 6.5 minutes on 2 cores)
    python benchmarks/run.py --quick          # fewer repeats and orders (about 3.5 minutes)
    python benchmarks/run.py --only cpu,decode
    python benchmarks/run.py --only fleet     # opt-in: a fleet of worker processes (~3 min)

Sections: ``cpu`` (client CPU per order: raw aiohttp + json.loads dicts, the same plus a
hand-written attrs class, the library), ``decode`` (one page through the library's decode path
beside json.loads), ``faults`` (ordered vs unordered iteration under latency and faults),
``latency`` (wall time against concurrency, the sandbox and the pre-rendered server),
``memory`` (peak traced memory streaming a long list), ``sync`` (100,000 orders synced into
SQLite and PostgreSQL beside a plain export; needs the ``[sync]`` extra and PostgreSQL 15
binaries, else its PostgreSQL rows are left out) and ``renewals`` (client CPU per page after
1,000 token renewals beside a fresh client, and CPU per renewal early and late).

Opt-in, run only when named (``--only fleet``, about 3 minutes; not in the full run):
``fleet`` (1, 2 and 4 ``yeastar-csss worker`` processes syncing 8 sandbox accounts at 50 ms
per request into PostgreSQL, as a ratio to one process, with the shared limits checked;
needs the ``[workers]`` extra and ``redis-server``, else it is skipped and says why).

Every server runs in its own process (``_server.py``) and reports its own CPU share, printed
beside each result, so a run limited by the server is visible (and flagged above 80% of a
core). Client CPU is ``time.process_time()`` of this process. Contenders alternate within each
repeat; we report medians and the spread, and ratios measured in the same run.

A full run writes ``benchmarks/results/latest.md``, ``concurrency.png`` and ``cpu.png``; a run
with ``--only`` writes ``benchmarks/results/only-<sections>.md`` and no pictures.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import _report
import aiohttp
from _cpu import cpu_comparison, decode_micro
from _fleet import fleet_benchmark
from _memory import peak_memory
from _renewals import renewals_benchmark, renewals_section
from _sync import sync_benchmark
from _wall import latency_bound, ordered_vs_unordered

from yeastar_csss_async import __version__

RESULTS = Path(__file__).parent / "results"
SECTIONS = ("cpu", "decode", "faults", "latency", "memory", "sync", "renewals")
OPT_IN = ("fleet",)
"""Sections run only when named with ``--only`` (not part of the full run)."""


def machine() -> str:
    try:
        import msgspec
    except ImportError:
        extra = ""
    else:
        extra = f", msgspec {msgspec.__version__}"
    return (
        f"{platform.platform()} ({platform.machine()}), {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}, aiohttp {aiohttp.__version__}{extra}, "
        f"yeastar-csss-async {__version__}"
    )


async def run_section(name: str, quick: bool, results: dict[str, Any]) -> list[_report.Row]:
    """Run one section; print its text as soon as it is done; return its summary rows."""
    started = time.monotonic()
    if name == "cpu":
        results["cpu"] = await cpu_comparison(quick)
        lines, rows = _report.cpu_section(results["cpu"])
    elif name == "decode":
        results["decode"] = decode_micro(quick)
        lines, rows = _report.decode_section(results["decode"])
    elif name == "faults":
        results["faults"] = await ordered_vs_unordered(quick)
        lines, rows = _report.faults_section(results["faults"], quick)
    elif name == "latency":
        lines = [
            "## 4. Latency-bound export: wall time against concurrency",
            "",
            "ideal = (1 + ceil((pages - 1) / concurrency)) x latency: page 1 alone, "
            "then the rest `concurrency` at a time. Hand-written: `asyncio.gather` of "
            "every page under a semaphore, dicts only (at concurrency 1: the sequential "
            "loop).",
            "",
        ]
        rows = []
        for kind in ("sandbox", "pages"):
            results[f"latency_{kind}"] = await latency_bound(quick, kind)
            more, row = _report.latency_section(results[f"latency_{kind}"])
            lines += [*more, ""]
            rows += row
    elif name == "memory":
        results["memory"] = await peak_memory(quick)
        lines, rows = _report.memory_section(results["memory"], quick)
    elif name == "renewals":
        results["renewals"] = await renewals_benchmark(quick)
        lines, rows = renewals_section(results["renewals"])
    elif name == "fleet":
        results["fleet"] = await fleet_benchmark(quick)
        lines, rows = _report.fleet_section(results["fleet"])
    else:
        results["sync"] = await sync_benchmark(quick)
        lines, rows = _report.sync_section(results["sync"])
    text = "\n".join(lines)
    results.setdefault("text", []).append(text)
    print(f"{text}\n\n({name}: {time.monotonic() - started:.0f} s)\n", flush=True)
    return rows


async def main(quick: bool, only: list[str]) -> None:
    started = time.monotonic()
    command = (
        "python benchmarks/run.py"
        + (" --quick" if quick else "")
        + (f" --only {','.join(only)}" if only != list(SECTIONS) else "")
    )
    header = [
        "# yeastar-csss-async benchmarks",
        "",
        f"- machine: {machine()}",
        f"- command: `{command}`",
        f"- date: {datetime.date.today().isoformat()}, load average before the run: "
        f"{os.getloadavg()[0]:.2f}",
        "",
    ]
    print("\n".join(header), flush=True)
    results: dict[str, Any] = {}
    rows: list[_report.Row] = []
    for name in only:
        rows += await run_section(name, quick, results)
    summary = ["## Summary", "", *_report.summary_table(rows)]
    print("\n".join(summary))
    RESULTS.mkdir(exist_ok=True)
    document = "\n".join(header + summary) + "\n\n" + "\n\n".join(results["text"]) + "\n"
    if only == list(SECTIONS):
        target = RESULTS / "latest.md"
        pictures = _report.plot(results, RESULTS)
    else:
        target, pictures = RESULTS / f"only-{'-'.join(only)}.md", []
    target.write_text(document, encoding="utf-8")
    print(f"\nwritten: {', '.join(str(p) for p in [target, *pictures])}")
    print(f"took {time.monotonic() - started:.0f} s")


def parse_only(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in SECTIONS + OPT_IN]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"sections are {', '.join(SECTIONS + OPT_IN)}; got {text!r}"
        )
    return [n for n in SECTIONS + OPT_IN if n in names]  # always in the report's order


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="fewer repeats and orders (about 3.5 minutes)"
    )
    parser.add_argument(
        "--only",
        type=parse_only,
        default=list(SECTIONS),
        help=f"comma-separated sections to run: {','.join(SECTIONS)}; "
        f"opt-in, only when named: {','.join(OPT_IN)}",
    )
    arguments = parser.parse_args()
    sys.exit(asyncio.run(main(arguments.quick, arguments.only)))
