"""The sync layer (``yeastar_csss_async.sync``) against SQLite and a real PostgreSQL server."""
