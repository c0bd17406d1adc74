"""One list the sandbox serves, and the changes a test makes to it between requests.

A :class:`SandboxList` is its records in page order: a *base* of generated records (held in
a list, or computed from their index on demand for totals in the millions) under an overlay
of edits. The overlay holds only what changed: records added before or after the base,
the positions of removed base records, and the changed fields of base records by key. So
changing one order of a million costs one dict entry, and a page is computed from the base
positions it covers. Every change is seen by the next request, and ``len()`` (the list's
``total``) always counts what a full read would return.

Field names are the snake_case attribute names of the library's models (``order_status``,
``end_user_info``); values are sent as given, in wire form (epoch-millisecond ints, ``Decimal``
money, ``yyyyMMddHHmmss`` strings, nested dicts and lists in the API's own spelling). Records
read back are JSON dicts in the API's spelling (``orderStatus``), copies that are safe to keep.

Everything here is deterministic: ``add()`` takes the next records of the same generator (the
seed and a running index), so two sandboxes with the same seed that are changed the same way
serve the same bytes. The data set's revisions (``_revisions``) are built from these three
operations alone.
"""

from __future__ import annotations

import bisect
import difflib
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, overload

import attrs
import msgspec

from .._validation import require_positive_int

__all__ = ["GeneratedList", "ListKind", "ProductLines", "Record", "SandboxList"]

Record = dict[str, Any]
"""One record as the API sends it: a JSON object in the API's spelling."""

_CHUNK = 1000  # records copied at a time while iterating


