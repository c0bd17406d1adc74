"""Section 6: syncing 100,000 orders into SQLite and PostgreSQL, beside a plain export.

Two conditions, measured in the same run, each against its own sandbox process:

* loopback: no latency. The export is CPU-bound (a few microseconds per order), so a ratio
  shows what the sync's own work costs in CPU.
* 50 ms latency: every request waits 50 ms in the sandbox before it is answered, as against
  the real API. The export is latency-bound (ideal: page 1 alone, then the rest
  ``CONCURRENCY`` at a time); the sync fetches pages ahead while it writes, so a ratio near 1
  means its own work is hidden behind the API's latency.

Contenders, alternating within each repeat (a first sync always before the no-op re-sync of
the same database):

* export: ``iter_orders(page_size=100, ordered=False)`` counted, no ``to_jsonable``, no file:
  what ``yeastar-csss export --unordered`` does minus encoding and writing.
* sqlite first / no-op: ``async with SyncStore(url) as store: await sync_orders(store,
  client)`` into a fresh SQLite file, then the same again (nothing changed: 0 writes).
* postgresql first / no-op: the same into a fresh database of a throwaway PostgreSQL 15
  cluster (``tests/_support/postgres_server.py``: fsync and synchronous_commit off).

The sandbox serves the orders from its own process (CPU share printed); the client's CPU is
``time.process_time()`` of this process (the aiosqlite thread included); PostgreSQL's CPU is
read from ``/proc`` for the postmaster and its children (a backend that has exited is
counted in the postmaster's ``cutime``/``cstime``). The timed window of a sync includes
opening and closing the store, as a user's run does.

A last, untimed pass per database (loopback only) splits a first and a no-op sync into time
slices (wall seconds inside the sync's statements, measured around ``AsyncConnection.execute``).
"""

from __future__ import annotations

import collections
import contextlib
import gc
import importlib
import math
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

from _contenders import library_client, library_count, warm
from _server import ServerHandle, ServerSpec, server_process

ORDERS, PAGE_SIZE, CONCURRENCY = 100_000, 100, 8
LATENCY = 0.05
"""Seconds the latency condition's sandbox waits before answering each request."""
FIRST_TARGET, NOOP_TARGET = 1.5, 1.2
CONTENDERS = ("export", "sqlite first", "sqlite no-op", "postgresql first", "postgresql no-op")
ROOT = Path(__file__).resolve().parent.parent
"""The checkout: the tests' helpers are imported from it as ``tests._support.*``."""
_TICK = os.sysconf("SC_CLK_TCK")


# --- PostgreSQL: the tests' throwaway cluster, and its CPU -------------------------------------


@contextlib.contextmanager
def test_service(module_name: str, start: str, stop: str) -> Iterator[tuple[Any, str]]:
    """A server the tests start (``tests/_support/MODULE_NAME.py``'s ``start()``, stopped
    with ``stop``) and "", or None and why not (the rows that need it are then left out)."""
    try:
        import pytest  # the helpers skip a test with it when the service is missing

        skipped: type[BaseException] = pytest.skip.Exception
        sys.path.insert(0, str(ROOT))  # the helpers import each other as tests._support.*
        try:
            module = importlib.import_module(f"tests._support.{module_name}")
        finally:
            sys.path.remove(str(ROOT))
    except Exception as error:  # pytest missing, or the helper moved
        yield None, f"cannot load tests/_support/{module_name}.py: {error}"
        return
    try:
        server = getattr(module, start)()
    except (Exception, skipped) as error:
        yield None, str(error).splitlines()[0] if str(error) else type(error).__name__
        return
    try:
        yield server, ""
    finally:
        getattr(server, stop)()


def postgres_server() -> contextlib.AbstractContextManager[tuple[Any, str]]:
    """The tests' throwaway PostgreSQL cluster (``tests/_support/postgres_server.py``), or why
    not."""
    return test_service("postgres_server", "start_server", "stop")


def postgres_cpu(datadir: Path) -> float:
    """CPU seconds of the postmaster, its live children and the children it has reaped."""
    try:
        root = int((datadir / "postmaster.pid").read_text().split("\n", 1)[0])
    except (OSError, ValueError):
        return float("nan")
    total = 0.0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            text = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2 :].split()  # fields[0] is field 3, "state"
        pid, parent = int(entry), int(fields[1])
        if pid == root:
            total += sum(int(f) for f in fields[11:15]) / _TICK  # utime stime cutime cstime
        elif parent == root:
            total += (int(fields[11]) + int(fields[12])) / _TICK
    return total


# --- one timed contender ----------------------------------------------------------------------


