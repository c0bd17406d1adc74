"""What tests of the clients share: quick retries, and the client's own tasks left over."""

from __future__ import annotations

import asyncio

from yeastar_csss_async import RetryPolicy

FAST_RETRY = RetryPolicy(max_attempts=5, initial_backoff=0.001, max_backoff=0.01)
"""Retries that back off for milliseconds, so fault tests stay quick."""


def client_side_tasks() -> set[asyncio.Task[object]]:
    """Tasks of this loop other than the current one and the sandbox server's own handlers
    (which share the loop in end-to-end tests)."""
    current = asyncio.current_task()
    return {
        task
        for task in asyncio.all_tasks()
        if task is not current
        and not task.get_coro().__qualname__.startswith(  # type: ignore[union-attr]
            ("RequestHandler.", "Server.", "BaseSelectorEventLoop._accept_connection")
        )
    }
