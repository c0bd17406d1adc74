"""Yeastar access tokens: requested on first use, reused, renewed ahead of expiry, single flight."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping

from ._errors import APIError, AuthenticationError, Redactor, ResponseFormatError
from ._transport import logger
from ._yeastar_protocol import TokenGrant, credentials_form, refresh_form

__all__ = ["TokenManager"]

REFRESH_TOKEN_LIFETIME = 15 * 24 * 3600.0  # documented: refresh tokens last 15 days
_EARLY_MAX = 60.0  # renew at most this many seconds before expiry ...
_EARLY_SHARE = 0.1  # ... and at most this share of the token's lifetime

GrantFetcher = Callable[[Mapping[str, str]], Awaitable[TokenGrant]]


class TokenManager:
    """Holds the current access token of one client and renews it.

    * First use requests a token with ``grant_type=pp_credentials``.
    * A token is renewed shortly before it expires (``min(60 s, 10% of its lifetime)``) with
      ``grant_type=refresh_token`` and the newest refresh token; if that fails, with the
      credentials again.
    * Single flight: however many tasks need a renewal at once, one token request goes out;
      while a renewal is under way, tasks keep using a token that has not expired yet.
    * :meth:`rejected` renews after a 401 only if the rejected token is still the current one.
    """

    def __init__(
        self, fetch: GrantFetcher, client_id: str, client_secret: str, redactor: Redactor
    ) -> None:
        self._fetch = fetch
        self._client_id = client_id
        self._client_secret = client_secret
        self._redactor = redactor
        self._lock = asyncio.Lock()
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

    async def token(self) -> str:
        """A token that is valid now (requested or renewed if needed)."""
        access, now = self._access, time.monotonic()
        if access is not None and (
            now < self._renew_at or (now < self._expires_at and self._lock.locked())
        ):
            return access
        async with self._lock:
            if self._access is None or time.monotonic() >= self._renew_at:
                await self._renew()
            assert self._access is not None
            return self._access

    async def rejected(self, token: str) -> tuple[str, bool]:
        """The server refused ``token`` (HTTP 401): renew unless someone already did.

        Returns the token to retry with, and whether this call renewed it (False when another
        task had renewed already and its token is reused).
        """
        async with self._lock:
            renewed = self._access is None or self._access == token
            if renewed:
                self._access = None
                await self._renew()
            assert self._access is not None
            return self._access, renewed

    def _store(self, grant: TokenGrant) -> None:
        now = time.monotonic()
        self._redactor.add(grant.access_token)
        self._redactor.add(grant.refresh_token)
        self._access = grant.access_token
        self._expires_at = now + grant.expires_in
        self._renew_at = self._expires_at - min(_EARLY_MAX, _EARLY_SHARE * grant.expires_in)
        if grant.refresh_token is not None:
            self._refresh = grant.refresh_token
            self._refresh_expires_at = now + REFRESH_TOKEN_LIFETIME
        self.renewals += 1

    async def _renew(self) -> None:
        if self._refresh is not None and time.monotonic() < self._refresh_expires_at:
            logger.debug("renewing the access token with the refresh token")
            try:
                self._store(await self._fetch(refresh_form(self._refresh)))
                return
            except (APIError, ResponseFormatError) as exc:
                logger.debug("token refresh failed (%s); requesting a new token",
                             type(exc).__name__)
                self._refresh = None
        logger.debug("requesting an access token with the client credentials")
        try:
            grant = await self._fetch(credentials_form(self._client_id, self._client_secret))
        except AuthenticationError:
            raise
        except APIError as exc:
            if exc.status is not None and 400 <= exc.status < 500:
                raise AuthenticationError(
                    f"credentials rejected: {exc.message}", status=exc.status, code=exc.code,
                    request_id=exc.request_id,
                ) from None
            raise
        self._store(grant)
