"""Section 7 (opt-in, ``--only fleet``): a fleet of worker processes syncing many accounts.

What is measured: the real ``yeastar-csss worker --workers N --jobs 1`` command (taskiq on
a throwaway ``redis-server``, every client built with the Redis coordinator) syncing the
orders of ``ACCOUNTS`` sandbox accounts once each into a fresh database. Each account is
its own sandbox process (50 ms per request, ``ORDERS`` orders, ``MAX_CONCURRENCY`` for the
account) with its own client id: the coordinator knows an account by its client id, so
accounts sharing the sandbox's one id would share one token and one limit of
``MAX_CONCURRENCY`` across every server.

Contenders, alternating within each repeat (the order reverses on odd repeats): 1, 2 and 4
worker processes running one job at a time (so N syncs run at once), and, as what one
process does without a fleet, 1 process with ``--jobs 4`` (four syncs at once in one event
loop). The workers are started and ready (their "ready" lines read) before the clock
starts; the wall time runs from the first ``enqueue_sync`` (what ``yeastar-csss enqueue
sync orders`` calls) to the last ``sync_runs.finished_at``.

Database: PostgreSQL when its binaries are there (a throwaway cluster from
``tests/_support/postgres_server.py``, fsync off, a fresh database per run): processes write
to it at once. SQLite takes one writer at a time, so N processes writing one file would
measure its write lock, not the fleet; it is the fallback only, and the report says so.

Checks, per run: every account has one complete ``sync_runs`` row with ``ORDERS`` new
records and ``ORDERS`` rows in ``orders``; at every sandbox the peak of business requests
in flight is <= ``MAX_CONCURRENCY`` and exactly one token was granted (a fresh Redis
database per run, so no token is carried over). Note: with one job per account, one
process at a time talks to an account; several processes sharing *one* account are
checked by ``tests/redis/test_fleet.py``.

CPU: workers (the ``worker`` process and its children, from ``/proc``), the sandboxes
(each measures itself), PostgreSQL (postmaster and backends) and redis-server, all over the
same window; with 2 cores, ``CPU floor = all CPU seconds / cores`` is the physical limit
once the API's latency is hidden.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import math
import os
import re
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from _server import ServerHandle, ServerSpec, server_process
from _sync import postgres_cpu, postgres_server, test_service

ACCOUNTS, MAX_CONCURRENCY, PAGE_SIZE, LATENCY = 8, 4, 100, 0.05
ORDERS, QUICK_ORDERS = 20_000, 10_000
CONTENDERS = (
    ("1 process", 1, 1),
    ("2 processes", 2, 1),
    ("4 processes", 4, 1),
    ("1 process, --jobs 4", 1, 4),
)
"""(name, worker processes, jobs per process)."""
BASELINE = CONTENDERS[0][0]
RUN_TIMEOUT = 300.0
"""Guards against a hang only."""
_TICK = os.sysconf("SC_CLK_TCK")
_JOB_LINE = re.compile(r"^worker (\d+): fleet-\d+: ")


def account_names() -> list[str]:
    return [f"fleet-{i}" for i in range(ACCOUNTS)]


# --- services -----------------------------------------------------------------------------


def redis_server() -> contextlib.AbstractContextManager[tuple[Any, str]]:
    """A started throwaway redis-server (``tests/_support/redis_server.py``) and "", or None
    and why not."""
    return test_service("redis_server", "start_redis", "close")


def _cpu_of(pid: int) -> float:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return float("nan")
    fields = text[text.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def tree_cpu(root: int) -> dict[int, float]:
    """CPU seconds (user + system) of ``root`` and each of its live descendants, by pid."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                text = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            parents[int(entry)] = int(text[text.rindex(")") + 2 :].split()[1])
    tree, grew = {root}, True
    while grew:
        more = {pid for pid, parent in parents.items() if parent in tree} - tree
        tree |= more
        grew = bool(more)
    return {pid: _cpu_of(pid) for pid in tree}


# --- one run --------------------------------------------------------------------------------


