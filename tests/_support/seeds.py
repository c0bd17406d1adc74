"""The seed pages of ``tests/data``: the documented JSON examples of each list."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parent.parent / "data"


def load_seed(name: str) -> Any:
    """The JSON example of a seed page, as text decoded by the stdlib (tests/data)."""
    return json.loads((DATA / name).read_text(encoding="utf-8"))


def seed_text(name: str) -> str:
    """The JSON example of a seed page, byte for byte as the seed shows it."""
    return (DATA / name).read_text(encoding="utf-8")


def ms(value: int) -> datetime:
    """Epoch milliseconds, as the seeds carry times, as an aware UTC datetime."""
    return datetime.fromtimestamp(value / 1000, tz=UTC)
