"""The one error every command raises for a configuration problem."""

from __future__ import annotations

__all__ = ["UsageError"]


class UsageError(Exception):
    """A configuration problem: one line to stderr, exit 2."""
