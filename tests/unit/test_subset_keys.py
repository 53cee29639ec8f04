"""The key store of a subset: integer keys in a compact array, anything else in a set."""

from __future__ import annotations

import numpy as np

from ladder.replica.subset.keys import KeySet, as_list, concat


def test_integer_keys_are_stored_once_and_only_new_ones_are_returned() -> None:
    keys = KeySet()
    assert as_list(keys.add([(3,), (1,), (3,)])) == [1, 3]
    assert as_list(keys.add([(2,), (3,), (1,)])) == [2]
    assert as_list(keys.add([])) == []
    assert len(keys) == 3 and keys.sorted() == [1, 2, 3]
    assert isinstance(keys.add([(9,)]), np.ndarray)  # 8 bytes a key, not a set of ints
    assert all(type(k) is int for k in keys.tolist())  # what psycopg binds


def test_composite_and_text_keys_use_a_set_and_keep_what_came_before() -> None:
    composite = KeySet()
    assert composite.add([(1, 1), (1, 2), (1, 1)]) == [(1, 1), (1, 2)]
    assert composite.sorted() == [(1, 1), (1, 2)]
    mixed = KeySet()
    mixed.add([(5,), (6,)])
    assert mixed.add([("a",), (5,)]) == ["a"]  # 5 was already there before the switch
    assert len(mixed) == 3


def test_new_keys_of_several_steps_are_concatenated() -> None:
    a = np.array([1, 2], dtype=np.int64)
    b = np.array([5], dtype=np.int64)
    assert as_list(concat(concat([], a), b)) == [1, 2, 5]
    assert concat(["x"], b) == ["x", 5]