async def _timed(
    server: ServerHandle, work: Callable[[], Awaitable[int]], pg_datadir: Path | None
) -> dict[str, float]:
    gc.collect()
    pg = postgres_cpu(pg_datadir) if pg_datadir is not None else 0.0
    server.mark()
    cpu, wall = time.process_time(), time.perf_counter()
    records = await work()
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    usage = server.usage()
    pg = postgres_cpu(pg_datadir) - pg if pg_datadir is not None else 0.0
    if records != ORDERS:
        raise RuntimeError(f"expected {ORDERS} records, got {records}")
    return {"wall": wall, "cpu": cpu, "server_share": usage.share, "pg_cpu": pg}


async def _run_one(
    server: ServerHandle, name: str, url: str | None, pg_datadir: Path | None
) -> dict[str, float]:
    from yeastar_csss_async.sync import SyncStore, sync_orders

    async with library_client(server.base_url, CONCURRENCY) as client:
        await warm(client)
        if name == "export":
            return await _timed(
                server, lambda: library_count(client, page_size=PAGE_SIZE, ordered=False), None
            )
        first = name.endswith("first")
        assert url is not None

        async def sync() -> int:
            async with SyncStore(url) as store:
                report = await sync_orders(store, client, page_size=PAGE_SIZE)
            expected = (ORDERS, 0) if first else (0, ORDERS)
            if (report.new, report.unchanged) != expected or report.changed or report.gone:
                raise RuntimeError(f"{name}: unexpected counts: {report.summary()}")
            return report.seen

        return await _timed(server, sync, pg_datadir if name.startswith("postgresql") else None)


def _order(repeat: int, backends: list[str]) -> list[str]:
    """Even repeats: export, firsts, no-ops; odd: the backends reversed, export in the middle
    (a first sync always before the no-op re-sync of the same database)."""
    firsts = [f"{b} first" for b in backends]
    noops = [f"{b} no-op" for b in backends]
    if repeat % 2 == 0:
        return ["export", *firsts, *noops]
    return [*reversed(firsts), "export", *reversed(noops)]


# --- time slices --------------------------------------------------------------------------------

ROWS = "make rows (to_jsonable, hash)"
OUTSIDE = "statements outside pages: lock, run record, mark gone, finish"


@contextlib.contextmanager
def _slices() -> Iterator[collections.defaultdict[str, float]]:
    """Wall seconds by what a sync was doing: making rows, each kind of statement, the rest of
    a page's transaction (begin, compare, commit) and the run's own steps."""
    import sqlalchemy as sa
    from sqlalchemy.ext.asyncio import AsyncConnection

    from yeastar_csss_async.sync import _rows, _run
    from yeastar_csss_async.sync._tables import RUNS

    spent: collections.defaultdict[str, float] = collections.defaultdict(float)
    inside = [False]  # one sync at a time: inside a page's _write or not
    row, execute, write = _rows.RowMaker.row, AsyncConnection.execute, _run.SyncRun._write

    def timed_row(self: Any, record: object) -> Any:
        started = time.perf_counter()
        try:
            return row(self, record)
        finally:
            spent[ROWS] += time.perf_counter() - started

    async def timed_execute(self: Any, statement: Any, *args: Any, **kwargs: Any) -> Any:
        if not inside[0]:
            kind = OUTSIDE
        elif isinstance(statement, sa.Select):
            kind = "SELECT stored hashes"
        elif isinstance(statement, sa.Insert):
            kind = "upsert new/changed rows"
        elif isinstance(statement, sa.Update):
            kind = (
                "UPDATE sync_runs counts"
                if statement.table is RUNS
                else "UPDATE last_seen_at (unchanged) / gone_at"
            )
        else:
            kind = "SET LOCAL plan_cache_mode (PostgreSQL; carries the BEGIN)"
        started = time.perf_counter()
        try:
            return await execute(self, statement, *args, **kwargs)
        finally:
            spent[kind] += time.perf_counter() - started

    async def timed_write(self: Any, *args: Any, **kwargs: Any) -> None:
        started, inside[0] = time.perf_counter(), True
        try:
            await write(self, *args, **kwargs)
        finally:
            inside[0] = False
            spent["_write"] += time.perf_counter() - started

    _rows.RowMaker.row = timed_row  # type: ignore[method-assign]
    AsyncConnection.execute = timed_execute  # type: ignore[method-assign]
    _run.SyncRun._write = timed_write  # type: ignore[method-assign]
    try:
        yield spent
    finally:
        _rows.RowMaker.row = row  # type: ignore[method-assign]
        AsyncConnection.execute = execute  # type: ignore[method-assign]
        _run.SyncRun._write = write  # type: ignore[method-assign]


