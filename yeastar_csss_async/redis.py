"""A fleet of processes sharing one account through Redis (extra ``[redis]``).

Every process that builds its clients with the same :class:`RedisCoordinator` (same Redis,
same ``namespace``) shares, per account:

* the concurrency limit: ``max_concurrency`` slots for the whole fleet. A slot is a lease in a
  sorted set scored by its expiry (Redis server time, so client clocks do not matter); a holder
  that dies (SIGKILL, lost host) loses its slot ``lease_seconds`` after taking it.
* the pause: a 429 seen by any process pauses all of them (a key with a TTL; a new pause only
  ever lengthens it).
* the Yeastar token: stored with a TTL somewhat below its own expiry; renewals are
  single-flight across the fleet through a lock whose lease is extended while it is held.

Keys: ``{namespace}:{account}:slots``, ``:pause``, ``:token`` and ``:renewal``. Tokens are
stored; credentials never are. Redis unreachable or failing raises :class:`CoordinatorError`:
there is no silent fallback to per-process limits.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import random
import time
import uuid
from collections.abc import AsyncIterator, Awaitable
from types import TracebackType
from typing import Any, Self
from urllib.parse import urlsplit

try:
    import redis.asyncio as aioredis
    from redis.asyncio.lock import Lock
    from redis.exceptions import LockError, RedisError
except ImportError as _missing:  # pragma: no cover - exercised in a subprocess
    raise ImportError(
        "yeastar_csss_async.redis needs redis-py: pip install 'yeastar-csss-async[redis]'"
    ) from _missing

from ._coordination import AccountLink, Coordinator, SharedToken
from ._errors import CoordinatorError
from ._redaction import Redactor, shorten
from ._validation import require_positive_int, require_seconds

__all__ = ["CoordinatorError", "RedisAccountLink", "RedisCoordinator", "display_url"]

logger = logging.getLogger(__name__)

DEFAULT_NAMESPACE = "yeastar-csss"
RENEWAL_LEASE = 30.0
"""Seconds the token-renewal lock outlives a holder that died; extended every third of it
while the holder lives."""
TOKEN_MARGIN_MAX = 60.0
TOKEN_MARGIN_SHARE = 0.1
"""A stored token leaves Redis ``min(60 s, 10 % of its remaining life)`` before it expires."""
SOCKET_TIMEOUT = 10.0
"""Default socket timeouts of :meth:`RedisCoordinator.from_url` (seconds), so a Redis that
stops answering surfaces as :class:`CoordinatorError` instead of a hang."""
_POLL_MIN = 0.005
_POLL_MAX = 0.05
_TOKEN_FORMAT = 1

# KEYS: slots, pause. ARGV: limit, lease ms, member.
# Returns {0, 0} acquired; {1, ms} paused for ms more; {2, ms} full, the earliest lease ends in ms.
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local paused = redis.call('PTTL', KEYS[2])
if paused > 0 then
  return {1, paused}
end
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[1]) then
  local lease = tonumber(ARGV[2])
  redis.call('ZADD', KEYS[1], now + lease, ARGV[3])
  if redis.call('PTTL', KEYS[1]) < lease then
    redis.call('PEXPIRE', KEYS[1], lease)
  end
  return {0, 0}
end
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return {2, math.max(1, tonumber(first[2]) - now)}
"""

# KEYS: pause. ARGV: ms. Sets the pause unless the one in place lasts as long or longer.
# A key without expiry (PTTL -1) is not a pause (see _ACQUIRE) and is replaced.
_PAUSE = """
local ms = tonumber(ARGV[1])
if redis.call('PTTL', KEYS[1]) < ms then
  redis.call('SET', KEYS[1], '1', 'PX', ms)
  return ms
end
return 0
"""


