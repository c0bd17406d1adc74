"""The session manager: one aiohttp session, a concurrency limit, a shared pause gate, retries.

Every request of a client goes through :meth:`Transport.send`, which

1. builds the request afresh for each attempt (a current token) *before* taking a concurrency
   slot, so building never waits on a slot held by someone else (a token renewal needs one);
2. takes one of ``max_concurrency`` slots, then waits while the client is paused by a 429;
3. renders the body only then (a CSSS body is signed here, with the current time), and starts
   the per-attempt timeout (queueing for a slot or a pause is not a timeout);
4. reads at most ``max_response_bytes`` of the answer;
5. retries 429, 5xx, connection errors and timeouts per :class:`RetryPolicy`, releasing its
   slot while it backs off, and pauses the whole client when the server asks (Retry-After),
   up to ``RetryPolicy.max_retry_after``; a longer ask fails the call at once.

Answers that are not retried (2xx, other 4xx) come back as :class:`RawResponse` for the
protocol layer to decode.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import math
import platform
import random
import time
from collections.abc import Awaitable, Callable, Mapping

import aiohttp
import attrs

from ._coordination import AccountLink
from ._errors import (
    APIError,
    RateLimitError,
    ResponseFormatError,
    TransportConnectionError,
    TransportError,
    TransportTimeoutError,
    api_error_class,
)
from ._log import logger
from ._redaction import QUOTE_LIMIT, Redactor, shorten
from ._retry import RetryPolicy, is_retryable_status, parse_retry_after
from ._validation import require_positive_int, require_seconds
from ._version import __version__

__all__ = ["PauseGate", "RawResponse", "RequestSpec", "Transport", "TransportStats", "logger"]


DEFAULT_USER_AGENT = (
    f"yeastar-csss-async/{__version__} aiohttp/{aiohttp.__version__} "
    f"Python/{platform.python_version()}"
)

_NOT_RETRIED_CLIENT_ERRORS = (aiohttp.InvalidURL, aiohttp.ClientSSLError)

DEFAULT_MAX_RESPONSE_BYTES = 32 * 1024 * 1024
"""The largest answer body read by default (32 MiB; a page of 1000 products is ~1 MiB)."""


@attrs.frozen
class RequestSpec:
    """One HTTP request, described without I/O. ``path`` is appended to the base URL."""

    method: str
    path: str
    params: Mapping[str, str] | None = None
    headers: Mapping[str, str] | None = attrs.field(default=None, repr=False)
    data: bytes | Mapping[str, str] | None = attrs.field(default=None, repr=False)
    render: Callable[[], bytes] | None = attrs.field(default=None, repr=False)
    """Makes the body at the last moment (inside the slot, after any pause): a signed CSSS
    body carries the time it was signed. Takes precedence over ``data``."""


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

    @property
    def until(self) -> float:
        """``time.monotonic()`` at which the pause ends (in the past when not paused)."""
        return self._until

    async def wait(self) -> None:
        """Return at once when not paused; otherwise sleep until the pause is over."""
        # A loop, not an Event: another 429 may extend the pause while we sleep.
        while (delay := self._until - time.monotonic()) > 0:  # noqa: ASYNC110
            await asyncio.sleep(delay)


class _Shared:
    """What a transport shares with its views (:meth:`Transport.with_options`): the session,
    whether the transport owns it, whether the client is closed, and the event loop it lives
    on (set on first use)."""

    __slots__ = ("closed", "loop", "owns_session", "session")

    def __init__(self, session: aiohttp.ClientSession | None) -> None:
        self.session = session
        self.owns_session = session is None
        self.closed = False
        self.loop: asyncio.AbstractEventLoop | None = None


class Transport:
    """Owns or borrows one ``aiohttp.ClientSession`` and sends every request of one client.

    A client lives on one event loop, the one it is first used in: its session, concurrency
    slots and token renewal belong to that loop. Used from another loop, every request fails
    at once with a RuntimeError that says so (instead of aiohttp's "Event loop is closed").
    """

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
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
    ) -> None:
        require_positive_int("max_concurrency", max_concurrency)
        require_seconds("timeout", timeout)
        require_positive_int("max_response_bytes", max_response_bytes)
        if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url must start with http:// or https://, got {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self.max_concurrency = max_concurrency
        self.max_response_bytes = max_response_bytes
        self.retry = retry
        self.user_agent = user_agent or DEFAULT_USER_AGENT
        self.stats = TransportStats()
        self.gate = PauseGate()
        self.link: AccountLink | None = None
        """The account's link to a coordinator (fleet-wide slots and pause), if any."""
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._slots = asyncio.Semaphore(max_concurrency)
        self._shared = _Shared(session)
        self._redact = redactor
        self._describe_error = describe_error
        self._rng = random.Random()

    @property
    def closed(self) -> bool:
        """True once :meth:`aclose` ran (on this transport or the one it is a view of)."""
        return self._shared.closed

    def with_options(
        self, *, timeout: float | None = None, retry: RetryPolicy | None = None
    ) -> Transport:
        """A view with its own ``timeout`` and ``retry`` that shares everything else: the
        session, the concurrency slots, the pause gate, the stats and the closed state."""
        view = copy.copy(self)
        if timeout is not None:
            require_seconds("timeout", timeout)
            view._timeout = aiohttp.ClientTimeout(total=timeout)
        if retry is not None:
            if not isinstance(retry, RetryPolicy):
                raise TypeError("retry must be a RetryPolicy or None")
            view.retry = retry
        return view

    def _get_session(self) -> aiohttp.ClientSession:
        shared = self._shared
        if shared.closed:
            raise RuntimeError("this client is closed")
        self.check_loop()
        if shared.session is None:
            connector = aiohttp.TCPConnector(limit=self.max_concurrency + 2)
            shared.session = aiohttp.ClientSession(connector=connector)
        return shared.session

    def check_loop(self) -> None:
        """Bind the client to the running event loop on first use; from any other loop,
        raise a RuntimeError that says so (before any token, slot or session is touched:
        they belong to the first loop, and awaiting them elsewhere fails obscurely)."""
        shared = self._shared
        loop = asyncio.get_running_loop()
        if shared.loop is not loop:
            if shared.loop is not None:
                raise RuntimeError(
                    "this client was first used in another event loop (a client, its session "
                    "and its token belong to one loop): create one client per event loop, "
                    "e.g. inside the coroutine you pass to asyncio.run()"
                )
            shared.loop = loop

    async def aclose(self) -> None:
        """Close the session if this transport created it; a borrowed one is left open.

        From another event loop than the client's, the session cannot be closed properly
        (its connections belong to that loop): it is dropped, and the client is closed."""
        shared = self._shared
        shared.closed = True
        session, shared.session = shared.session, None
        if session is None or not shared.owns_session:
            return
        if shared.loop is not None and shared.loop is not asyncio.get_running_loop():
            logger.debug("aclose() outside the client's event loop: session dropped")
            return
        await session.close()

    async def send(self, build: Callable[[], Awaitable[RequestSpec]], *, label: str) -> RawResponse:
        """Send a request with retries; return the first answer that is not retried.

        ``build`` is awaited before every attempt, outside the concurrency slot. ``label``
        names the request in logs and errors (no secrets: a method and path).
        """
        self.check_loop()
        policy = self.retry
        attempt = 0
        while True:
            attempt += 1
            spec = await build()
            failure: BaseException | None = None
            try:
                response = await self._attempt(spec)
            except (aiohttp.ClientError, TimeoutError) as exc:
                failure = exc
            if failure is not None:  # handled outside the except: nothing chains it
                if (
                    isinstance(failure, _NOT_RETRIED_CLIENT_ERRORS)
                    or attempt >= policy.max_attempts
                ):
                    raise self._transport_error(failure, label, attempt)
                delay = policy.backoff(attempt, self._rng)
                self._log_retry(label, type(failure).__name__, delay, attempt)
                await self._backoff(delay)
                continue
            if not is_retryable_status(response.status):
                return response
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            if response.status == 429:
                self.stats.rate_limited += 1
            if retry_after is not None and retry_after > policy.max_retry_after:
                raise self._too_long(response, label, retry_after)
            if attempt >= policy.max_attempts:
                raise self._exhausted(response, label, attempt, retry_after)
            delay = retry_after if retry_after is not None else policy.backoff(attempt, self._rng)
            self._log_retry(label, f"HTTP {response.status}", delay, attempt)
            if retry_after is not None or response.status == 429:
                self.gate.pause(delay)  # the whole client waits, not just this task
                if self.link is not None:  # ... and every process of the account
                    await self.link.pause(delay)
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
        link = self.link
        if link is None:
            async with self._slots:
                started = time.monotonic()
                if self.gate.until > started:  # checked inline: no coroutine per request
                    await self.gate.wait()
                    started = time.monotonic()
                raw = await self._exchange(session, spec, url, headers)
                if raw.status >= 429:  # pause before the slot is free for another request
                    self._pause_early(raw)
        else:  # the account's fleet-wide slot, which also waits out the shared pause
            async with link.slot():
                started = time.monotonic()
                raw = await self._exchange(session, spec, url, headers)
                if raw.status >= 429 and (pause := self._pause_early(raw)) is not None:
                    await link.pause(pause)
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "%s %s -> HTTP %d in %.3fs",
                spec.method,
                spec.path,
                raw.status,
                time.monotonic() - started,
                extra={"method": spec.method, "path": spec.path, "status": raw.status},
            )
        return raw

    def _pause_early(self, raw: RawResponse) -> float | None:
        """For an answer that will pause the client (a 429, or a retried status with a
        ``Retry-After`` it may honour), the pause, set now: while the answering request still
        holds its slot, so no request takes that slot before the pause is in place.
        :meth:`send` then lengthens it to the backoff it chooses."""
        if not is_retryable_status(raw.status):
            return None
        retry_after = parse_retry_after(raw.headers.get("Retry-After"))
        if retry_after is None:
            if raw.status != 429:
                return None
            retry_after = self.retry.initial_backoff
        elif retry_after > self.retry.max_retry_after:
            return None  # refused in send(): this call fails, nobody is paused
        self.gate.pause(retry_after)
        return retry_after

    async def _exchange(
        self, session: aiohttp.ClientSession, spec: RequestSpec, url: str, headers: dict[str, str]
    ) -> RawResponse:
        """One request and its whole answer (the caller holds a slot)."""
        data = spec.render() if spec.render is not None else spec.data
        self.stats.requests += 1
        async with session.request(
            spec.method,
            url,
            params=spec.params,
            data=data,
            headers=headers,
            timeout=self._timeout,
            allow_redirects=False,
        ) as response:
            body = await self._read_body(response)
            return RawResponse(response.status, response.headers, body)

    async def _read_body(self, response: aiohttp.ClientResponse) -> bytes:
        """The whole body, or :class:`ResponseFormatError` as soon as it is known to be larger
        than ``max_response_bytes``: from Content-Length, else while reading, so memory stays
        bounded whatever the server sends. Decompressed bytes are what count."""
        limit = self.max_response_bytes
        declared = response.content_length
        if declared is not None and declared > limit:
            response.close()
            raise self._too_large(response.status, f"declares {declared} bytes")
        if (
            declared is not None
            and response.headers.get("Content-Encoding", "identity") == "identity"
        ):
            return await response.read()  # exactly the declared length, not more
        # Chunked, or compressed (a small Content-Length can inflate to anything): count the
        # decoded bytes as they come.
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.content.iter_any():
            size += len(chunk)
            if size > limit:
                response.close()
                raise self._too_large(response.status, f"exceeds {limit} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    def _too_large(self, status: int, what: str) -> ResponseFormatError:
        return ResponseFormatError(
            f"answer {what}, more than max_response_bytes={self.max_response_bytes}; "
            "not read further",
            status=status,
        )

    def _log_retry(self, label: str, reason: str, delay: float, attempt: int) -> None:
        logger.debug(
            "retrying %s after %s in %.2fs (attempt %d of %d)",
            label,
            reason,
            delay,
            attempt + 1,
            self.retry.max_attempts,
        )

    def _transport_error(self, exc: BaseException, label: str, attempts: int) -> TransportError:
        """The error for a network failure; aiohttp's exception is described (redacted) but
        not chained, because its ``request_info`` holds the request headers."""
        timed_out = isinstance(exc, TimeoutError)
        kind = "timed out" if timed_out else "failed"
        detail = shorten(self._redact(str(exc)), 2 * QUOTE_LIMIT) or type(exc).__name__
        cls = TransportTimeoutError if timed_out else TransportConnectionError
        return cls(f"{label} {kind} after {attempts} attempt(s): {type(exc).__name__}: {detail}")

    def _exhausted(
        self, response: RawResponse, label: str, attempts: int, retry_after: float | None
    ) -> APIError:
        error = self._describe_error(response)
        message = f"{label}: {error.message} (gave up after {attempts} attempt(s))"
        if response.status == 429:
            return RateLimitError(
                message,
                status=429,
                code=error.code,
                request_id=error.request_id,
                retry_after=retry_after,
                body=error.body,
            )
        return api_error_class(error.status, error.code)(
            message,
            status=error.status,
            code=error.code,
            request_id=error.request_id,
            body=error.body,
        )

    def _too_long(self, response: RawResponse, label: str, retry_after: float) -> RateLimitError:
        error = self._describe_error(response)
        asked = f"{retry_after:.0f}s" if math.isfinite(retry_after) else "without end"
        return RateLimitError(
            f"{label}: the server asks to wait {asked} (Retry-After), longer than "
            f"max_retry_after={self.retry.max_retry_after:g}s; not retried",
            status=response.status,
            code=error.code,
            request_id=error.request_id,
            retry_after=retry_after,
            body=error.body,
        )
