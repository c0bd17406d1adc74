"""The defaults of ``--db``, ``--redis`` and ``--accounts`` from the environment
(:data:`~yeastar_csss_async._apis.DB_ENV`, ``REDIS_ENV``, ``ACCOUNTS_ENV``), so that no
password has to be on a command line. An option given wins; a required value that neither
gives is one usage line naming both (exit 2)."""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping

from .._apis import ACCOUNTS_ENV, DB_ENV, REDIS_ENV
from ._parser import check_redis_url
from ._usage import UsageError

__all__ = ["SYNC_DEFAULT_DB", "apply_environment"]

SYNC_DEFAULT_DB = "sqlite:///yeastar-csss.db"
"""``sync``'s database when neither ``--db`` nor ``YEASTAR_CSSS_DB`` says one."""

_OPTIONS = (
    ("db", "--db URL", DB_ENV),
    ("redis", "--redis URL", REDIS_ENV),
    ("accounts", "--accounts FILE", ACCOUNTS_ENV),
)
_REQUIRED: dict[str, frozenset[str]] = {
    "worker": frozenset({"db", "redis", "accounts"}),
    "enqueue": frozenset({"redis"}),
    "result": frozenset({"redis"}),
    "status": frozenset({"redis"}),
}
_FALLBACK: dict[str, dict[str, str]] = {"sync": {"db": SYNC_DEFAULT_DB}}


def apply_environment(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> None:
    """Fill each of ``args.db``, ``args.redis`` and ``args.accounts`` the command has and the
    command line left unset from its variable (an empty variable is unset); raise
    :class:`UsageError` for a required one still missing, or a Redis URL that is not one."""
    env = os.environ if environ is None else environ
    command = getattr(args, "command", None) or ""
    for attr, option, variable in _OPTIONS:
        if not hasattr(args, attr) or getattr(args, attr) is not None:
            continue
        value: str | None = env.get(variable, "").strip() or None
        if value is not None and attr == "redis":
            try:
                value = check_redis_url(value)
            except argparse.ArgumentTypeError as error:  # the message hides any password
                raise UsageError(f"{variable}: {error}") from None
        if value is None:
            value = _FALLBACK.get(command, {}).get(attr)
        if value is None and attr in _REQUIRED.get(command, ()):
            raise UsageError(f"{command} needs {option} or the environment variable {variable}")
        setattr(args, attr, value)
