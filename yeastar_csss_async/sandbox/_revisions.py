"""Revisions of the sandbox's data: the same lists a little later, deterministically.

Revision 0 is the data set as generated. Revision ``r`` is revision 0 with ``r`` *steps*
applied in turn, and a step does to each list (orders; each product line's products; package
orders) what happens between two syncs against a real account: some records are added, some
removed, and some change a few fields. So a sync run against revision ``r`` and then ``r + 1``
sees real new, changed and gone records, and the same ``(seed, sizes, revision)`` always
serves byte-identical lists.

A step on a list of ``n`` records (``n`` as served when the step starts; see
:func:`step_counts`):

* removes ``max(1, n // 100)`` records (about 1 %), at most ``n``;
* changes ``max(1, 3 * n // 100)`` others (about 3 %), at most the ``n`` left after removing;
* then adds ``max(1, n // 50)`` new records (about 2 %): the generator's next ones, with keys
  that the list has never had (added records never reuse the key of a removed one).

Which records are removed and changed is drawn with a ``random.Random`` seeded from the
sandbox seed, the step number and the list's name, by position among the records served, so a
step costs time in proportion to what it touches, not to the size of the list: a million
generated orders are not materialized. Every change goes through the list's own
:meth:`~SandboxList.add`, :meth:`~SandboxList.change` and :meth:`~SandboxList.remove`, so the
result is an overlay of edits like any other.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from typing import Any

import attrs

from ._lists import Record, SandboxList

__all__ = ["ListChanges", "Revise", "RevisionStep", "StepCounts", "apply_step", "step_counts"]

Revise = Callable[[Record, random.Random], dict[str, Any]]
"""How a step changes one record: the record as served (a copy) and the step's random
generator give the snake_case fields to set (each must differ from the record's value)."""


@attrs.frozen
class StepCounts:
    """How many records one revision step removes, changes and adds in a list."""

    removed: int
    changed: int
    added: int


def step_counts(size: int) -> StepCounts:
    """The counts of one revision step on a list that serves ``size`` records when it starts.

    About 1 % removed, 3 % changed and 2 % added, at least one each (``n // 100``,
    ``3 * n // 100`` and ``n // 50``, each at least 1); removed and changed records are
    distinct, so a list of one record loses it and has none to change.
    """
    removed = min(size, max(1, size // 100))
    changed = min(size - removed, max(1, 3 * size // 100))
    return StepCounts(removed=removed, changed=changed, added=max(1, size // 50))


@attrs.frozen
class ListChanges:
    """What one revision step did to one list: keys (``id``, ``productNo``, ``orderCode``)."""

    added: tuple[str, ...]
    """Keys of the records added, which the list never had before."""
    removed: tuple[str, ...]
    """Keys of the records no longer served."""
    changed: tuple[str, ...]
    """Keys of the records whose revised fields now hold other values."""


@attrs.frozen
class RevisionStep:
    """What one revision step did to every list of the sandbox."""

    revision: int
    """The revision the step led to (1 for the first step)."""
    orders: ListChanges
    products: Mapping[int, ListChanges]
    """By product line id, like ``SandboxData.products``."""
    package_orders: ListChanges


def step_random(seed: int, revision: int, list_name: str) -> random.Random:
    """The random generator of the step to ``revision`` for one list (stable across runs
    and Python processes: string seeds do not depend on ``PYTHONHASHSEED``)."""
    return random.Random(f"{seed}:revision:{revision}:{list_name}")


def apply_step(records: SandboxList, rng: random.Random, revise: Revise) -> ListChanges:
    """Apply one revision step to ``records``, drawing from ``rng``; say what it did.

    The records removed and changed are drawn together by position among those served (as
    many as :func:`step_counts` says), then visited in page order; new records are added last,
    so none of them is removed or changed by the step that added it.
    """
    counts = step_counts(len(records))
    picked = rng.sample(range(len(records)), counts.removed + counts.changed)
    to_remove = set(picked[: counts.removed])
    key_field = records.key_field
    removed: list[str] = []
    changed: list[str] = []
    for position in sorted(picked):
        # Positions were drawn before any removal: each removal so far moved this one up.
        # (The served record itself, not a copy: it is only read.)
        record = records._span(position - len(removed), position - len(removed) + 1)[0]
        key = record[key_field]
        if position in to_remove:
            records.remove(key)
            removed.append(key)
        else:
            records.change(key, **revise(record, rng))
            changed.append(key)
    added = [record[key_field] for record in records.add(counts.added)]
    return ListChanges(added=tuple(added), removed=tuple(removed), changed=tuple(changed))
