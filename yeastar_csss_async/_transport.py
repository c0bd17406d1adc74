"""The session manager: one aiohttp session, a concurrency limit, a shared pause gate, retries.

Every request of a client goes through :meth:`Transport.send`, which

1. builds the request afresh for each attempt (a new token, a new CSSS signature) *before*
   taking a concurrency slot, so building never waits on a slot held by someone else;
2. takes one of ``max_concurrency`` slots, then waits while the client is paused by a 429;
3. starts the per-attempt timeout only then (queueing for a slot is not a timeout);
4. retries 429, 5xx, connection errors and timeouts per :class:`RetryPolicy`, releasing its
   slot while it backs off, and pauses the whole client when the server asks (Retry-After).

Answers that are not retried (2xx, other 4xx) come back as :class:`RawResponse` for the
protocol layer to decode.
"""

from __future__ import annotations

import asyncio
import logging
import platform
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import NoReturn

import aiohttp
import attrs

from ._errors import APIError, RateLimitError, Redactor, TransportError
from ._retry import RetryPolicy, is_retryable_status, parse_retry_after
from ._version import __version__

__all__ = ["PauseGate", "RawResponse", "RequestSpec", "Transport", "TransportStats", "logger"]

logger = logging.getLogger("yeastar_csss_async")

DEFAULT_USER_AGENT = (
    f"yeastar-csss-async/{__version__} aiohttp/{aiohttp.__version__} "
    f"Python/{platform.python_version()}"
)

_NOT_RETRIED_CLIENT_ERRORS = (aiohttp.InvalidURL, aiohttp.ClientSSLError)


@attrs.frozen
class RequestSpec:
    """One HTTP request, described without I/O. ``path`` is appended to the base URL."""

    method: str
    path: str
    params: Mapping[str, str] | None = None
    headers: Mapping[str, str] | None = attrs.field(default=None, repr=False)
    data: bytes | Mapping[str, str] | None = attrs.field(default=None, repr=False)


@attrs.frozen
class RawResponse:
    """An answer that was not retried: status, headers and the whole body."""

    status: int
    headers: Mapping[str, str] = attrs.field(repr=False)
    body: bytes = attrs.field(repr=False)


ErrorDescriber = Callable[[RawResponse], APIError]
"""Turns an error answer into the API's error (with its code and request id)."""


@attrs.define
class TransportStats:
    """Counters a caller can read (``client.stats``): requests sent, retries, 429s seen."""

    requests: int = 0
    retries: int = 0
    rate_limited: int = 0


class PauseGate:
    """One shared pause for a whole client: a 429 with ``Retry-After`` stops every request."""

    __slots__ = ("_until",)

    def __init__(self) -> None:
        self._until = 0.0

    def pause(self, seconds: float) -> None:
        """Hold every request of the client for ``seconds`` from now (never shortens a pause)."""
        self._until = max(self._until, time.monotonic() + seconds)

    async def wait(self) -> None:
        """Return at once when not paused; otherwise sleep until the pause is over."""
        # A loop, not an Event: another 429 may extend the pause while we sleep.
        while (delay := self._until - time.monotonic()) > 0:  # noqa: ASYNC110
            await asyncio.sleep(delay)


