"""Errors of the sync layer: all are :class:`~yeastar_csss_async.YeastarCSSSError`."""

from __future__ import annotations

from .._errors import YeastarCSSSError

__all__ = ["SchemaVersionError", "SyncError", "SyncLockedError"]


class SyncError(YeastarCSSSError):
    """The database could not be used: unreachable, a wrong password, a read-only file, a
    schema this release does not know. The text names the database (its password hidden) and
    the reason in one line."""


class SyncLockedError(SyncError):
    """Another sync of the same account and list is running (in this process or another);
    this one did not start and changed nothing."""


class SchemaVersionError(SyncError):
    """The database was created or upgraded by a newer release of this library; this release
    does not write to it."""
