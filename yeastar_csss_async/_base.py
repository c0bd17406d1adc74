"""What both clients share: argument checks, the transport, the context manager, paging."""

from __future__ import annotations

import copy
import hashlib
import os
from collections.abc import Awaitable, Callable, Hashable, Mapping, Sequence
from types import TracebackType
from typing import Self, TypedDict, TypeVar

import aiohttp

from ._apis import ApiSpec
from ._coordination import Coordinator
from ._errors import ConfigurationError
from ._paging import PageIterator
from ._redaction import Redactor
from ._retry import RetryPolicy
from ._transport import ErrorDescriber, Transport, TransportStats
from ._validation import require_header_text, require_positive_int
from .models import Page

T = TypeVar("T")


class ClientOptions(TypedDict, total=False):
    """The keyword options both clients take (for their ``from_env()``)."""

    base_url: str
    max_concurrency: int
    retry: RetryPolicy | None
    timeout: float
    session: aiohttp.ClientSession | None
    user_agent: str | None
    max_response_bytes: int
    coordinator: Coordinator | None


LEASE_MARGIN_SECONDS = 5.0


def slot_lease(timeout: float) -> float:
    """How long a fleet-wide slot lease lasts: twice ``timeout``, and at least ``timeout``
    plus 5 s. A request attempt holds its slot at most ``timeout`` seconds (plus setting a
    pause), and a process that dies holding one frees it when the lease runs out."""
    return max(2 * timeout, timeout + LEASE_MARGIN_SECONDS)


READ_AHEAD_FACTOR = 2
"""Page fetches in flight per iterator, per unit of ``max_concurrency`` (the ones over the
limit wait for a slot, so a slot that frees up is taken at once)."""
DEFAULT_READ_AHEAD = 20_000
"""Records fetched ahead of the consumer by default (or two windows of pages if more): enough
for the other slots to keep working while the next page in order waits in a retry backoff
(measured: ordered / unordered 1.00 at 20,000 and 1.32 at 10,000 for 200,000 orders, 50 ms
latency, 10% transient faults, default RetryPolicy). About 650 bytes per order: 13 MB at most."""


def default_read_ahead(max_concurrency: int, page_size: int) -> int:
    """The ``read_ahead`` an iterator gets when the caller does not choose one."""
    return max(DEFAULT_READ_AHEAD, 2 * READ_AHEAD_FACTOR * max_concurrency * page_size)