def snake_case(json_key: str) -> str:
    """``orderStatus`` -> ``order_status``; ``device_id`` stays as it is."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", json_key).lower()


def _clone(value: Any) -> Any:
    """A copy of a JSON tree (dicts and lists copied, scalars shared)."""
    if isinstance(value, dict):
        return {key: _clone(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_clone(item) for item in value]
    return value


def _copy(record: Record) -> Record:
    """A copy of one record that its reader may change freely."""
    return {key: _clone(value) for key, value in record.items()}


class GeneratedList(Sequence[Record]):
    """A read-only list whose item ``i`` is computed on demand (no memory per record)."""

    def __init__(self, size: int, make: Callable[[int], Record]) -> None:
        self._size = size
        self._make = make
        self._last: tuple[int, Record] | None = None  # finding and changing one reads it twice

    def __len__(self) -> int:
        return self._size

    @overload
    def __getitem__(self, index: int) -> Record: ...
    @overload
    def __getitem__(self, index: slice) -> list[Record]: ...
    def __getitem__(self, index: int | slice) -> Record | list[Record]:
        if isinstance(index, slice):
            return [self._item(i) for i in range(*index.indices(self._size))]
        if not -self._size <= index < self._size:
            raise IndexError(index)
        return self._item(index % self._size)

    def _item(self, index: int) -> Record:
        last = self._last
        if last is None or last[0] != index:
            last = self._last = (index, self._make(index))
        return last[1]

    def __iter__(self) -> Iterator[Record]:
        return (self._make(i) for i in range(self._size))


@attrs.frozen
class ListKind:
    """What a :class:`SandboxList` needs to know about the records of one list."""

    name: str
    """The list, for messages: ``"orders"``, ``"products of line 13"``."""
    noun: str
    """One record, for messages: ``"order"``."""
    key_field: str
    """The JSON key that identifies a record: ``"id"``, ``"productNo"``, ``"orderCode"``."""
    fields: tuple[str, ...]
    """Every JSON key a record may carry."""
    make: Callable[[int], Record]
    """Record number ``index`` of the generator (0 = the first, oldest one)."""
    index_of: Callable[[str], int | None]
    """The generator index whose record would carry this key, or None (the inverse of
    ``make``, so a key is found among a million generated records without generating them)."""
    newest_first: bool
    """Whether the list is served newest first (new records go before the base, not after)."""


class SandboxList(Sequence[Record]):
    """One list the sandbox serves, in page order, that a test can change between requests.

    Read it like a sequence (``len()``, ``[i]``, slices, iteration: copies of the records as
    served) or by key (``get``, ``in``); change it with :meth:`add`, :meth:`change` and
    :meth:`remove`. Keys are strings: order ``id``, product ``productNo``, package order
    ``orderCode``.
    """

    def __init__(self, kind: ListKind, size: int, *, generated: bool) -> None:
        self.kind = kind
        self._size = size
        at = (lambda position: kind.make(size - 1 - position)) if kind.newest_first else kind.make
        self._base: Sequence[Record] = (
            GeneratedList(size, at) if generated else [at(position) for position in range(size)]
        )
        self._removed: list[int] = []  # base positions, sorted
        self._removed_set: set[int] = set()
        self._patches: dict[str, Record] = {}  # key -> changed JSON fields of a base record
        self._head: list[Record] = []  # added records served before the base
        self._tail: list[Record] = []  # added records served after it
        self._added: dict[str, Record] = {}  # key -> the added record (in head or tail)
        self._issued: set[str] = set()  # every key add() has used, removed ones included
        self._next_index = size
        self._fields: dict[str, tuple[str, ...]] = {}
        for json_key in kind.fields:
            self._fields.setdefault(snake_case(json_key), ())
            self._fields[snake_case(json_key)] += (json_key,)

    def __repr__(self) -> str:
        return f"<SandboxList {self.kind.name}: {len(self)} records>"

    @property
    def key_field(self) -> str:
        """The JSON key that identifies a record (``"id"``, ``"productNo"``, ``"orderCode"``)."""
        return self.kind.key_field

    @property
    def fields(self) -> tuple[str, ...]:
        """The field names :meth:`add` and :meth:`change` accept (snake_case)."""
        return tuple(self._fields)

    # --- reading -------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._head) + self._size - len(self._removed) + len(self._tail)

    @overload
    def __getitem__(self, index: int) -> Record: ...
    @overload
    def __getitem__(self, index: slice) -> list[Record]: ...
    def __getitem__(self, index: int | slice) -> Record | list[Record]:
        total = len(self)
        if isinstance(index, slice):
            start, stop, step = index.indices(total)
            if step == 1:
                return [_copy(record) for record in self._span(start, stop)]
            return [_copy(self._span(i, i + 1)[0]) for i in range(start, stop, step)]
        if not -total <= index < total:
            raise IndexError(f"{self.kind.name} index out of range: {index}")
        position = index % total
        return _copy(self._span(position, position + 1)[0])

    def __iter__(self) -> Iterator[Record]:
        start = 0
        while start < len(self):
            chunk = self._span(start, start + _CHUNK)
            start += len(chunk)
            yield from map(_copy, chunk)

    def __contains__(self, key: object) -> bool:
        """``key in sandbox.orders``: whether a record with this key is served."""
        return isinstance(key, str) and self._find(key) is not None

    def get(self, key: str) -> Record | None:
        """A copy of the record with this key as it is served now, or None."""
        found = self._find(self._check_key(key))
        return None if found is None else _copy(self._record(found))

    def _span(self, start: int, stop: int) -> list[Record]:
        """The records served at positions ``start`` to ``stop`` (not copies: the server's
        page, which must not be modified)."""
        head, body = len(self._head), self._size - len(self._removed)
        out = self._head[start:stop] if start < head else []
        low, high = max(start, head) - head, min(stop, head + body) - head
        if low < high:
            out.extend(self._base_records(low, high - low))
        low, high = max(start, head + body) - head - body, stop - head - body
        if low < high:
            out.extend(self._tail[low:high])
        return out

    def _base_records(self, first: int, count: int) -> list[Record]:
        """``count`` base records from the ``first`` one still served, changes applied."""
        if not self._removed:
            records = list(self._base[first : first + count])
        else:
            position, removed, records = self._base_position(first), self._removed_set, []
            while len(records) < count and position < self._size:
                if position not in removed:
                    records.append(self._base[position])
                position += 1
        if self._patches:
            key, patches = self.kind.key_field, self._patches
            records = [
                {**record, **patches[record[key]]} if record[key] in patches else record
                for record in records
            ]
        return records

    def _base_position(self, served: int) -> int:
        """The base position of the ``served``-th base record still served: the smallest
        ``p`` with ``p - (removed positions <= p) == served`` (never a removed one)."""
        position = served
        while True:
            moved = served + bisect.bisect_right(self._removed, position)
            if moved == position:
                return position
            position = moved

    # --- finding a record by key ---------------------------------------------------------

    def _check_key(self, key: object) -> str:
        if not isinstance(key, str):
            raise TypeError(
                f"{self.kind.noun} keys ({self.kind.key_field}) are strings, "
                f"not {type(key).__name__}: {key!r:.80}"
            )
        return key

    def _locate(self, key: str) -> int | None:
        """The base position of the generated record with this key (removed or not)."""
        index = self.kind.index_of(key)
        if index is None or not 0 <= index < self._size:
            return None
        position = self._size - 1 - index if self.kind.newest_first else index
        return position if self._base[position][self.kind.key_field] == key else None

    def _find(self, key: str) -> Record | int | None:
        """The added record with this key, or the base position of the served one."""
        added = self._added.get(key)
        if added is not None:
            return added
        position = self._locate(key)
        return None if position is None or position in self._removed_set else position

    def _record(self, found: Record | int) -> Record:
        if isinstance(found, dict):
            return found
        record = self._base[found]
        patch = self._patches.get(record[self.kind.key_field])
        return record if patch is None else {**record, **patch}

    def _found(self, key: object) -> Record | int:
        checked = self._check_key(key)
        found = self._find(checked)
        if found is None:
            gone = checked in self._issued or self._locate(checked) is not None
            raise KeyError(
                f"no {self.kind.noun} with {self.kind.key_field} {checked!r:.80} "
                f"in the sandbox's {self.kind.name}" + (" (it was removed)" if gone else "")
            )
        return found

    # --- changing ------------------------------------------------------------------------

    def add(self, count: int = 1, **fields: Any) -> list[Record]:
        """Add ``count`` new records, each with ``fields`` set; return copies of them.

        The records are the generator's next ones (deterministic for the seed), with keys
        that no record of this list has ever had, placed where new records appear: at the
        head of a newest-first list (orders), at the end of the others. The key field may be
        set only when adding one record, to a key that is not served.
        """
        count = require_positive_int("count", count)
        values = self._json_fields(fields, adding=True)
        key_field = self.kind.key_field
        if key_field in values:
            if count != 1:
                raise ValueError(
                    f"{snake_case(key_field)} may be set only when adding one "
                    f"{self.kind.noun} (count={count})"
                )
            if self._find(self._check_key(values[key_field])) is not None:
                raise ValueError(
                    f"{snake_case(key_field)} {values[key_field]!r:.80} is "
                    f"served already in {self.kind.name}"
                )
        added = []
        for _ in range(count):
            record = {**self._fresh(), **_copy(values)}
            self._issued.add(record[key_field])
            self._added[record[key_field]] = record
            added.append(record)
        if self.kind.newest_first:
            self._head[:0] = reversed(added)  # the newest is served first
        else:
            self._tail.extend(added)
        return [_copy(record) for record in added]

    def change(self, key: str, **fields: Any) -> Record:
        """Set ``fields`` of the record with this key; return a copy of it as now served.

        Raises KeyError for a key that is not served, TypeError for an unknown field or a
        value JSON cannot carry, ValueError for the key field (remove and add instead).
        """
        if not fields:
            raise TypeError("change() needs at least one field to set")
        values = self._json_fields(fields, adding=False)
        found = self._found(key)
        if isinstance(found, dict):
            found.update(_copy(values))
        else:
            self._patches.setdefault(key, {}).update(_copy(values))
        return _copy(self._record(found))

    def remove(self, key: str) -> Record:
        """Stop serving the record with this key; return a copy of it as it was served.

        Raises KeyError for a key that is not served (unknown, or removed already).
        """
        found = self._found(key)
        record = _copy(self._record(found))
        if isinstance(found, dict):
            del self._added[key]
            side = self._head if any(item is found for item in self._head) else self._tail
            del side[next(i for i, item in enumerate(side) if item is found)]
        else:
            bisect.insort(self._removed, found)
            self._removed_set.add(found)
            self._patches.pop(key, None)
        return record

    def _fresh(self) -> Record:
        """The generator's next record whose key this list has never used."""
        while True:
            record = self.kind.make(self._next_index)
            self._next_index += 1
            key = record[self.kind.key_field]
            if key not in self._issued:
                return record

    def _json_fields(self, fields: Mapping[str, Any], *, adding: bool) -> Record:
        """The JSON keys and values for snake_case ``fields``, checked."""
        values: Record = {}
        for name, value in fields.items():
            json_keys = self._fields.get(name)
            if json_keys is None:
                raise TypeError(self._unknown_field(name))
            if not adding and json_keys[0] == self.kind.key_field:
                raise ValueError(
                    f"{name} is the key of {self.kind.name} and cannot be "
                    "changed: remove the record and add one with the new key"
                )
            try:
                msgspec.json.encode(value)
            except (TypeError, ValueError, OverflowError) as error:
                raise TypeError(
                    f"{name}: a value of type {type(value).__name__} cannot be "
                    f"sent as JSON ({error})"
                ) from None
            values.update(dict.fromkeys(json_keys, value))
        return values

    def _unknown_field(self, name: str) -> str:
        message = f"{self.kind.name} have no field {name!r}"
        guess = snake_case(name)
        if guess not in self._fields:
            close = difflib.get_close_matches(name, list(self._fields), n=1)
            guess = close[0] if close else ""
        if guess:
            return f"{message}; did you mean {guess!r}?"
        return f"{message}; fields: {', '.join(self._fields)}"


class ProductLines(Mapping[int, SandboxList]):
    """The product lists by product line id (``productId``): ``sandbox.products[13]``."""

    def __init__(self, lines: Mapping[int, SandboxList]) -> None:
        self._lines = dict(lines)

    def __getitem__(self, line: int) -> SandboxList:
        try:
            return self._lines[line]
        except KeyError:
            known = ", ".join(map(str, self._lines))
            raise KeyError(
                f"the sandbox has no product line {line!r:.80} (it has {known})"
            ) from None

    def __iter__(self) -> Iterator[int]:
        return iter(self._lines)

    def __len__(self) -> int:
        return len(self._lines)

    def __repr__(self) -> str:
        return f"<ProductLines {list(self._lines)}>"
