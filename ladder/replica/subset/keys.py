"""The keys a subset selects for one table, in as little memory as they allow.

Integer keys of one column — nearly every Rails table — live in a sorted numpy ``int64`` array:
8 bytes a key, against ~100 for a Python set of ints, so a subset of tens of millions of rows
stays well under a gigabyte. Other keys (several columns, text, uuid) keep a Python set. Rows
come from the database in bounded chunks (:func:`fetch_keys`), never as one list of tuples.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import psycopg
from psycopg import sql

FETCH_ROWS = 100_000
#: New keys of a step: an int64 array, or a list when the table's keys are not lone ints.
Keys = np.ndarray | list[Any]
_EMPTY = np.empty(0, dtype=np.int64)


class KeySet:
    """Selected keys of one table: ``add`` returns those that were new, in a form ``len``,
    ``tolist`` and ``sorted`` understand whatever the kind."""

    def __init__(self) -> None:
        self._ints: np.ndarray = _EMPTY
        self._others: set[Any] | None = None  # set once a key is not a lone int

    def __len__(self) -> int:
        return len(self._others) if self._others is not None else int(self._ints.size)

    def add(self, rows: Sequence[tuple[Any, ...]]) -> Sequence[Any]:
        """Add key rows (one tuple a row); the keys that were not there yet."""
        if not rows:
            return _EMPTY if self._others is None else []
        # one column has one type: its first value says whether the keys are ints
        if self._others is None and len(rows[0]) == 1 and type(rows[0][0]) is int:
            batch = np.unique(np.fromiter((r[0] for r in rows), np.int64, len(rows)))
            at = np.searchsorted(self._ints, batch)  # both sorted: a merge, not a re-sort
            known = at < self._ints.size
            known[known] = self._ints[at[known]] == batch[known]
            new = batch[~known]
            if new.size:
                self._ints = np.insert(self._ints, at[~known], new)
            return new
        return self._add_others(rows)

    def _add_others(self, rows: Sequence[tuple[Any, ...]]) -> list[Any]:
        if self._others is None:
            self._others = {int(k) for k in self._ints}
            self._ints = _EMPTY
        new = []
        for row in rows:
            key = row[0] if len(row) == 1 else tuple(row)
            if key not in self._others:
                self._others.add(key)
                new.append(key)
        return new

    def values(self) -> Keys:
        """The keys as they are stored: the int64 array, or a list."""
        return list(self._others) if self._others is not None else self._ints

    def tolist(self) -> list[Any]:
        """The keys as Python values, for a query parameter or literal."""
        return list(self._others) if self._others is not None else self._ints.tolist()

    def sorted(self) -> list[Any]:
        return sorted(self._others) if self._others is not None else self._ints.tolist()


def fetch_keys(
    conn: psycopg.Connection, query: sql.Composable, params: Mapping[str, object]
) -> Iterator[list[tuple[Any, ...]]]:
    """The rows of ``query`` in chunks of at most :data:`FETCH_ROWS`, through a server-side
    cursor: libpq never holds the whole result (the subset runs in a read-only transaction,
    where such a cursor lives; a hot standby allows it too)."""
    with conn.cursor(name="ladder_subset_keys") as cur:
        cur.execute(query, params)
        while rows := cur.fetchmany(FETCH_ROWS):
            yield rows


def as_list(keys: Keys) -> list[Any]:
    """Keys as a plain list (Python ints), what a query parameter or literal takes."""
    return keys.tolist() if isinstance(keys, np.ndarray) else list(keys)


def concat(a: Keys, b: Keys) -> Keys:
    """``a`` then ``b``: an array while both are arrays (or empty), else a list."""
    if isinstance(b, np.ndarray) and (isinstance(a, np.ndarray) or not a):
        return b if not len(a) else np.concatenate([a, b])
    return [*as_list(a), *as_list(b)]