class WorkerCommand:
    """``yeastar-csss worker ...`` as a subprocess, with its stderr lines read as they come."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.lines: list[str] = []
        self._reader = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        assert self.process.stderr is not None
        async for raw in self.process.stderr:
            self.lines.append(raw.decode(errors="replace").rstrip())

    async def ready(self, processes: int) -> None:
        deadline = time.monotonic() + RUN_TIMEOUT
        while sum(" ready: " in line for line in self.lines) < processes:
            if self.process.returncode is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the workers did not start: {self.lines[-10:]}")
            await asyncio.sleep(0.05)

    def jobs_per_process(self) -> list[int]:
        """Jobs finished by each worker process that finished one, most first."""
        done = collections.Counter(int(m.group(1)) for m in map(_JOB_LINE.match, self.lines) if m)
        return sorted(done.values(), reverse=True)


@contextlib.asynccontextmanager
async def worker_command(
    redis_url: str, accounts: Path, db_url: str, processes: int, jobs: int, env: dict[str, str]
) -> AsyncIterator[WorkerCommand]:
    argv = [
        sys.executable,
        "-m",
        "yeastar_csss_async",
        "worker",
        "--redis",
        redis_url,
        "--accounts",
        str(accounts),
        "--db",
        db_url,
        "--workers",
        str(processes),
        "--jobs",
        str(jobs),
        "--export-dir",
        str(accounts.parent),
    ]
    process = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **env},
    )
    command = WorkerCommand(process)
    try:
        yield command
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), 60)
            except TimeoutError:
                process.kill()
                await process.wait()
        await command._reader


async def _runs(store: Any) -> list[dict[str, Any]]:
    import sqlalchemy as sa

    from yeastar_csss_async.sync._tables import RUNS

    async with store.engine.connect() as connection:
        result = await connection.execute(sa.select(RUNS))
        return [dict(row) for row in result.mappings()]


async def _rows_by_account(store: Any) -> dict[str, int]:
    import sqlalchemy as sa

    from yeastar_csss_async.sync._tables import TABLES

    table = TABLES["orders"].table
    async with store.engine.connect() as connection:
        result = await connection.execute(
            sa.select(table.c.account, sa.func.count())
            .where(table.c.gone_at.is_(None))
            .group_by(table.c.account)
        )
        return dict(result.all())


async def _wait_complete(store: Any, command: WorkerCommand) -> list[dict[str, Any]]:
    """Poll ``sync_runs`` (one open connection pool, every 20 ms) until every account's run
    is complete."""
    deadline = time.monotonic() + RUN_TIMEOUT
    while True:
        runs = await _runs(store)
        if any(r["status"] not in ("running", "complete") for r in runs):
            raise RuntimeError(f"a sync failed: {[r['error'] for r in runs if r['error']]}")
        if sum(r["status"] == "complete" for r in runs) >= ACCOUNTS:
            return runs
        if command.process.returncode is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the workers stopped or hung: {command.lines[-10:]}")
        await asyncio.sleep(0.02)


def _check(
    runs: list[dict[str, Any]], rows: dict[str, int], sandboxes: list[dict[str, Any]], orders: int
) -> list[str]:
    """What went wrong (an empty list: every row there, the shared limits held)."""
    problems = []
    for account in account_names():
        mine = [r for r in runs if r["account"] == account]
        if len(mine) != 1 or (mine[0]["status"], mine[0]["seen"], mine[0]["new"]) != (
            "complete",
            orders,
            orders,
        ):
            problems.append(f"{account}: sync_runs {[(r['status'], r['seen']) for r in mine]}")
        if rows.get(account) != orders:
            problems.append(f"{account}: {rows.get(account, 0)} rows, expected {orders}")
    for account, stats in zip(account_names(), sandboxes, strict=True):
        if stats["peak_in_flight"] > MAX_CONCURRENCY:
            problems.append(f"{account}: {stats['peak_in_flight']} requests in flight")
        if sum(stats["grants"].values()) != 1:
            problems.append(f"{account}: token grants {stats['grants']}")
    return problems


async def _run(
    name: str,
    processes: int,
    jobs: int,
    run_no: int,
    servers: list[ServerHandle],
    pg: Any,
    redis: Any,
    accounts: Path,
    env: dict[str, str],
    orders: int,
) -> dict[str, Any]:
    from yeastar_csss_async.sync import SyncStore
    from yeastar_csss_async.tasks import enqueue_sync, make_broker

    redis_url = redis.url(1 + run_no)  # a fresh Redis database: no queue, token or lease left
    if pg is not None:
        database = pg.create_database(f"bench_fleet_{run_no}")
        db_url = pg.dsn_for(database)
    else:
        db_url = f"sqlite:///{accounts.parent / f'fleet-{run_no}.db'}"
    broker = make_broker(redis_url, results=False)
    await broker.startup()
    stack = contextlib.AsyncExitStack()
    try:
        async with worker_command(redis_url, accounts, db_url, processes, jobs, env) as command:
            await command.ready(processes)
            store = await stack.enter_async_context(SyncStore(db_url))  # for polling
            for server in servers:
                server.sandbox_stats(reset=True)
                server.mark()
            root = command.process.pid
            workers, pg_cpu = tree_cpu(root), postgres_cpu(Path(pg.datadir)) if pg else 0.0
            redis_pid = redis._process.pid
            redis_cpu, harness = _cpu_of(redis_pid), time.process_time()
            started_at, started = time.time(), time.perf_counter()
            for account in account_names():
                await enqueue_sync(broker, account, "orders")
            runs = await _wait_complete(store, command)
            window = time.perf_counter() - started
            harness = time.process_time() - harness
            redis_cpu = _cpu_of(redis_pid) - redis_cpu
            pg_cpu = postgres_cpu(Path(pg.datadir)) - pg_cpu if pg else 0.0
            after = tree_cpu(root)
            usages = [server.usage() for server in servers]
            sandboxes = [server.sandbox_stats() for server in servers]
        rows = await _rows_by_account(store)
        jobs_done = command.jobs_per_process()
    finally:
        await stack.aclose()
        await broker.shutdown()
        if pg is not None:
            pg.drop_database(database)
    per_worker = {pid: cpu - workers.get(pid, 0.0) for pid, cpu in after.items()}
    wall = max(r["finished_at"] for r in runs).timestamp() - started_at
    return {
        "name": name,
        "wall": wall,
        "window": window,
        "workers_cpu": sum(per_worker.values()),
        "worker_share_max": max(per_worker.values()) / window,
        "sandbox_cpu": sum(u.cpu for u in usages),
        "sandbox_share_max": max(u.share for u in usages),
        "pg_cpu": pg_cpu,
        "redis_cpu": redis_cpu,
        "harness_cpu": harness,
        "requests": sum(s["requests"] for s in sandboxes),
        "peak_in_flight": max(s["peak_in_flight"] for s in sandboxes),
        "grants": [sum(s["grants"].values()) for s in sandboxes],
        "jobs_per_process": jobs_done,
        "problems": _check(runs, rows, sandboxes, orders),
    }


# --- the section ------------------------------------------------------------------------------


def accounts_toml(servers: list[ServerHandle]) -> str:
    return "".join(
        f"""
