"""What the commands of the ``[workers]`` extra share (``worker``, ``enqueue``, ``result``,
``status``): importing :mod:`yeastar_csss_async.tasks` with a usage error when the extra is
missing, and a failing Redis as one line without its password."""

from __future__ import annotations

from types import ModuleType

from ._usage import UsageError

__all__ = ["MISSING_EXTRA", "redis_errors", "redis_failure", "tasks_module"]

MISSING_EXTRA = (
    "worker and enqueue need the [workers] extra: pip install 'yeastar-csss-async[workers]'"
)


def tasks_module() -> ModuleType:
    """:mod:`yeastar_csss_async.tasks`, or a :class:`UsageError` naming the extra."""
    try:
        from .. import tasks
    except ImportError:
        raise UsageError(MISSING_EXTRA) from None
    return tasks


def redis_errors() -> type[Exception]:
    """redis-py's base error."""
    from redis.exceptions import RedisError

    return RedisError


def redis_failure(url: str, error: BaseException) -> Exception:
    """``Redis at URL failed: ...``, the password hidden, as a one-line error (exit 1)."""
    from .._redaction import shorten
    from ..redis import CoordinatorError, display_url

    return CoordinatorError(
        f"Redis at {display_url(url)} failed: {shorten(f'{type(error).__name__}: {error}')}"
    )