def display_url(url: str) -> str:
    """``url`` with its password masked and its query (which may hold one) dropped."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "(an unparsable Redis URL)"
    if parts.scheme == "unix":
        return f"unix://{parts.path}"
    host = parts.hostname or "localhost"
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{port}" if port else host
    if parts.username or parts.password:
        netloc = f"{parts.username or ''}{':***' if parts.password else ''}@{netloc}"
    return f"{parts.scheme}://{netloc}{parts.path}"


def _client_url(client: aioredis.Redis) -> str:
    """Where ``client`` connects, as a URL without password."""
    kwargs = client.connection_pool.connection_kwargs
    if kwargs.get("path"):
        return f"unix://{kwargs['path']}"
    ssl = "SSL" in client.connection_pool.connection_class.__name__
    user = kwargs.get("username")
    auth = (
        f"{user or ''}{':***' if kwargs.get('password') else ''}@"
        if user or kwargs.get("password")
        else ""
    )
    host = kwargs.get("host", "localhost")
    return (
        f"{'rediss' if ssl else 'redis'}://{auth}{host}:{kwargs.get('port', 6379)}"
        f"/{kwargs.get('db', 0)}"
    )


class RedisCoordinator(Coordinator):
    """Shares slots, pauses and tokens of each account through one Redis.

    Pass it as ``coordinator=`` to every client of the fleet; use the same ``namespace``
    (a key prefix) in every process that should act as one client. Build it with
    :meth:`from_url` (the coordinator then owns and closes its Redis client) or from a
    ``redis.asyncio.Redis`` you own and close yourself. Use ``async with`` or call
    :meth:`aclose`.
    """

    def __init__(
        self,
        client: aioredis.Redis,
        *,
        namespace: str = DEFAULT_NAMESPACE,
        renewal_lease: float = RENEWAL_LEASE,
    ) -> None:
        if not isinstance(namespace, str) or not namespace:
            raise ValueError("namespace must be a non-empty string")
        self._client = client
        self._namespace = namespace
        self._renewal_lease = require_seconds("renewal_lease", renewal_lease)
        self._owns_client = False
        self._url = _client_url(client)
        password = client.connection_pool.connection_kwargs.get("password")
        self._password = password if isinstance(password, str) else None
        self._redact = Redactor([self._password] if self._password else [])
        self._acquire = client.register_script(_ACQUIRE)
        self._pause = client.register_script(_PAUSE)

    @classmethod
    def from_url(
        cls,
        url: str,
        namespace: str = DEFAULT_NAMESPACE,
        *,
        renewal_lease: float = RENEWAL_LEASE,
        **redis_kwargs: Any,
    ) -> Self:
        """A coordinator on a new client of ``url`` (``redis://``, ``rediss://``,
        ``unix://``); ``redis_kwargs`` go to ``redis.asyncio.from_url``. Socket timeouts
        default to :data:`SOCKET_TIMEOUT`. Does not connect yet."""
        if not isinstance(namespace, str) or not namespace:
            raise ValueError("namespace must be a non-empty string")
        require_seconds("renewal_lease", renewal_lease)
        redis_kwargs.setdefault("socket_timeout", SOCKET_TIMEOUT)
        redis_kwargs.setdefault("socket_connect_timeout", SOCKET_TIMEOUT)
        client: aioredis.Redis | None = None
        with contextlib.suppress(ValueError, TypeError):
            client = aioredis.from_url(url, **redis_kwargs)
        if client is None:  # raised here, unchained: redis-py's error may quote the URL
            raise ValueError(f"not a usable Redis URL: {display_url(url)}")
        self = cls(client, namespace=namespace, renewal_lease=renewal_lease)
        self._owns_client = True
        self._url = display_url(url)
        return self

    @property
    def url(self) -> str:
        """The Redis URL, password masked."""
        return self._url

    @property
    def namespace(self) -> str:
        """The key prefix shared by the fleet."""
        return self._namespace

    def link(self, account: str, *, max_concurrency: int, lease_seconds: float) -> RedisAccountLink:
        """The :class:`RedisAccountLink` of ``account`` (a stable, non-secret name)."""
        if not isinstance(account, str) or not account:
            raise ValueError("account must be a non-empty string")
        return RedisAccountLink(
            self,
            account,
            require_positive_int("max_concurrency", max_concurrency),
            require_seconds("lease_seconds", lease_seconds),
        )

    def _key(self, account: str, what: str) -> str:
        return f"{self._namespace}:{account}:{what}"

    async def _run(self, operation: str, call: Awaitable[Any], *secrets: str | None) -> Any:
        """Await ``call``; a Redis failure becomes a one-line :class:`CoordinatorError`, raised
        outside the handler so that no low-level exception is chained to it.

        A cancellation that arrives while the command completes is raised here, after the
        command: redis-py writes with ``asyncio.wait_for``, which on Python 3.11 returns the
        result to a task cancelled in that moment and drops the cancellation (CPython
        gh-86296). Without this, a cancelled caller could go on, holding a slot, forever."""
        task = asyncio.current_task()
        cancelling = task.cancelling() if task is not None else 0
        error: CoordinatorError | None = None
        try:
            result = await call
        except LockError:
            raise  # the lock's own answer ("not owned"), not a Redis failure
        except (RedisError, OSError) as exc:
            error = self._error(operation, exc, secrets)
        if error is not None:
            raise error
        if task is not None and task.cancelling() > cancelling:
            raise asyncio.CancelledError
        return result

    def _error(
        self, operation: str, exc: BaseException, secrets: tuple[str | None, ...] = ()
    ) -> CoordinatorError:
        redact = self._redact
        if any(secrets):
            redact = Redactor([s for s in (*secrets, self._password) if s])
        detail = shorten(redact(f"{type(exc).__name__}: {exc}"))
        return CoordinatorError(f"Redis at {self._url} failed to {operation}: {detail}")

    async def aclose(self) -> None:
        """Close the Redis client if this coordinator made it (:meth:`from_url`)."""
        if self._owns_client:
            await self._client.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"RedisCoordinator(url={self._url!r}, namespace={self._namespace!r})"


async def _finish(call: Awaitable[None]) -> None:
    """Run ``call`` to its end even if the caller is cancelled meanwhile (then re-raise the
    cancellation once it is done): cleanup that must not be cut short."""
    task = asyncio.ensure_future(call)
    cancelled = False
    while not task.done():
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            cancelled = True
    task.result()
    if cancelled:
        raise asyncio.CancelledError


class RedisAccountLink(AccountLink):
    """One account's shared slots, pause, token and renewal lock in Redis (see
    :class:`~yeastar_csss_async.AccountLink`). Made by :meth:`RedisCoordinator.link`."""

    def __init__(
        self,
        coordinator: RedisCoordinator,
        account: str,
        max_concurrency: int,
        lease_seconds: float,
    ) -> None:
        self._coordinator = coordinator
        self._redis = coordinator._client
        self._account = account
        self._limit = max_concurrency
        self._lease_ms = max(1, math.ceil(lease_seconds * 1000))
        self._slots_key = coordinator._key(account, "slots")
        self._pause_key = coordinator._key(account, "pause")
        self._token_key = coordinator._key(account, "token")
        self._renewal_key = coordinator._key(account, "renewal")

    @property
    def max_concurrency(self) -> int:
        """The fleet-wide limit of slots for this account."""
        return self._limit

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one of the account's slots: waits while the account is paused or every slot
        is taken (polling every 5-50 ms with jitter; a pause is waited out whole). The slot
        is a lease of ``lease_seconds``: it is not extended, so hold it for one request
        attempt. Released on exit, also on cancellation."""
        member = uuid.uuid4().hex
        await self._take(member)
        try:
            yield
        finally:
            await _finish(self._release(member))

    async def _take(self, member: str) -> None:
        coordinator = self._coordinator
        keys = [self._slots_key, self._pause_key]
        args: list[int | str] = [self._limit, self._lease_ms, member]
        poll = _POLL_MIN
        while True:
            try:
                status, wait_ms = await coordinator._run(
                    "take a slot", coordinator._acquire(keys=keys, args=args)
                )
            except CoordinatorError:
                raise  # Redis is failing: a lease the script may have added ends by itself
            except BaseException:
                # Cancelled when the script may have run already: do not leave a lease.
                await _finish(self._release(member))
                raise
            if status == 0:
                return
            if status == 1:  # paused: wait it out (a pause only ever grows), plus jitter
                await asyncio.sleep(int(wait_ms) / 1000 + random.uniform(0, _POLL_MIN))
                poll = _POLL_MIN
            else:
                await asyncio.sleep(min(random.uniform(poll / 2, poll), int(wait_ms) / 1000))
                poll = min(poll * 2, _POLL_MAX)

    async def _release(self, member: str) -> None:
        # Never raises: the request it guarded is over, and a lease that could not be removed
        # expires by itself. The next slot() reports a Redis that stays unreachable.
        try:
            await self._coordinator._run(
                "release a slot", self._redis.zrem(self._slots_key, member)
            )
        except CoordinatorError as exc:
            logger.warning("%s (the slot frees itself when its lease ends)", exc)

    async def pause(self, seconds: float) -> None:
        """Pause every process of the account for ``seconds`` from now (Redis time); a
        pause already set for longer is kept as is."""
        if not math.isfinite(seconds) or seconds <= 0:
            return
        ms = max(1, math.ceil(seconds * 1000))
        await self._coordinator._run(
            "set a pause", self._coordinator._pause(keys=[self._pause_key], args=[ms])
        )

    async def load_token(self) -> SharedToken | None:
        """The fleet's token, or None (none stored, expired from Redis, or unreadable)."""
        raw = await self._coordinator._run("load the token", self._redis.get(self._token_key))
        if raw is None:
            return None
        try:
            data = json.loads(raw)
            if data.get("v") != _TOKEN_FORMAT:
                raise ValueError("unknown format")
            return SharedToken(
                access_token=str(data["access_token"]),
                expires_at=float(data["expires_at"]),
                refresh_token=None
                if data.get("refresh_token") is None
                else str(data["refresh_token"]),
                refresh_expires_at=float(data.get("refresh_expires_at", 0.0)),
            )
        except (ValueError, TypeError, KeyError, AttributeError):
            logger.warning(
                "the token stored in Redis at %s (%s) is unreadable; ignoring it",
                self._coordinator.url,
                self._token_key,
            )
            return None

    async def store_token(self, token: SharedToken) -> None:
        """Share ``token``: stored until ``min(60 s, 10 % of its remaining life)`` before its
        ``expires_at``; a token that close to expiry (or past it) is not stored."""
        remaining = token.expires_at - time.time()
        ttl_ms = math.floor(
            (remaining - min(TOKEN_MARGIN_MAX, TOKEN_MARGIN_SHARE * remaining)) * 1000
        )
        if ttl_ms <= 0:
            return
        value = json.dumps(
            {
                "v": _TOKEN_FORMAT,
                "access_token": token.access_token,
                "expires_at": token.expires_at,
                "refresh_token": token.refresh_token,
                "refresh_expires_at": token.refresh_expires_at,
                "stored_at": time.time(),  # for `yeastar-csss status`' token age only
            }
        )
        secrets = [s for s in (token.access_token, token.refresh_token) if s]
        await self._coordinator._run(
            "store the token", self._redis.set(self._token_key, value, px=ttl_ms), *secrets
        )

    @contextlib.asynccontextmanager
    async def renewal(self) -> AsyncIterator[None]:
        """Hold the account's renewal lock (waits for it): a lease of ``renewal_lease``
        seconds, extended every third of it while held; released on exit only if still
        ours. Read the store again after entering."""
        coordinator = self._coordinator
        owner = uuid.uuid4().hex
        lock = Lock(
            self._redis,
            self._renewal_key,
            timeout=coordinator._renewal_lease,
            sleep=0.02,
            blocking=True,
            thread_local=False,
        )
        try:
            await coordinator._run("take the renewal lock", lock.acquire(token=owner))
        except BaseException:
            await _finish(self._unlock(lock, owner))
            raise
        keeper = asyncio.create_task(self._keep(lock), name="yeastar-csss renewal lease")
        try:
            yield
        finally:
            keeper.cancel()
            await _finish(self._end_renewal(keeper, lock, owner))

    async def _keep(self, lock: Lock) -> None:
        period = self._coordinator._renewal_lease / 3
        while True:
            await asyncio.sleep(period)
            try:
                await self._coordinator._run("extend the renewal lock", lock.reacquire())
            except (CoordinatorError, LockError) as exc:
                logger.warning("renewal lock of %s not extended: %s", self._account, exc)
                return

    async def _end_renewal(self, keeper: asyncio.Task[None], lock: Lock, owner: str) -> None:
        await asyncio.wait([keeper])
        await self._unlock(lock, owner)

    async def _unlock(self, lock: Lock, owner: str) -> None:
        # Deletes the key only if it still holds our value (redis-py's Lua script).
        try:
            await self._coordinator._run(
                "release the renewal lock", lock.do_release(owner.encode())
            )
        except LockError:
            pass  # not ours any more (lease ended): nothing to release
        except CoordinatorError as exc:
            logger.warning("%s (the lock frees itself when its lease ends)", exc)

    async def aclose(self) -> None:
        """Nothing to release: slots and the renewal lock are released when their ``async
        with`` ends."""

    def __repr__(self) -> str:
        return (
            f"RedisAccountLink(account={self._account!r}, "
            f"max_concurrency={self._limit}, lease_seconds={self._lease_ms / 1000:g}, "
            f"url={self._coordinator.url!r})"
        )