async def _profile(server: ServerHandle, name: str, url: str) -> dict[str, float]:
    from yeastar_csss_async.sync import SyncStore, sync_orders

    with _slices() as spent:
        async with library_client(server.base_url, CONCURRENCY) as client:
            await warm(client)
            cpu, wall = time.process_time(), time.perf_counter()
            async with SyncStore(url) as store:
                await sync_orders(store, client, page_size=PAGE_SIZE)
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    write = spent.pop("_write")
    statements = sum(v for k, v in spent.items() if k != OUTSIDE and k != ROWS)
    spent["begin, compare, commit (rest of a page)"] = write - statements - spent[ROWS]
    spent["outside pages: waiting for pages, Python between them"] = wall - write - spent[OUTSIDE]
    return {"wall": wall, "cpu": cpu, **spent}


# --- the section ------------------------------------------------------------------------------


def ideal_export(latency: float) -> float:
    """The latency-bound export's floor: page 1 alone, then the rest CONCURRENCY at a time."""
    pages = math.ceil(ORDERS / PAGE_SIZE)
    return (1 + math.ceil((pages - 1) / CONCURRENCY)) * latency


async def _condition(
    name: str, latency: float, repeats: int, profile: bool, pg: Any, folder: str
) -> dict[str, Any]:
    """All contenders, alternating, ``repeats`` times against a sandbox with ``latency``;
    then, if ``profile``, one untimed pass per database split into time slices."""
    runs: dict[str, list[dict[str, float]]] = {c: [] for c in CONTENDERS}
    profiles: dict[str, dict[str, float]] = {}
    backends = ["sqlite", "postgresql"] if pg is not None else ["sqlite"]
    pg_datadir = Path(pg.datadir) if pg is not None else None
    tag = "lat" if latency else "loop"
    with server_process(ServerSpec("sandbox", ORDERS, PAGE_SIZE, latency=latency)) as server:
        for repeat in range(repeats + int(profile)):  # a last, untimed pass: time slices
            urls = {"sqlite": f"sqlite:///{folder}/sync-{tag}-{repeat}.db"}
            database = pg.create_database(f"bench_{tag}_{repeat}") if pg is not None else None
            if pg is not None:
                urls["postgresql"] = pg.sqlalchemy_url_for(database)
            try:
                for contender in _order(repeat, backends):
                    backend = contender.split()[0]
                    if repeat == repeats:
                        if contender != "export":
                            profiles[contender] = await _profile(server, contender, urls[backend])
                        continue
                    runs[contender].append(
                        await _run_one(server, contender, urls.get(backend), pg_datadir)
                    )
            finally:
                if database is not None:
                    pg.drop_database(database)
    return {
        "name": name,
        "latency": latency,
        "repeats": repeats,
        "ideal": ideal_export(latency) if latency else None,
        "runs": {k: v for k, v in runs.items() if v},
        "profiles": profiles,
    }


async def sync_benchmark(quick: bool) -> dict[str, Any]:
    """Run the section (loopback, then 50 ms per request); return what
    ``_report.sync_section`` prints."""
    conditions = []
    with (
        postgres_server() as (pg, pg_missing),
        tempfile.TemporaryDirectory(prefix="yca-sync-bench-") as folder,
    ):
        conditions.append(await _condition("loopback", 0.0, 1 if quick else 3, True, pg, folder))
        conditions.append(
            await _condition(
                f"{LATENCY * 1000:.0f} ms latency", LATENCY, 1 if quick else 2, False, pg, folder
            )
        )
    return {
        "orders": ORDERS,
        "page_size": PAGE_SIZE,
        "concurrency": CONCURRENCY,
        "conditions": conditions,
        "pg_missing": pg_missing,
        "pg_version": pg.version if pg is not None else "",
    }


def summarize(condition: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Medians and spreads per contender; ratios to the export of the same repeat (the
    median of those per-repeat ratios, with their min-max)."""
    runs = condition["runs"]
    export = [r["wall"] for r in runs["export"]]
    out = {}
    for name, rs in runs.items():
        walls = [r["wall"] for r in rs]
        ratios = [w / e for w, e in zip(walls, export, strict=True)]
        out[name] = {
            "wall": statistics.median(walls),
            "wall_min": min(walls),
            "wall_max": max(walls),
            "records_per_s": ORDERS / statistics.median(walls),
            "ratio": statistics.median(ratios),
            "ratio_min": min(ratios),
            "ratio_max": max(ratios),
            "cpu": statistics.median(r["cpu"] for r in rs),
            "client_share": statistics.median(r["cpu"] / r["wall"] for r in rs),
            "server_share": statistics.median(r["server_share"] for r in rs),
            "server_share_max": max(r["server_share"] for r in rs),
            "pg_cpu": statistics.median(r["pg_cpu"] for r in rs),
        }
    return out
