"""Turning the sections' results into markdown (printed and written) and pictures."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from _cpu import CONTENDERS
from _server import SERVER_BOUND_SHARE

Row = tuple[str, str, str, str]  # measure | value | target | met?
FAULT_TARGET_ORDERS = 200_000
SERVER_NAMES = {"sandbox": "the sandbox", "pages": "the pre-rendered server"}


def met(ok: bool) -> str:
    return "yes" if ok else "**no**"


def server_check(share: float, what: str) -> list[str]:
    """The loud line when a server used so much CPU that it may have set the pace."""
    if share <= SERVER_BOUND_SHARE:
        return []
    return [
        "",
        f"**!!! SERVER-BOUND: the server used {share:.0%} of a core during {what};"
        f" these numbers may measure the server, not the client. !!!**",
    ]


def cpu_section(cpu: dict[str, Any]) -> tuple[list[str], list[Row]]:
    s = cpu["summary"]
    lines = [
        f"## 1. Client CPU: {cpu['orders']:,} orders, page size {cpu['page_size']}, "
        f"concurrency {cpu['concurrency']}, pre-rendered server in its own process",
        "",
        f"Client CPU is `time.process_time()` of this process; {cpu['repeats']} repeats, "
        "contenders alternating (who goes first rotates), medians with min-max.",
        "",
        "| contender | client CPU per order (us) | min-max | library / this | wall (s) "
        "| client CPU / wall | server CPU share, median (max) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    library = s["library"]["us"]
    for name in CONTENDERS:
        r = s[name]
        lines.append(
            f"| {name} | {r['us']:.2f} | {r['us_min']:.2f}-{r['us_max']:.2f} | "
            f"{library / r['us']:.2f} | {r['wall']:.3f} | {r['client_share']:.0%} | "
            f"{r['server_share']:.0%} ({r['server_share_max']:.0%}) |"
        )
    raw = s["raw dicts"]
    lines += [
        "",
        f"raw dicts run at {raw['records_per_s']:,.0f} records/s while the server "
        f"uses {raw['server_share']:.0%} of a core and the client "
        f"{raw['client_share']:.0%}: the client is the bottleneck, not the harness.",
    ]
    for name in CONTENDERS:
        lines += server_check(s[name]["server_share_max"], name)
    if min(s[n]["client_share"] for n in CONTENDERS) < 0.9:
        lines += [
            "",
            "Note: a client CPU / wall under 90% means the client waited. When it "
            "and the server's share add up to about 100%, client and server took turns "
            "on one core because other work held the other: per-order CPU is still "
            "the client's own, but rerun on a quiet machine to be sure.",
        ]
    ratio = library / raw["us"]
    rows = [
        (
            "1. client CPU per order, library / raw dicts",
            f"{ratio:.2f}",
            "<= 1.5 (stretch 1.3)",
            met(ratio <= 1.5) + (" (stretch too)" if ratio <= 1.3 else ""),
        ),
        (
            "1. client CPU per order, library / raw + hand-written attrs",
            f"{library / s['raw + hand attrs']['us']:.2f}",
            "-",
            "-",
        ),
    ]
    return lines, rows


def decode_section(dec: dict[str, Any]) -> tuple[list[str], list[Row]]:
    lines = [
        f"## 2. Decode + structure one page of {dec['records']} seed-shaped orders",
        "",
        f"timeit: best and median of {dec['repeat']} repeats of {dec['number']} pages; "
        "microseconds per order.",
        "",
        "| what | best (us/order) | median (us/order) |",
        "|---|---:|---:|",
    ]
    for name, t in dec["us"].items():
        lines.append(f"| {name} | {t['best']:.2f} | {t['median']:.2f} |")
    lines += [
        "",
        "The hand-written attrs class holds the same values as the library's Order: "
        + ("yes" if dec["same_values"] else "**NO (the comparison is not fair)**"),
    ]
    library = next(iter(dec["us"].values()))["best"]
    return lines, [
        (
            "2. decode + structure one order (library, best)",
            f"{library:.2f} us",
            "<= 2.5 us",
            met(library <= 2.5),
        )
    ]


def faults_section(f: dict[str, Any], quick: bool) -> tuple[list[str], list[Row]]:
    ordered, unordered = f["wall"]["ordered"], f["wall"]["unordered"]
    ratio = ordered / unordered
    size = f"{f['orders']:,} orders" + (" (--quick; the full run uses 200,000)" if quick else "")
    lines = [
        f"## 3. Ordered vs unordered under faults: {size}, {f['pages']:,} pages, "
        f"{f['latency'] * 1000:.0f} ms per request, {f['fault_rate']:.0%} transient "
        f"faults (503 without Retry-After, 500), concurrency {f['concurrency']}, "
        "default RetryPolicy",
        "",
        "| mode | wall (s), median | min-max | faults served per repeat |",
        "|---|---:|---:|---|",
    ]
    for mode in ("ordered", "unordered"):
        low, high = f["spread"][mode]
        lines.append(
            f"| iter_orders(ordered={mode == 'ordered'}) | {f['wall'][mode]:.2f} | "
            f"{low:.2f}-{high:.2f} | {', '.join(map(str, f['faults'][mode]))} |"
        )
    lines += [
        "",
        f"ordered / unordered = **{ratio:.2f}**; ideal without faults "
        f"(pages / concurrency x latency) = {f['ideal']:.2f} s; unordered / ideal = "
        f"{unordered / f['ideal']:.2f}. Server CPU share at most "
        f"{f['server_share_max']:.0%} of a core.",
    ]
    lines += server_check(f["server_share_max"], "the fault runs")
    verdict = met(ratio <= 1.15)
    if f["orders"] < FAULT_TARGET_ORDERS:
        verdict += " (indicative: on a shorter list the retry tail weighs more)"
    return lines, [
        (
            f"3. wall, ordered / unordered under faults ({f['orders']:,} orders)",
            f"{ratio:.2f}",
            "<= 1.15 (at 200,000)",
            verdict,
        )
    ]


def latency_section(lat: dict[str, Any]) -> tuple[list[str], list[Row]]:
    name = SERVER_NAMES[lat["kind"]]
    once = "; concurrency 1 once" if lat["c1_once"] else ""
    lines = [
        f"### {name}, {lat['pages']} pages, {lat['latency'] * 1000:.0f} ms per request "
        f"({lat['repeats']} repeats, medians{once})",
        "",
        "| concurrency | library (s) | ideal (s) | library / ideal | hand-written (s) | "
        "library / hand-written | hand-written / ideal | server CPU share max "
        "(library, hand-written) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    wall, share = lat["wall"], lat["server_share_max"]
    for c in lat["levels"]:
        lib, raw, best = wall[f"lib{c}"], wall[f"raw{c}"], lat["ideal"][c]
        lines.append(
            f"| {c} | {lib:.2f} | {best:.2f} | {lib / best:.3f} | {raw:.2f} | "
            f"{lib / raw:.3f} | {raw / best:.3f} | "
            f"{share[f'lib{c}']:.0%}, {share[f'raw{c}']:.0%} |"
        )
    lines += server_check(max(share.values()), f"a run against {name}")
    ratio = wall["lib16"] / lat["ideal"][16]
    lines += [
        "",
        f"At concurrency 16 the library is {ratio:.3f} x the ideal and the "
        f"hand-written loop {wall['raw16'] / lat['ideal'][16]:.3f} x: what both pay is "
        f"the cost of a request against {name} (it used at most "
        f"{max(share.values()):.0%} of a core), what only the library pays is its own.",
    ]
    return lines, [
        (
            f"4. wall / ideal at concurrency 16 ({name})",
            f"{ratio:.3f}",
            "<= 1.10",
            met(ratio <= 1.10),
        )
    ]


def memory_section(mem: dict[str, Any], quick: bool) -> tuple[list[str], list[Row]]:
    peaks, total = mem["peaks"], mem["orders"]
    peak, flat = peaks["dedupe=True"], peaks["dedupe=False"]
    size = f"{total:,} orders"
    lines = [
        f"## 5. Peak traced memory streaming {size}, sandbox generating pages",
        "",
        f"- default options (page size 100, ordered, dedupe=True): {peak:.1f} MiB",
        f"- dedupe=False: {flat:.1f} MiB",
        "",
        "tracemalloc in the consuming process only; the sandbox used "
        f"{peaks['server_share dedupe=True']:.0%} / {peaks['server_share dedupe=False']:.0%}"
        " of a core.",
    ]
    return lines, [
        (
            f"5. peak memory, {total:,} orders, default options",
            f"{peak:.1f} MiB",
            "<= 40 MiB (at 1,000,000)",
            met(peak <= 40),
        )
    ]


def summary_table(rows: list[Row]) -> list[str]:
    lines = ["| measure | value | target | met? |", "|---|---:|---|---|"]
    return lines + [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]


def plot(results: dict[str, Any], folder: Path) -> list[Path]:
    """concurrency.png (wall against concurrency) and cpu.png (client CPU per order)."""
    try:
        import matplotlib
        import matplotlib.ticker

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    written = []
    latency = [results[k] for k in ("latency_sandbox", "latency_pages") if k in results]
    if latency:
        figure, panels = plt.subplots(1, len(latency), figsize=(6 * len(latency), 4), squeeze=False)
        for axes, lat in zip(panels[0], latency, strict=True):
            levels = lat["levels"]
            axes.plot(levels, [lat["wall"][f"lib{c}"] for c in levels], "o-", label="library")
            axes.plot(
                levels,
                [lat["wall"][f"raw{c}"] for c in levels],
                "s:",
                label="hand-written (c=1: sequential)",
            )
            axes.plot(levels, [lat["ideal"][c] for c in levels], "--", label="ideal")
            axes.set(
                xscale="log",
                yscale="log",
                xlabel="max_concurrency",
                ylabel="wall time (s)",
                title=f"{lat['pages']} pages at "
                f"{lat['latency'] * 1000:.0f} ms, {SERVER_NAMES[lat['kind']]}",
            )
            axes.set_xticks(levels, [str(c) for c in levels])
            axes.yaxis.set_major_locator(matplotlib.ticker.LogLocator(subs=(1, 2, 5)))
            axes.yaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
            axes.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
            axes.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
            axes.legend()
        written.append(_save(figure, folder / "concurrency.png"))
    if "cpu" in results:
        s = results["cpu"]["summary"]
        figure, axes = plt.subplots(figsize=(6, 4))
        medians = [s[n]["us"] for n in CONTENDERS]
        errors = [
            [s[n]["us"] - s[n]["us_min"] for n in CONTENDERS],
            [s[n]["us_max"] - s[n]["us"] for n in CONTENDERS],
        ]
        axes.bar(CONTENDERS, medians, yerr=errors, capsize=6, color=["grey", "tan", "C0"])
        axes.set(
            ylabel="client CPU per order (us)",
            title=f"{results['cpu']['orders']:,} orders, concurrency 8, page size 100",
        )
        written.append(_save(figure, folder / "cpu.png"))
    return written


def _save(figure: Any, path: Path) -> Path:
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    return path


def sync_section(result: dict[str, Any]) -> tuple[list[str], list[Row]]:
    """Section 6: sync into SQLite and PostgreSQL beside a plain export, on loopback and
    against a sandbox that waits before every answer."""
    from _sync import FIRST_TARGET, NOOP_TARGET

    orders = result["orders"]
    conditions = result["conditions"]
    lines = [
        f"## 6. Sync {orders:,} orders into SQLite and PostgreSQL, beside a plain export",
        "",
        f"Page size {result['page_size']}, concurrency {result['concurrency']}, "
        "the sandbox in its own process. export = `iter_orders(ordered=False)` counted "
        "(no `to_jsonable`, no file); a sync = `async with SyncStore(url) as store: "
        "await sync_orders(store, client)` (opening and closing the store included) "
        "into a fresh SQLite file (WAL, synchronous=NORMAL) or a fresh database of a "
        f"throwaway {result['pg_version'] or 'PostgreSQL'} cluster (fsync and "
        "synchronous_commit off); no-op = the same again, nothing changed. Contenders "
        "alternate within each repeat; medians with min-max; each ratio is the median "
        "of the ratios to the export of the same repeat.",
        "",
        "Two conditions, measured in the same run, each against its own sandbox process:",
        "",
    ]
    for c in conditions:
        if c["latency"]:
            lines.append(
                f"- **{c['name']}**: the sandbox waits {c['latency'] * 1000:.0f} ms before "
                "answering every request, as the real API takes tens of milliseconds. The "
                "export is then latency-bound, and a sync fetches the next pages while it "
                "writes (read-ahead): **a ratio near 1 means the sync's own work is hidden "
                "behind the API's latency**, not that it costs nothing."
            )
        else:
            lines.append(
                f"- **{c['name']}** (no latency): the export is CPU-bound (a few "
                "microseconds per order), so **the ratio shows the sync's own CPU cost** "
                "per order against the export's, not what a user waits for against the "
                "real API."
            )
    lines += [
        "",
        "The sync targets (first sync <= "
        f"{FIRST_TARGET}x the export, no-op re-sync <= {NOOP_TARGET}x) do not state a "
        "latency; the summary shows each for both conditions.",
    ]
    per_condition: list[list[Row]] = []
    summaries = []
    for c in conditions:
        more, row, s = _sync_condition(c, result)
        lines += more
        per_condition.append(row)
        summaries.append(s)
    rows = [r for pair in zip(*per_condition, strict=True) for r in pair]  # target by target
    if result["pg_missing"]:
        lines += ["", f"PostgreSQL left out: {result['pg_missing']}"]
    lines += [
        "",
        "Bottleneck: a contender whose client CPU / wall is near 100% is limited "
        "by this process (Python, and SQLite's C code on the aiosqlite thread, which "
        "counts in `process_time()`); the sandbox's share shows it is not the server. "
        "For PostgreSQL, client CPU + PostgreSQL CPU close to the wall time means the "
        "two take turns: each page is one transaction of a few statements in a row "
        "on one connection, so neither side is busy while the other works. At "
        "50 ms latency a client CPU / wall well under 100% with a ratio near 1 means "
        "the client mostly waited for the API.",
    ]
    lines += server_check(
        max(r["server_share_max"] for s in summaries for r in s.values()), "a sync run"
    )
    for c in conditions:
        lines += _sync_profiles(c, orders)
    return lines, rows


def _sync_condition(
    c: dict[str, Any], result: dict[str, Any]
) -> tuple[list[str], list[Row], dict[str, dict[str, float]]]:
    """One condition's table, and its summary rows."""
    from _sync import CONTENDERS, FIRST_TARGET, NOOP_TARGET, summarize

    s = summarize(c)
    orders, repeats = result["orders"], c["repeats"]
    title = f"{c['latency'] * 1000:.0f} ms per request" if c["latency"] else "loopback, no latency"
    lines = ["", f"### {title} ({repeats} repeat{'s' if repeats > 1 else ''})", ""]
    if c["ideal"]:
        export = s["export"]["wall"]
        lines += [
            f"Ideal export = (1 + ceil((pages - 1) / concurrency)) x latency = "
            f"{c['ideal']:.2f} s for {orders // result['page_size']:,} pages; the "
            f"export took {export:.2f} s = {export / c['ideal']:.3f} x the ideal.",
            "",
        ]
    lines += [
        "| contender | records/s | wall (s) | min-max | / export | ratio min-max | target "
        "| client CPU (s) | client CPU / wall | sandbox CPU share | PostgreSQL CPU (s) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    targets = {"first": f"<= {FIRST_TARGET}", "no-op": f"<= {NOOP_TARGET}"}
    for name in CONTENDERS:
        if name not in s:
            continue
        r = s[name]
        target = targets.get(name.split()[-1], "-")
        pg = f"{r['pg_cpu']:.2f}" if name.startswith("postgresql") else "-"
        lines.append(
            f"| {name} | {r['records_per_s']:,.0f} | {r['wall']:.2f} | {r['wall_min']:.2f}-"
            f"{r['wall_max']:.2f} | {r['ratio']:.2f} | {r['ratio_min']:.2f}-"
            f"{r['ratio_max']:.2f} | {target} | {r['cpu']:.2f} | {r['client_share']:.0%} | "
            f"{r['server_share']:.0%} ({r['server_share_max']:.0%}) | {pg} |"
        )
    condition = f"{c['latency'] * 1000:.0f} ms latency" if c["latency"] else "loopback"
    rows: list[Row] = []
    for name in CONTENDERS[1:]:
        if name in s:
            limit = FIRST_TARGET if name.endswith("first") else NOOP_TARGET
            rows.append(
                (
                    f"6. wall, sync {name} / export, {condition} ({orders:,} orders)",
                    f"{s[name]['ratio']:.2f} ({s[name]['records_per_s']:,.0f} rec/s)",
                    f"<= {limit}",
                    met(s[name]["ratio"] <= limit),
                )
            )
    return lines, rows, s


def _sync_profiles(c: dict[str, Any], orders: int) -> list[str]:
    """The time slices of one condition's untimed pass (if it had one)."""
    from _sync import CONTENDERS

    profiles = c["profiles"]
    if not profiles:
        return []
    names = [n for n in CONTENDERS if n in profiles]
    kinds: list[str] = []
    for n in names:
        kinds += [k for k in profiles[n] if k not in kinds and k not in ("wall", "cpu")]
    lines = [
        "",
        f"### Where a sync's time goes, {c['name']} (one untimed pass each, wall "
        "seconds; statements timed around `AsyncConnection.execute`)",
        "",
        "| slice | " + " | ".join(names) + " |",
        "|---|" + "---:|" * len(names),
    ]
    for kind in kinds:
        cells = [profiles[n].get(kind, 0.0) for n in names]
        lines.append(
            f"| {kind} | "
            + " | ".join(f"{v:.2f} ({v / orders * 1e6:.1f} us/rec)" for v in cells)
            + " |"
        )
    lines.append(
        "| **wall (client CPU)** | "
        + " | ".join(f"**{profiles[n]['wall']:.2f}** ({profiles[n]['cpu']:.2f})" for n in names)
        + " |"
    )
    return lines


def fleet_section(result: dict[str, Any]) -> tuple[list[str], list[Row]]:
    """Section 7 (opt-in): 1, 2 and 4 worker processes syncing many sandbox accounts."""
    from _fleet import BASELINE, CONTENDERS, summarize

    accounts, orders, cores = result["accounts"], result["orders"], result["cores"]
    title = (
        f"## 7. A fleet of workers: {accounts} accounts x {orders:,} orders, "
        f"{result['latency'] * 1000:.0f} ms per request"
    )
    if "skipped" in result:
        return [title, "", f"Skipped: {result['skipped']}."], [
            ("7. fleet of workers", "skipped", "-", result["skipped"])
        ]
    db = (
        f"a fresh database of a throwaway {result['pg_version']} cluster (fsync off): "
        "processes write at once"
        if result["pg_version"]
        else f"**SQLite** (PostgreSQL missing: {result['pg_missing']}): one writer at a time, "
        "so the processes queue on its write lock"
    )
    s = summarize(result)
    lines = [
        title,
        "",
        "The real `yeastar-csss worker --workers N --jobs 1` (taskiq, Redis "
        f"{result['redis_version']}, every client with the Redis coordinator) syncs the "
        "orders of each account once "
        f"into {db}. Each account is its own sandbox process (max_concurrency "
        f"{result['concurrency']} for the account, page size {result['page_size']}) with "
        "its own client id. Clock: the first enqueue to the last `sync_runs.finished_at`; "
        "the workers are started and ready before it. Contenders alternate (the order "
        f"reverses on odd repeats); {result['repeats']} repeats, medians with min-max; "
        "ratio = throughput / one process's in the same repeat. `1 process, --jobs 4`: "
        "four syncs at once in one process, what one process gets without a fleet.",
        "",
        f"Floors: latency = ceil(accounts / syncs at once) x one account's ideal "
        f"(token, page 1, then the rest {result['concurrency']} at a time: "
        f"{result['ideal_account']:.2f} s); CPU = all CPU seconds of the window (workers, "
        f"sandboxes, PostgreSQL, redis-server, this harness) / {cores} cores. "
        "wall / floor near 1: at the physical limit.",
        "",
        "| contender | syncs at once | records/s | wall (s) | min-max | / 1 process "
        "| ratio min-max | latency floor (s) | CPU floor (s) | wall / floor | workers CPU "
        "(s) | busiest worker, share of a core | sandboxes CPU (s), busiest share "
        "| PostgreSQL CPU (s) | redis CPU (s) | machine busy |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, processes, jobs in CONTENDERS:
        r = s[name]
        lines.append(
            f"| {name} | {processes * jobs} | {r['records_per_s']:,.0f} | {r['wall']:.2f} | "
            f"{r['wall_min']:.2f}-{r['wall_max']:.2f} | {r['ratio']:.2f} | "
            f"{r['ratio_min']:.2f}-{r['ratio_max']:.2f} | {r['latency_floor']:.2f} | "
            f"{r['cpu_floor']:.2f} | {r['to_floor']:.2f} | {r['workers_cpu']:.2f} | "
            f"{r['worker_share_max']:.0%} | {r['sandbox_cpu']:.2f}, "
            f"{r['sandbox_share_max']:.0%} | {r['pg_cpu']:.2f} | {r['redis_cpu']:.2f} | "
            f"{r['machine_busy']:.0%} |"
        )
    lines += [
        "",
        "Shared limits and rows, per run (a fresh Redis database each: no token carried over):",
        "",
        "| contender | requests | peak in flight at a sandbox (limit "
        f"{result['concurrency']}) | token grants per account | processes that ran a "
        "job: jobs each, per repeat | every run complete, every row there |",
        "|---|---:|---:|---|---|---|",
    ]
    for name, _, _ in CONTENDERS:
        r = s[name]
        lines.append(
            f"| {name} | {r['requests']:,.0f} | {r['peak_in_flight']} | "
            f"{', '.join(map(str, r['grants']))} | {'; '.join(r['jobs_per_process'])} | "
            f"{'yes' if not r['problems'] else '**no**: ' + '; '.join(r['problems'][:3])}"
            " |"
        )
    uneven = [
        n
        for n, processes, _ in CONTENDERS
        if any(
            int(split.split("+")[0]) > -(-accounts // processes) or split.count("+") < processes - 1
            for split in s[n]["jobs_per_process"]
        )
    ]
    if uneven:
        lines += [
            "",
            f"**Uneven split** ({', '.join(uneven)}): a worker took more than its "
            "share of the jobs. taskiq-redis's `RedisStreamBroker` reads up to "
            "`xread_count` (default 100) jobs per `XREADGROUP` and holds them while it "
            "runs `--jobs` at a time, so the processes that read first keep the queue "
            "and the others idle; the latency floor assumes an even split.",
        ]

    def bound(r: dict[str, Any]) -> str:
        if r["split_floor"] > max(r["latency_floor"], r["cpu_floor"]):
            return (
                f"the uneven split: the busiest worker's jobs one after another "
                f"({r['split_floor']:.1f} s of latency)"
            )
        if r["cpu_floor"] > r["latency_floor"]:
            return "CPU (the cores)"
        return "the API's latency"

    lines += [
        "",
        "Bottleneck: "
        + "; ".join(
            f"{n}: {bound(s[n])}, machine {s[n]['machine_busy']:.0%} busy" for n, _, _ in CONTENDERS
        )
        + f". With {cores} cores, "
        "no more than about "
        f"{cores} CPU-busy processes can run at once: past that, more workers only share the "
        "same cores. Each account here runs in one process at a time (one job per account); "
        "several processes sharing one account's token and limit are checked by "
        "`tests/redis/test_fleet.py`.",
    ]
    limits = all(not s[n]["problems"] for n, _, _ in CONTENDERS)
    rows: list[Row] = []
    for name, _, _ in CONTENDERS[1:3]:
        r = s[name]
        rows.append(
            (
                f"7. fleet, {name} / {BASELINE} ({accounts} accounts x {orders:,} "
                f"orders, {result['latency'] * 1000:.0f} ms)",
                f"{r['ratio']:.2f} ({r['records_per_s']:,.0f} rec/s)",
                "near-linear until the cores: wall <= 1.25 x max(latency, CPU floor)",
                met(r["to_floor"] <= 1.25) + f" ({r['to_floor']:.2f})",
            )
        )
    rows.append(
        (
            "7. fleet, shared limits held (peak in flight, one token per account) and "
            "every row there",
            "yes" if limits else "no",
            "yes",
            met(limits),
        )
    )
    return lines, rows