[accounts.{name}]
yeastar_client_id_env = "YCA_FLEET_ID_{i}"
yeastar_client_secret_env = "YCA_FLEET_SECRET"
base_url = "{server.base_url}"
max_concurrency = {MAX_CONCURRENCY}
"""
        for i, (name, server) in enumerate(zip(account_names(), servers, strict=True))
    )


def ideal_account(orders: int) -> float:
    """One account's latency floor: the token, page 1 alone, then the rest
    ``MAX_CONCURRENCY`` at a time, each request ``LATENCY``."""
    pages = math.ceil(orders / PAGE_SIZE)
    return (2 + math.ceil((pages - 1) / MAX_CONCURRENCY)) * LATENCY


async def fleet_benchmark(quick: bool) -> dict[str, Any]:
    """Run the section; return what ``_report.fleet_section`` prints (``skipped`` set and
    nothing measured when redis-server is missing)."""
    from yeastar_csss_async.sandbox import SANDBOX_CLIENT_SECRET

    orders, repeats = (QUICK_ORDERS, 1) if quick else (ORDERS, 2)
    result: dict[str, Any] = {
        "accounts": ACCOUNTS,
        "orders": orders,
        "repeats": repeats,
        "concurrency": MAX_CONCURRENCY,
        "latency": LATENCY,
        "page_size": PAGE_SIZE,
        "cores": os.cpu_count() or 1,
        "ideal_account": ideal_account(orders),
    }
    with (
        redis_server() as (redis, redis_missing),
        postgres_server() as (pg, pg_missing),
        tempfile.TemporaryDirectory(prefix="yca-fleet-bench-") as folder,
        contextlib.ExitStack() as stack,
    ):
        if redis is None:
            return {**result, "skipped": f"redis-server: {redis_missing}"}
        version = re.search(r"v=(\S+)", redis.version)
        result.update(
            redis_version=version.group(1) if version else redis.version,
            pg_missing=pg_missing,
            pg_version=pg.version if pg is not None else "",
        )
        servers = [
            stack.enter_context(
                server_process(
                    ServerSpec(
                        "sandbox",
                        orders,
                        PAGE_SIZE,
                        latency=LATENCY,
                        sandbox={"seed": 100 + i},
                        client_id=f"fleet-bench-client-{i}",
                    )
                )
            )
            for i in range(ACCOUNTS)
        ]
        accounts = Path(folder) / "accounts.toml"
        accounts.write_text(accounts_toml(servers), encoding="utf-8")
        env = {f"YCA_FLEET_ID_{i}": f"fleet-bench-client-{i}" for i in range(ACCOUNTS)}
        env["YCA_FLEET_SECRET"] = SANDBOX_CLIENT_SECRET
        runs: dict[str, list[dict[str, Any]]] = {c[0]: [] for c in CONTENDERS}
        run_no = 0
        for repeat in range(repeats):
            for name, processes, jobs in CONTENDERS if repeat % 2 == 0 else CONTENDERS[::-1]:
                run = await _run(
                    name, processes, jobs, run_no, servers, pg, redis, accounts, env, orders
                )
                run_no += 1
                runs[name].append(run)
                print(
                    f"  {name}: {run['wall']:.2f} s"
                    + (f" PROBLEMS: {run['problems']}" if run["problems"] else ""),
                    flush=True,
                )
    result["runs"] = runs
    return result


def summarize(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Medians and spreads per contender; ratios of throughput to one process in the same
    repeat; the floors: latency (waves of accounts) and CPU (all CPU seconds / cores)."""
    runs, cores = result["runs"], result["cores"]
    records = result["accounts"] * result["orders"]
    baseline = [r["wall"] for r in runs[BASELINE]]
    out = {}
    for name, processes, jobs in CONTENDERS:
        rs = runs[name]
        walls = [r["wall"] for r in rs]
        ratios = [b / w for b, w in zip(baseline, walls, strict=True)]
        total = [
            r["workers_cpu"] + r["sandbox_cpu"] + r["pg_cpu"] + r["redis_cpu"] + r["harness_cpu"]
            for r in rs
        ]
        latency_floor = math.ceil(result["accounts"] / (processes * jobs)) * result["ideal_account"]
        cpu_floor = statistics.median(total) / cores
        wall = statistics.median(walls)
        out[name] = {
            "processes": processes,
            "jobs": jobs,
            "wall": wall,
            "wall_min": min(walls),
            "wall_max": max(walls),
            "records_per_s": records / wall,
            "ratio": statistics.median(ratios),
            "ratio_min": min(ratios),
            "ratio_max": max(ratios),
            **{
                key: statistics.median(r[key] for r in rs)
                for key in (
                    "workers_cpu",
                    "worker_share_max",
                    "sandbox_cpu",
                    "sandbox_share_max",
                    "pg_cpu",
                    "redis_cpu",
                    "harness_cpu",
                    "requests",
                )
            },
            "machine_busy": statistics.median(
                t / (cores * r["window"]) for t, r in zip(total, rs, strict=True)
            ),
            "latency_floor": latency_floor,
            "cpu_floor": cpu_floor,
            "to_floor": wall / max(latency_floor, cpu_floor),
            "peak_in_flight": max(r["peak_in_flight"] for r in rs),
            "grants": sorted({g for r in rs for g in r["grants"]}),
            "jobs_per_process": ["+".join(map(str, r["jobs_per_process"])) for r in rs],
            "split_floor": statistics.median(
                math.ceil(max(r["jobs_per_process"], default=0) / jobs) * result["ideal_account"]
                for r in rs
            ),
            "problems": [p for r in rs for p in r["problems"]],
        }
    return out