class BaseClient:
    """Owns the transport of one client; an async context manager."""

    def __init__(
        self,
        *,
        base_url: str,
        max_concurrency: int,
        retry: RetryPolicy | None,
        timeout: float,
        session: aiohttp.ClientSession | None,
        user_agent: str | None,
        redactor: Redactor,
        describe_error: ErrorDescriber,
        max_response_bytes: int,
        coordinator: Coordinator | None = None,
        account: str = "",
    ) -> None:
        if retry is not None and not isinstance(retry, RetryPolicy):
            raise TypeError("retry must be a RetryPolicy or None")
        if user_agent is not None:
            require_header_text("user_agent", user_agent)
        self._redactor = redactor
        self._view_of: BaseClient | None = None
        self._transport = Transport(
            base_url,
            max_concurrency=max_concurrency,
            retry=retry or RetryPolicy(),
            timeout=timeout,
            session=session,
            user_agent=user_agent,
            redactor=redactor,
            describe_error=describe_error,
            max_response_bytes=max_response_bytes,
        )
        if coordinator is not None:
            if not isinstance(coordinator, Coordinator):
                raise TypeError(
                    "coordinator must be a Coordinator (e.g. "
                    "yeastar_csss_async.redis.RedisCoordinator) or None"
                )
            self._transport.link = coordinator.link(
                account, max_concurrency=max_concurrency, lease_seconds=slot_lease(timeout)
            )

    @property
    def base_url(self) -> str:
        """The API base URL requests go to."""
        return self._transport.base_url

    @property
    def max_concurrency(self) -> int:
        """Requests of this client in flight at most, across all its iterators and tasks."""
        return self._transport.max_concurrency

    @property
    def max_response_bytes(self) -> int:
        """The largest answer body this client reads (a larger one is a
        :class:`ResponseFormatError`)."""
        return self._transport.max_response_bytes

    @property
    def stats(self) -> TransportStats:
        """Requests sent, retries and 429 answers seen by this client so far."""
        return self._transport.stats

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP session if the client created it (a borrowed one stays open).

        On a view from :meth:`with_options` this does nothing: the view shares the client's
        session, which the client itself closes."""
        if self._view_of is None:
            link, self._transport.link = self._transport.link, None
            try:
                if link is not None:
                    await link.aclose()
            finally:
                await self._transport.aclose()

    def with_options(
        self, *, timeout: float | None = None, retry: RetryPolicy | None = None
    ) -> Self:
        """A view of this client with another ``timeout`` (seconds per attempt) and/or
        ``retry`` policy, for one call or a block::

            page = await client.with_options(timeout=5).get_orders_page(1)
            async with client.with_options(retry=RetryPolicy(max_attempts=1)) as strict:
                ...

        The view shares everything else with the client: the HTTP session, the
        ``max_concurrency`` slots (requests of both count against one limit), the 429 pause,
        the stats and, for Yeastar, the token. Leaving ``async with`` on a view closes
        nothing; closing the client closes its views.
        """
        view = copy.copy(self)
        view._transport = self._transport.with_options(timeout=timeout, retry=retry)
        view._view_of = self if self._view_of is None else self._view_of
        return view

    def _iterate(
        self,
        fetch: Callable[[int], Awaitable[Page[T]]],
        key: Callable[[T], Hashable | None],
        *,
        page_size: int,
        ordered: bool,
        dedupe: bool,
        read_ahead: int | None,
        label: str,
        start_page: int = 1,
        limit: int | None = None,
    ) -> PageIterator[T]:
        require_positive_int("page_size", page_size)
        require_positive_int("start_page", start_page)
        if limit is not None:
            require_positive_int("limit", limit)
        concurrency = self._transport.max_concurrency
        if read_ahead is None:
            read_ahead = default_read_ahead(concurrency, page_size)
        require_positive_int("read_ahead", read_ahead)
        return PageIterator(
            fetch,
            key,
            page_size=page_size,
            ordered=bool(ordered),
            dedupe=bool(dedupe),
            max_ahead=READ_AHEAD_FACTOR * concurrency,
            read_ahead=read_ahead,
            label=label,
            start_page=start_page,
            limit=limit,
        )

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(base_url={self.base_url!r}, "
            f"max_concurrency={self.max_concurrency})"
        )


def credentials_from_env(
    environ: Mapping[str, str] | None, api: ApiSpec
) -> tuple[str, str, str | None]:
    """The two credentials of ``api`` (stripped) and its optional base URL from the
    environment, or a :class:`ConfigurationError` naming every variable that is missing or
    empty."""
    values, missing = env_values(api.credential_env, environ)
    if missing:
        raise ConfigurationError(f"set {' and '.join(missing)} in the environment")
    base_url = env_values((api.base_url_env,), environ)[0][0]
    return values[0], values[1], base_url or None


def env_values(
    names: Sequence[str],
    environ: Mapping[str, str] | None = None,
) -> tuple[list[str], list[str]]:
    """The values of the variables ``names`` (stripped; ``""`` when unset) in ``environ``
    (default ``os.environ``), and the names of those that are unset or blank."""
    env = os.environ if environ is None else environ
    values = [env.get(name, "").strip() for name in names]
    return values, [name for name, value in zip(names, values, strict=True) if not value]


def account_key(kind: str, identity: str, base_url: str) -> str:
    """The name a coordinator knows an account by: the API and a hash of its public id (the
    client id or access code) on its server, the same in every process and never a secret.
    The same id on another server (a sandbox, a staging portal) is another account: its
    tokens are not valid there."""
    digest = hashlib.sha256(f"{base_url.rstrip('/')}\0{identity}".encode()).hexdigest()
    return f"{kind}-{digest[:24]}"
