"""Keep a database in step with the vendor lists (extra ``[sync]``: SQLAlchemy 2 Core with
aiosqlite and asyncpg).

::

    from yeastar_csss_async import YeastarPartnerClient
    from yeastar_csss_async.sync import SyncStore, sync_orders

    async with SyncStore("sqlite:///yeastar-csss.db") as store, \\
            YeastarPartnerClient.from_env() as client:
        report = await sync_orders(store, client, account="default")
        print(report.summary())   # orders: 600 seen, 100 new, 12 changed, 488 unchanged, 0 gone

Each list has a table (``orders``, ``products``, ``package_orders``) with one typed column per
model field plus ``payload``, ``content_hash``, ``first_seen_at``, ``last_seen_at``,
``changed_at`` and ``gone_at``; ``sync_runs`` holds the run history. Pages are written in
transactions as they arrive (an interrupted run keeps what it read), unchanged records are
not rewritten, only a complete run marks records gone, and two runs of one account and list
exclude each other.
"""

from __future__ import annotations

try:
    import sqlalchemy  # noqa: F401
except ImportError as error:  # pragma: no cover - exercised in a subprocess test
    raise ImportError(
        "yeastar_csss_async.sync needs the [sync] extra: pip install 'yeastar-csss-async[sync]'"
    ) from error

from ._errors import SchemaVersionError, SyncError, SyncLockedError
from ._jobs import sync_list, sync_orders, sync_package_orders, sync_products, sync_records
from ._report import RunStatus, SyncReport
from ._run import sync_batches
from ._store import DEFAULT_DATABASE, SCHEMA_VERSION, SyncStore, open_store
from ._tables import TABLES

__all__ = [
    "DEFAULT_DATABASE",
    "SCHEMA_VERSION",
    "TABLES",
    "RunStatus",
    "SchemaVersionError",
    "SyncError",
    "SyncLockedError",
    "SyncReport",
    "SyncStore",
    "open_store",
    "sync_batches",
    "sync_list",
    "sync_orders",
    "sync_package_orders",
    "sync_products",
    "sync_records",
]
