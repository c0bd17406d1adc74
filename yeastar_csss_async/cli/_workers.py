"""``yeastar-csss worker`` and ``yeastar-csss enqueue`` (extra ``[workers]``): taskiq jobs
through Redis. Only these commands import taskiq."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Iterator
from types import ModuleType
from typing import Any

from ._fleet import MISSING_EXTRA
from ._fleet import redis_errors as _redis_errors
from ._fleet import redis_failure as _redis_failure
from ._fleet import tasks_module as _tasks
from ._usage import UsageError
from ._worker_watch import fleet_metrics, process_metrics, worker_logger, worker_logging

__all__ = ["run_enqueue", "run_worker"]


async def run_enqueue(args: argparse.Namespace) -> int:
    """Queue one job; print its task id (one line on stdout)."""
    tasks = _tasks()
    if not args.account.strip():
        raise UsageError("--account must not be empty")
    if args.accounts is not None:
        _check_account(tasks, args.accounts, args.account)
    broker = tasks.make_broker(args.redis, queue_name=args.queue, results=False)
    try:
        await broker.startup()
        if args.action == "sync":
            task_id = await tasks.enqueue_sync(broker, args.account, args.kind)
        else:
            task_id = await tasks.enqueue_export(broker, args.account, args.kind, args.output)
    except (OSError, _redis_errors()) as error:
        raise _redis_failure(args.redis, error) from None
    finally:
        with contextlib.suppress(Exception):
            await broker.shutdown()
    print(task_id, flush=True)
    if args.wait is not None:
        from ._results import wait_for_result

        return await wait_for_result(args.redis, args.queue, task_id, args.wait)
    return 0


def _check_account(tasks: ModuleType, path: str, account: str) -> None:
    """A :class:`UsageError` unless the accounts file ``path`` defines ``account``."""
    try:
        accounts = tasks.load_accounts(path)
    except tasks.AccountsFileError as error:
        raise UsageError(str(error)) from None
    if account not in accounts:
        raise UsageError(
            f"unknown account {account!r}: {path} defines {', '.join(sorted(accounts))}; "
            "nothing was queued"
        )


async def run_worker(args: argparse.Namespace) -> int:
    """Run jobs until SIGTERM or SIGINT (then let running jobs finish: exit 0)."""
    tasks = _tasks()
    accounts, export_dir = _check_worker_options(tasks, args)
    with worker_logging(tasks, args.log_format):
        if args.workers > 1:
            from ..sync import SyncStore

            # Create or upgrade the tables once, here, rather than in N processes at once
            # (their schema creations would race on a new database).
            async with SyncStore(args.db):
                pass
            return await _supervise(tasks, args)
        return await _run_one_worker(tasks, args, accounts, export_dir)


async def _run_one_worker(
    tasks: ModuleType, args: argparse.Namespace, accounts: Any, export_dir: str
) -> int:
    broker = tasks.make_broker(args.redis, queue_name=args.queue, reclaim_after=args.claim_timeout)
    tasks.configure_worker(
        broker,
        tasks.WorkerSettings(
            accounts=accounts,
            database_url=args.db,
            redis_url=args.redis,
            namespace=args.namespace,
            export_dir=export_dir,
        ),
    )
    stop = asyncio.Event()

    def ready() -> None:
        worker_logger.info(
            "worker %d ready: %d accounts, queue %s", os.getpid(), len(accounts), args.queue
        )

    with _stop_on_signals(stop.set):
        try:
            async with process_metrics(tasks, args):
                await tasks.run_jobs(
                    broker,
                    stop,
                    max_jobs=args.jobs,
                    shutdown_timeout=args.shutdown_timeout,
                    on_ready=ready,
                )
        except (OSError, _redis_errors()) as error:
            raise _redis_failure(args.redis, error) from None
    worker_logger.info("worker %d stopped", os.getpid())
    return 0


def _check_worker_options(tasks: ModuleType, args: argparse.Namespace) -> tuple[Any, str]:
    """The accounts and the export directory (absolute); usage errors before anything
    starts."""
    try:
        accounts = tasks.load_accounts(args.accounts)
    except tasks.AccountsFileError as error:
        raise UsageError(str(error)) from None
    if not os.path.isdir(args.export_dir):
        raise UsageError(f"--export-dir {args.export_dir}: no such directory")
    try:
        from ..sync import SyncError, SyncStore
    except ImportError:
        raise UsageError(MISSING_EXTRA) from None
    try:
        SyncStore(args.db)  # the URL is checked now; the worker connects when it starts
    except SyncError as error:
        raise UsageError(str(error)) from None
    return accounts, os.path.abspath(args.export_dir)


async def _supervise(tasks: ModuleType, args: argparse.Namespace) -> int:
    """``--workers N``: N worker processes; a signal is passed on to each of them. With
    ``--metrics-port``, the children's metrics are served here, summed. The Redis and
    database URLs (passwords and all) and the accounts file reach the children through
    their environment variables, never their command line (which ``ps`` shows anyone)."""
    with fleet_metrics(tasks, args) as env:
        return await _supervise_children(args, env)


async def _supervise_children(args: argparse.Namespace, metrics_env: dict[str, str] | None) -> int:
    from .._apis import ACCOUNTS_ENV, DB_ENV, REDIS_ENV

    env = {
        **(metrics_env or os.environ),
        REDIS_ENV: args.redis,
        DB_ENV: args.db,
        ACCOUNTS_ENV: args.accounts,
    }
    argv = [
        sys.executable,
        "-m",
        "yeastar_csss_async",
        "worker",
        "--workers",
        "1",
        "--jobs",
        str(args.jobs),
        "--queue",
        args.queue,
        "--namespace",
        args.namespace,
        "--export-dir",
        args.export_dir,
        "--shutdown-timeout",
        str(args.shutdown_timeout),
        "--claim-timeout",
        str(args.claim_timeout),
        "--log-format",
        args.log_format,
    ]
    children: list[asyncio.subprocess.Process] = []
    stopping: list[bool] = []

    def stop() -> None:
        stopping.append(True)
        for child in children:
            if child.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    child.send_signal(signal.SIGTERM)

    with _stop_on_signals(stop):
        try:
            for _ in range(args.workers):
                children.append(
                    await asyncio.create_subprocess_exec(
                        *argv, stdin=asyncio.subprocess.DEVNULL, env=env
                    )
                )
            waits = {asyncio.ensure_future(child.wait()): child for child in children}
            pending = set(waits)
            code = 0
            while pending:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for finished in done:
                    status = finished.result()
                    if status != 0 and not stopping:
                        worker_logger.error(
                            "worker %d exited with status %d: stopping the others",
                            waits[finished].pid,
                            status,
                        )
                        code = 1
                        stop()
                    elif status != 0:
                        code = code or 1
            return code
        finally:
            for child in children:  # cancelled (or failed to start the rest): leave none
                if child.returncode is None:
                    with contextlib.suppress(ProcessLookupError):
                        child.kill()
                    await child.wait()


@contextlib.contextmanager
def _stop_on_signals(callback: object) -> Iterator[None]:
    """SIGTERM and SIGINT call ``callback`` instead of cancelling the command."""
    loop = asyncio.get_running_loop()
    installed = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, callback)  # type: ignore[arg-type]
            installed.append(sig)
    try:
        yield
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)
