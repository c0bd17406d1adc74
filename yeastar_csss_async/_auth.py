"""Yeastar access tokens: requested on first use, reused, renewed ahead of expiry, single flight."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Mapping

from ._coordination import AccountLink, SharedToken
from ._errors import APIError, AuthenticationError, ResponseFormatError
from ._log import logger
from ._redaction import Redactor
from ._yeastar_protocol import (
    DEFAULT_TOKEN_LIFETIME,
    TokenGrant,
    credentials_form,
    refresh_form,
)

__all__ = ["MIN_TOKEN_LIFETIME", "TokenManager", "token_lifetime"]

REFRESH_TOKEN_LIFETIME = 15 * 24 * 3600.0  # documented: refresh tokens last 15 days
MIN_TOKEN_LIFETIME = 1.0
"""A token is reused for at least this many seconds, however short ``expiresIn`` is (a tiny
value would otherwise mean one token request per call); a server that really rejects it
sooner answers 401, which renews it."""
_EARLY_MAX = 60.0  # renew at most this many seconds before expiry ...
_EARLY_SHARE = 0.1  # ... and at most this share of the token's lifetime

GrantFetcher = Callable[[Mapping[str, str]], Awaitable[TokenGrant]]


def token_lifetime(expires_in: float) -> float:
    """Seconds to trust a new token for: ``expiresIn``, but at least ``MIN_TOKEN_LIFETIME``;
    zero or negative (meaningless for a token just issued) is read as the documented 30 min."""
    if expires_in <= 0:
        return DEFAULT_TOKEN_LIFETIME
    return max(expires_in, MIN_TOKEN_LIFETIME)


class TokenManager:
    """Holds the current access token of one client and renews it.

    * First use requests a token with ``grant_type=pp_credentials``.
    * A token is renewed shortly before it expires (``min(60 s, 10% of its lifetime)``) with
      ``grant_type=refresh_token`` and the newest refresh token; if that fails, with the
      credentials again. ``expiresIn`` is trusted down to 1 s; zero or negative means the
      documented 30 min (a 401 renews a token the server ends sooner). While that early
      renewal runs, other tasks keep using the token,
      and if it fails, the still-valid token is used and the renewal tried again later.
    * Single flight: one renewal at a time, run in a task this manager owns; every caller
      that needs it waits for that one renewal and shares its outcome, success or failure
      (20 callers with a wrong secret cause one credential request, not 20).
    * :meth:`rejected` renews after a 401 only if the rejected token is still the current one.
    * With a coordinator ``link``, the token is the fleet's: a process takes the stored one
      while it is good, renews under the fleet's renewal lock (reading the store again once it
      holds it: another process may have renewed meanwhile), reads the store again after a
      failed refresh (refresh tokens may rotate) and stores what it got.
    """

    def __init__(
        self,
        fetch: GrantFetcher,
        client_id: str,
        client_secret: str,
        redactor: Redactor,
        link: AccountLink | None = None,
    ) -> None:
        self._fetch = fetch
        self._link = link
        self._bad: str | None = None  # the token a 401 refused: never taken from the store
        self._client_id = client_id
        self._client_secret = client_secret
        self._redactor = redactor
        self._renewal: asyncio.Task[str] | None = None
        self._access: str | None = None
        self._refresh: str | None = None
        self._renew_at = 0.0
        self._expires_at = 0.0
        self._refresh_expires_at = 0.0
        self.renewals = 0
        """Token requests that succeeded (credentials and refresh grants)."""

    def __repr__(self) -> str:
        state = "valid" if self._access and time.monotonic() < self._expires_at else "none"
        return f"TokenManager(token={state})"

    def current(self) -> str | None:
        """The token, when it is good to use now without any renewal (else None)."""
        access = self._access
        if access is not None and time.monotonic() < self._renew_at:
            return access
        return None

    async def token(self) -> str:
        """A token that is valid now (requested or renewed if needed)."""
        access = self._access
        if access is None:
            return await self._join_renewal()
        now = time.monotonic()
        if now < self._renew_at:
            return access
        if now >= self._expires_at:
            self._access = None
            return await self._join_renewal()
        if self._renewal is not None:  # renewing early: the current token is still good
            return access
        try:
            return await self._join_renewal()
        except (APIError, ResponseFormatError) as error:
            logger.debug(
                "early token renewal failed (%s); the current token is still valid",
                type(error).__name__,
            )
        return access

    async def rejected(self, token: str) -> tuple[str, bool]:
        """The server refused ``token`` (HTTP 401): renew unless someone already did.

        Returns the token to retry with, and whether a renewal started after this rejection
        produced it (False when another task had renewed already, or had a renewal under way).
        """
        self._bad = token
        if self._access is not None and self._access != token:
            return self._access, False
        if self._renewal is not None:
            # Under way since before this rejection: share its outcome, but its token may
            # predate whatever revoked ours, so it does not count as this caller's renewal.
            return await self._join_renewal(), False
        self._access = None
        return await self._join_renewal(), True

    async def aclose(self) -> None:
        """Cancel a renewal still under way and wait for it (the client is closing)."""
        task = self._renewal
        if task is not None:
            task.cancel()
            with contextlib.suppress(BaseException):
                await task

    async def _join_renewal(self) -> str:
        task = self._renewal
        if task is None:
            task = asyncio.get_running_loop().create_task(self._renew())
            task.add_done_callback(self._renewal_done)
            self._renewal = task
        # shield: a caller that is cancelled leaves the renewal running for the others.
        return await asyncio.shield(task)

    def _renewal_done(self, task: asyncio.Task[str]) -> None:
        if self._renewal is task:
            self._renewal = None
        if not task.cancelled():
            task.exception()  # retrieved here too: every waiter may have been cancelled

    def _store(self, grant: TokenGrant) -> str:
        now = time.monotonic()
        self._redactor.rotate(grant.access_token)
        self._redactor.rotate(grant.refresh_token)
        lifetime = token_lifetime(grant.expires_in)
        self._access = grant.access_token
        self._expires_at = now + lifetime
        self._renew_at = self._expires_at - min(_EARLY_MAX, _EARLY_SHARE * lifetime)
        if grant.refresh_token is not None:
            self._refresh = grant.refresh_token
            self._refresh_expires_at = now + REFRESH_TOKEN_LIFETIME
        self.renewals += 1
        return grant.access_token

    async def _renew(self) -> str:
        try:
            return await self._request()
        except BaseException:
            now = time.monotonic()
            if self._access is not None and now < self._expires_at:
                # An early renewal failed: try again halfway to the expiry, not on every call.
                self._renew_at = now + max(1.0, (self._expires_at - now) / 2)
            raise

    async def _request(self) -> str:
        link = self._link
        if link is None:
            return await self._try_refresh() or await self._credentials()
        adopted = self._adopt(await link.load_token())
        if adopted is not None:
            return adopted
        async with link.renewal():
            adopted = self._adopt(await link.load_token())  # renewed while we waited?
            if adopted is not None:
                return adopted
            token = await self._try_refresh()
            if token is None:  # a rotated refresh token? another process may have renewed
                adopted = self._adopt(await link.load_token())
                if adopted is not None:
                    return adopted
                token = await self._credentials()
            await link.store_token(self._shared())
            return token

    def _adopt(self, shared: SharedToken | None) -> str | None:
        """Take the fleet's token if it is news (not the one this manager is renewing, nor
        one a 401 refused) and good for a while yet."""
        if shared is None or shared.access_token in (self._bad, self._access):
            return None
        left = shared.expires_at - time.time()
        if left <= min(_EARLY_MAX, max(MIN_TOKEN_LIFETIME, _EARLY_SHARE * left)):
            return None
        now = time.monotonic()
        self._redactor.rotate(shared.access_token)
        self._access = shared.access_token
        self._expires_at = now + left
        self._renew_at = self._expires_at - min(_EARLY_MAX, _EARLY_SHARE * left)
        if shared.refresh_token is not None:
            self._redactor.rotate(shared.refresh_token)
            self._refresh = shared.refresh_token
            self._refresh_expires_at = now + (shared.refresh_expires_at - time.time())
        return shared.access_token

    def _shared(self) -> SharedToken:
        """This manager's token as the fleet stores it (wall-clock expiry times)."""
        assert self._access is not None
        offset = time.time() - time.monotonic()
        return SharedToken(
            self._access,
            self._expires_at + offset,
            self._refresh,
            self._refresh_expires_at + offset if self._refresh else 0.0,
        )

    async def _try_refresh(self) -> str | None:
        """A token from the refresh token, or None when there is none or it was refused."""
        if self._refresh is None or time.monotonic() >= self._refresh_expires_at:
            return None
        logger.debug("renewing the access token with the refresh token")
        failed: str | None = None
        try:
            return self._store(await self._fetch(refresh_form(self._refresh)))
        except (APIError, ResponseFormatError) as exc:
            failed = type(exc).__name__
        logger.debug("token refresh failed (%s); requesting a new token", failed)
        self._refresh = None
        return None

    async def _credentials(self) -> str:
        logger.debug("requesting an access token with the client credentials")
        rejected: APIError | None = None
        try:
            grant = await self._fetch(credentials_form(self._client_id, self._client_secret))
        except AuthenticationError:
            raise
        except APIError as exc:
            if exc.status is None or not 400 <= exc.status < 500:
                raise
            rejected = exc
        if rejected is not None:  # outside the handler: nothing to chain
            raise AuthenticationError(
                f"credentials rejected: {rejected.message}",
                status=rejected.status,
                code=rejected.code,
                request_id=rejected.request_id,
                body=rejected.body,
            )
        return self._store(grant)
