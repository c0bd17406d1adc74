"""What the clients of one account share across processes: the seam a coordinator fills.

A client made with ``coordinator=`` asks it for an :class:`AccountLink` of its account and
then takes its concurrency slots, its 429 pause and (Yeastar) its token through that link, so
that every process using the same coordinator behaves like one client. Without a coordinator
(the default) all of that stays inside the client, as it always has.
:class:`~yeastar_csss_async.redis.RedisCoordinator` is the implementation for a fleet.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from typing import Protocol, runtime_checkable

import attrs

__all__ = ["AccountLink", "Coordinator", "LocalCoordinator", "SharedToken"]


@attrs.frozen(repr=False)
class SharedToken:
    """A Yeastar token as the fleet shares it. ``expires_at`` and ``refresh_expires_at`` are
    wall-clock epoch seconds (processes do not share a monotonic clock)."""

    access_token: str
    expires_at: float
    refresh_token: str | None = None
    refresh_expires_at: float = 0.0

    def __repr__(self) -> str:  # never the tokens themselves
        return f"SharedToken(expires_at={self.expires_at:.0f})"


@runtime_checkable
class AccountLink(Protocol):
    """One client's view of what its account shares with every other process."""

    def slot(self) -> AbstractAsyncContextManager[None]:
        """Hold one of the account's ``max_concurrency`` slots for one request attempt (a
        lease: a holder that dies loses it after the lease time). Entering waits while the
        account is paused (see :meth:`pause`) and while every slot is taken."""
        ...

    async def pause(self, seconds: float) -> None:
        """Pause every process of the account for ``seconds`` from now (never shortens a
        pause already set)."""
        ...

    async def load_token(self) -> SharedToken | None:
        """The fleet's current token, or None."""
        ...

    async def store_token(self, token: SharedToken) -> None:
        """Make ``token`` the fleet's current token."""
        ...

    def renewal(self) -> AbstractAsyncContextManager[None]:
        """Hold the account's token-renewal lock: one renewal at a time across the fleet.
        Whoever gets it next must read the store again before renewing."""
        ...

    async def aclose(self) -> None:
        """Release what this link holds (the client is closing)."""
        ...


@runtime_checkable
class Coordinator(Protocol):
    """Gives each client the :class:`AccountLink` of its account."""

    def link(self, account: str, *, max_concurrency: int, lease_seconds: float) -> AccountLink:
        """The link for ``account`` (a stable name of the credentials, never a secret).
        ``max_concurrency`` is the account's fleet-wide limit; ``lease_seconds`` how long a
        slot lease outlives a holder that died (at least one request attempt's timeout)."""
        ...


class LocalCoordinator:
    """A coordinator for the clients of one process and event loop: clients of the same
    account made with the same ``LocalCoordinator`` share one token, one ``max_concurrency``
    limit (the first client's) and one 429 pause. For several processes, use
    :class:`~yeastar_csss_async.redis.RedisCoordinator`."""

    def __init__(self) -> None:
        self._links: dict[str, _LocalLink] = {}

    def link(self, account: str, *, max_concurrency: int, lease_seconds: float) -> AccountLink:
        """The link of ``account`` (made by its first client)."""
        del lease_seconds  # a process that dies takes its slots with it
        found = self._links.get(account)
        if found is None:
            found = self._links[account] = _LocalLink(max_concurrency)
        return found

    def __repr__(self) -> str:
        return f"LocalCoordinator(accounts={len(self._links)})"


class _LocalLink:
    def __init__(self, limit: int) -> None:
        self._slots = asyncio.Semaphore(limit)
        self._until = 0.0
        self._token: SharedToken | None = None
        self._renewal = asyncio.Lock()

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        async with self._slots:  # the pause is checked once the slot is ours, as it may
            while (delay := self._until - time.monotonic()) > 0:  # noqa: ASYNC110
                await asyncio.sleep(delay)  # have begun (or grown) while we queued
            yield

    async def pause(self, seconds: float) -> None:
        self._until = max(self._until, time.monotonic() + seconds)

    async def load_token(self) -> SharedToken | None:
        return self._token

    async def store_token(self, token: SharedToken) -> None:
        self._token = token

    def renewal(self) -> AbstractAsyncContextManager[None]:
        return self._renewal

    async def aclose(self) -> None:
        """Nothing to release: other clients may still use this link."""
