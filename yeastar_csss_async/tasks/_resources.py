"""What a worker process shares between its jobs: one :class:`SyncStore`, one Redis
coordinator, and one client per account and API, made on first use and closed at shutdown."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping

import attrs

from .._apis import CSSS, YEASTAR, ApiSpec
from .._base import BaseClient
from .._csss import CSSSClient
from .._errors import ConfigurationError
from .._yeastar import YeastarPartnerClient
from ..redis import DEFAULT_NAMESPACE, RedisCoordinator
from ..sync import SyncStore
from ._accounts import AccountConfig

__all__ = ["WorkerResources", "WorkerSettings"]


@attrs.frozen
class WorkerSettings:
    """How a worker process reaches its accounts, database and Redis.

    ``accounts``: by name (see :func:`~yeastar_csss_async.tasks.load_accounts`).
    ``database_url``: the :class:`~yeastar_csss_async.sync.SyncStore` URL syncs write to.
    ``redis_url``/``namespace``: the :class:`~yeastar_csss_async.redis.RedisCoordinator`
    every client of the worker uses, so that all workers of the fleet share each account's
    token, concurrency limit and 429 pause. ``export_dir``: the directory export jobs write
    into (a job names a file inside it, never a path outside it).
    """

    accounts: Mapping[str, AccountConfig]
    database_url: str
    redis_url: str
    namespace: str = DEFAULT_NAMESPACE
    export_dir: str = "."


class WorkerResources:
    """The store, the coordinator and the per-account clients of one worker process.

    Credentials are read from the environment when an account's client is first needed, so
    a missing variable fails that account's jobs (naming the variable), not the worker.
    """

    def __init__(
        self, settings: WorkerSettings, *, environ: Mapping[str, str] | None = None
    ) -> None:
        self.settings = settings
        self.store = SyncStore(settings.database_url)
        self.coordinator = RedisCoordinator.from_url(
            settings.redis_url, namespace=settings.namespace
        )
        self._environ = environ
        self._yeastar: dict[str, YeastarPartnerClient] = {}
        self._csss: dict[str, CSSSClient] = {}

    async def open(self) -> None:
        """Connect to the database (creating or upgrading its tables)."""
        await self.store.open()

    async def aclose(self) -> None:
        """Close every client, then the coordinator and the store."""
        async with contextlib.AsyncExitStack() as stack:
            stack.push_async_callback(self.store.aclose)
            stack.push_async_callback(self.coordinator.aclose)
            for client in (*self._yeastar.values(), *self._csss.values()):
                stack.push_async_callback(client.aclose)
            self._yeastar.clear()
            self._csss.clear()

    def account(self, name: str) -> AccountConfig:
        """The account called ``name``, or a :class:`ConfigurationError` listing the known
        ones."""
        try:
            return self.settings.accounts[name]
        except KeyError:
            known = ", ".join(sorted(self.settings.accounts)) or "none"
            raise ConfigurationError(
                f"unknown account {name[:80]!r} (the accounts file defines: {known})"
            ) from None

    def client(self, name: str, api: ApiSpec) -> BaseClient:
        """The client of account ``name`` for ``api`` (made on first use)."""
        return self.csss(name) if api is CSSS else self.yeastar(name)

    def yeastar(self, name: str) -> YeastarPartnerClient:
        """The Yeastar client of account ``name`` (made on first use)."""
        client = self._yeastar.get(name)
        if client is None:
            account = self.account(name)
            client_id, client_secret = account.yeastar_credentials(self._environ)
            client = YeastarPartnerClient(
                client_id,
                client_secret,
                max_concurrency=account.max_concurrency,
                timeout=account.timeout,
                coordinator=self.coordinator,
                base_url=account.yeastar_base_url or YEASTAR.default_base_url,
            )
            self._yeastar[name] = client
        return client

    def csss(self, name: str) -> CSSSClient:
        """The CSSS client of account ``name`` (made on first use)."""
        client = self._csss.get(name)
        if client is None:
            account = self.account(name)
            access_code, secret = account.csss_credentials(self._environ)
            client = CSSSClient(
                access_code,
                secret,
                max_concurrency=account.max_concurrency,
                timeout=account.timeout,
                coordinator=self.coordinator,
                base_url=account.csss_base_url or CSSS.default_base_url,
            )
            self._csss[name] = client
        return client

    def clients(self) -> list[tuple[str, str, BaseClient]]:
        """Every client made so far, as ``(account, api name, client)``."""
        return [
            *((name, YEASTAR.name, client) for name, client in self._yeastar.items()),
            *((name, CSSS.name, client) for name, client in self._csss.items()),
        ]

    def export_path(self, name: str) -> str:
        """``name`` inside the export directory; a :class:`ConfigurationError` for a name
        that is absolute or climbs out of it."""
        if not name or os.path.isabs(name) or ".." in name.replace("\\", "/").split("/"):
            raise ConfigurationError(
                f"export path {name[:80]!r}: expected a relative path "
                "inside the worker's export directory"
            )
        return os.path.join(self.settings.export_dir, name)
