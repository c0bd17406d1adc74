"""The keys an iteration has yielded, kept exactly and compactly.

A plain ``set`` of key strings costs about 95 bytes per key: 90 MiB for a million orders.
:class:`SeenKeys` keeps the newest keys in such a set (the fast path, where most lists end) and,
every ``RECENT_MAX`` keys, moves the ones that are digit strings (``"1000499"``, or one letter
and digits like ``"L201903020000000617"``) into :class:`_IntSet`: the integer they spell, in
chunks of 65,536 consecutive values, each a sorted ``array('H')`` of the low 16 bits while it is
sparse and an 8 KiB bitmap once it is dense. Order ids, which a portal hands out in sequence,
then cost a few bits to a few bytes each. The integer is the exact key (its digit count and
letter are part of the chunk's name, so ``"0123"`` and ``"123"`` stay apart): no hash that
could make two keys look alike and drop a record. Other keys stay in a plain set.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections.abc import Hashable, Iterable, Sequence
from itertools import groupby
from typing import TypeVar

__all__ = ["RECENT_MAX", "SeenKeys"]

T = TypeVar("T")

RECENT_MAX = 1 << 16
"""Keys held in the plain set before the digit-string ones are compacted."""
_MAX_DIGITS = 18  # 10**18 < 2**63: the value fits the chunk arithmetic comfortably
_SPARSE_MAX = 4096  # a chunk with more values is a bitmap (8 KiB; 4096 x 2 bytes is as much)
_Namespace = tuple[str, int]  # (leading letter or "", number of digits)


def _spelled(key: Hashable) -> tuple[_Namespace, int] | None:
    """``(namespace, value)`` for a digit-string key (optionally after one letter), else None."""
    if not isinstance(key, str) or not key.isascii():
        return None
    text = key
    letter = "" if text[:1].isdigit() else text[:1]
    digits = text[len(letter) :]
    if not digits.isdigit() or len(digits) > _MAX_DIGITS:
        return None
    return (letter, len(digits)), int(digits)


class _IntSet:
    """Non-negative ints below 10**18 in chunks of 65,536: sorted arrays or bitmaps."""

    __slots__ = ("_chunks",)

    def __init__(self) -> None:
        self._chunks: dict[int, array[int] | bytearray] = {}

    def __contains__(self, value: int) -> bool:
        chunk = self._chunks.get(value >> 16)
        if chunk is None:
            return False
        low = value & 0xFFFF
        if chunk.__class__ is bytearray:
            return bool(chunk[low >> 3] >> (low & 7) & 1)
        i = bisect_left(chunk, low)
        return i < len(chunk) and chunk[i] == low

    def update(self, values: Iterable[int]) -> None:
        """Add many values at once (they are sorted and merged chunk by chunk)."""
        for high, group in groupby(sorted(values), key=lambda v: v >> 16):
            lows = [v & 0xFFFF for v in group]
            chunk = self._chunks.get(high)
            if chunk.__class__ is bytearray:
                for low in lows:
                    chunk[low >> 3] |= 1 << (low & 7)
                continue
            merged = sorted({*lows, *(chunk or ())})
            if len(merged) <= _SPARSE_MAX:
                self._chunks[high] = array("H", merged)
                continue
            bitmap = bytearray(8192)
            for low in merged:
                bitmap[low >> 3] |= 1 << (low & 7)
            self._chunks[high] = bitmap

    def nbytes(self) -> int:
        """Bytes held by the chunks' buffers (for the benchmark's memory account)."""
        return sum(
            len(c) if isinstance(c, bytearray) else c.itemsize * len(c)
            for c in self._chunks.values()
        )


class SeenKeys:
    """An exact set of record keys that grows by a few bytes per digit-string key."""

    __slots__ = ("_compacted", "_numbers", "_others", "_recent")

    def __init__(self) -> None:
        self._recent: set[Hashable] = set()  # the newest keys: the fast path
        self._others: set[Hashable] = set()  # compacted keys that are not digit strings
        self._numbers: dict[_Namespace, _IntSet] = {}
        self._compacted = False

    def keep_new(self, items: Sequence[T], keys: Sequence[Hashable | None]) -> Sequence[T]:
        """The items whose key was not kept before, in order, each key once; their keys are
        kept from now on. An item whose key is None always passes.

        A page of keys that are all new (the usual case) is taken with set operations in C.
        """
        recent = self._recent
        if not self._compacted and None not in keys and recent.isdisjoint(keys):
            before = len(recent)
            recent.update(keys)
            if len(recent) == before + len(keys):  # no key twice on this page
                self._compact_if_full()
                return items
            recent.difference_update(keys)  # undo, then take the page one key at a time
        kept = []
        for item, key in zip(items, keys, strict=True):
            if key is None:
                kept.append(item)
            elif key not in recent and not (self._compacted and self._in_compacted(key)):
                recent.add(key)
                kept.append(item)
        self._compact_if_full()
        return kept

    def _in_compacted(self, key: Hashable) -> bool:
        spelled = _spelled(key)
        if spelled is None:
            return key in self._others
        numbers = self._numbers.get(spelled[0])
        return numbers is not None and spelled[1] in numbers

    def _compact_if_full(self) -> None:
        """Move the newest keys into the compact stores once there are ``RECENT_MAX``."""
        if len(self._recent) <= RECENT_MAX:
            return
        by_space: dict[_Namespace, list[int]] = {}
        for key in self._recent:
            spelled = _spelled(key)
            if spelled is None:
                self._others.add(key)
            else:
                by_space.setdefault(spelled[0], []).append(spelled[1])
        for space, values in by_space.items():
            self._numbers.setdefault(space, _IntSet()).update(values)
        self._recent = set()
        self._compacted = True