class Transport:
    """Owns or borrows one ``aiohttp.ClientSession`` and sends every request of one client."""

    def __init__(
        self,
        base_url: str,
        *,
        max_concurrency: int,
        retry: RetryPolicy,
        timeout: float,
        session: aiohttp.ClientSession | None,
        user_agent: str | None,
        redactor: Redactor,
        describe_error: ErrorDescriber,
    ) -> None:
        if not isinstance(max_concurrency, int) or isinstance(max_concurrency, bool) \
                or max_concurrency < 1:
            raise ValueError(f"max_concurrency must be an int >= 1, got {max_concurrency!r}")
        if not timeout > 0:
            raise ValueError(f"timeout must be > 0 seconds, got {timeout!r}")
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url must start with http:// or https://, got {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self.max_concurrency = max_concurrency
        self.retry = retry
        self.user_agent = user_agent or DEFAULT_USER_AGENT
        self.stats = TransportStats()
        self.gate = PauseGate()
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._slots = asyncio.Semaphore(max_concurrency)
        self._session = session
        self._owns_session = session is None
        self._closed = False
        self._redact = redactor
        self._describe_error = describe_error
        self._rng = random.Random()

    @property
    def closed(self) -> bool:
        """True once :meth:`aclose` ran."""
        return self._closed

    def _get_session(self) -> aiohttp.ClientSession:
        if self._closed:
            raise RuntimeError("this client is closed")
        if self._session is None:
            connector = aiohttp.TCPConnector(limit=self.max_concurrency + 2)
            self._session = aiohttp.ClientSession(connector=connector)
        return self._session

    async def aclose(self) -> None:
        """Close the session if this transport created it; a borrowed one is left open."""
        self._closed = True
        session, self._session = self._session, None
        if session is not None and self._owns_session:
            await session.close()

    async def send(
        self, build: Callable[[], Awaitable[RequestSpec]], *, label: str
    ) -> RawResponse:
        """Send a request with retries; return the first answer that is not retried.

        ``build`` is awaited before every attempt, outside the concurrency slot. ``label``
        names the request in logs (no secrets: a method and path).
        """
        policy = self.retry
        attempt = 0
        while True:
            attempt += 1
            spec = await build()
            try:
                response = await self._attempt(spec)
            except (aiohttp.ClientError, TimeoutError) as exc:
                if isinstance(exc, _NOT_RETRIED_CLIENT_ERRORS) or attempt >= policy.max_attempts:
                    self._raise_transport(exc, label, attempt)
                delay = policy.backoff(attempt, self._rng)
                self._log_retry(label, f"{type(exc).__name__}", delay, attempt)
                await self._backoff(delay)
                continue
            if not is_retryable_status(response.status):
                return response
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            if response.status == 429:
                self.stats.rate_limited += 1
            if attempt >= policy.max_attempts:
                self._raise_exhausted(response, label, attempt, retry_after)
            delay = retry_after if retry_after is not None else policy.backoff(attempt, self._rng)
            self._log_retry(label, f"HTTP {response.status}", delay, attempt)
            if retry_after is not None or response.status == 429:
                self.gate.pause(delay)  # the whole client waits, not just this task
                self.stats.retries += 1
                continue
            await self._backoff(delay)

    async def _backoff(self, delay: float) -> None:
        self.stats.retries += 1
        await asyncio.sleep(delay)

    async def _attempt(self, spec: RequestSpec) -> RawResponse:
        session = self._get_session()
        headers = {"User-Agent": self.user_agent}
        if spec.headers:
            headers.update(spec.headers)
        url = self.base_url + spec.path
        async with self._slots:
            await self.gate.wait()
            started = time.monotonic()
            self.stats.requests += 1
            async with session.request(
                spec.method, url, params=spec.params, data=spec.data, headers=headers,
                timeout=self._timeout, allow_redirects=False,
            ) as response:
                body = await response.read()
                raw = RawResponse(response.status, response.headers, body)
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "%s %s -> HTTP %d in %.3fs", spec.method, spec.path, raw.status,
                time.monotonic() - started,
                extra={"method": spec.method, "path": spec.path, "status": raw.status},
            )
        return raw

    def _log_retry(self, label: str, reason: str, delay: float, attempt: int) -> None:
        logger.debug(
            "retrying %s after %s in %.2fs (attempt %d of %d)",
            label, reason, delay, attempt + 1, self.retry.max_attempts,
        )

    def _raise_transport(self, exc: BaseException, label: str, attempts: int) -> NoReturn:
        kind = "timed out" if isinstance(exc, TimeoutError) else "failed"
        detail = self._redact(str(exc)) or type(exc).__name__
        raise TransportError(
            f"{label} {kind} after {attempts} attempt(s): {type(exc).__name__}: {detail}"
        ) from exc

    def _raise_exhausted(
        self, response: RawResponse, label: str, attempts: int, retry_after: float | None
    ) -> NoReturn:
        error = self._describe_error(response)
        message = f"{label}: {error.message} (gave up after {attempts} attempt(s))"
        if response.status == 429:
            raise RateLimitError(
                message, status=429, code=error.code, request_id=error.request_id,
                retry_after=retry_after,
            )
        raise APIError(message, status=error.status, code=error.code,
                       request_id=error.request_id)
