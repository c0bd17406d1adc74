"""The dispatcher: runs the parsed command, each of which lives in a module of its own
(``export`` in :mod:`._export`, ``sync`` in :mod:`._sync`, ``worker`` and ``enqueue`` in
:mod:`._workers`, ``scheduler`` in :mod:`._scheduler`, ``result`` in :mod:`._results`,
``status`` in :mod:`._status`, ``sandbox`` in :mod:`._sandbox`). ``--db``, ``--redis`` and
``--accounts`` left unset take their environment variables first (:mod:`._defaults`). The
commands of an extra are imported only when they run, so a missing extra fails only its own
commands."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal

from ._defaults import apply_environment

__all__ = ["run"]


async def run(args: argparse.Namespace) -> int:
    """Run the parsed command; SIGTERM cancels it and makes the exit code 143."""
    main_task = asyncio.current_task()
    loop = asyncio.get_running_loop()
    terminated: list[bool] = []

    def on_sigterm() -> None:
        terminated.append(True)
        if main_task is not None:
            main_task.cancel()

    with contextlib.suppress(NotImplementedError, RuntimeError):
        loop.add_signal_handler(signal.SIGTERM, on_sigterm)
    try:
        return await _dispatch(args)
    except asyncio.CancelledError:
        if terminated:
            return 143
        raise


async def _dispatch(args: argparse.Namespace) -> int:
    apply_environment(args)
    if args.command == "export":
        from ._export import run_export

        return await run_export(args)
    if args.command == "sync":
        from ._sync import run_sync  # the [sync] extra is imported only for sync

        return await run_sync(args)
    if args.command == "worker":
        from ._workers import run_worker  # the [workers] extra: only here

        return await run_worker(args)
    if args.command == "enqueue":
        from ._workers import run_enqueue

        return await run_enqueue(args)
    if args.command == "scheduler":
        from ._scheduler import run_scheduler

        return await run_scheduler(args)
    if args.command == "result":
        from ._results import run_result

        return await run_result(args)
    if args.command == "status":
        from ._status import run_status

        return await run_status(args)
    from ._sandbox import run_sandbox_command

    return await run_sandbox_command(args)
