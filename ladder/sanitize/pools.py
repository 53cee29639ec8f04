"""Pools of fake values that pseudonyms are picked from.

Each pool is made once per process with ``Faker(use_weighting=False)`` seeded with a constant,
de-duplicated and sorted, so it is the same list in every run and on every machine with the same
Faker version (a Faker upgrade may change the pools, and with them every pseudonym). A pool is a
``pyarrow`` string array so that picking from it is one vectorized ``take``.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

import pyarrow as pa

POOL_SEED = 20_240_601
LOCALE = "en_US"


def _faker(offset: int):
    from faker import Faker  # imported lazily: Faker costs ~0.3 s to import

    fake = Faker(LOCALE, use_weighting=False)
    fake.seed_instance(POOL_SEED + offset)  # one seed per pool: independent of build order
    return fake


def _draw(offset: int, draws: int, make: Callable[..., str]) -> pa.Array:
    fake = _faker(offset)
    return pa.array(sorted({make(fake) for _ in range(draws)}), type=pa.string())


@cache
def first_names() -> pa.Array:
    """Every en_US first name Faker knows (~700)."""
    return _draw(1, 20_000, lambda f: f.first_name())


@cache
def last_names() -> pa.Array:
    """Every en_US last name Faker knows (~1,000)."""
    return _draw(2, 20_000, lambda f: f.last_name())


@cache
def usernames() -> pa.Array:
    """~19,000 user names (lower-case letters and digits: also valid email local parts)."""
    return _draw(3, 20_000, lambda f: f.user_name())


@cache
def addresses() -> pa.Array:
    """~10,000 one-line postal addresses ("12 Main Street, Springfield, IL 62701")."""
    return _draw(
        4,
        10_000,
        lambda f: f"{f.street_address()}, {f.city()}, {f.state_abbr()} {f.zipcode()}",
    )


@cache
def phones() -> pa.Array:
    """~71,000 North American numbers in the fictional range 555-0100..555-0199."""
    areas = [
        a
        for a in range(201, 1000)
        if (a // 10) % 10 != 9 and a % 100 != 11  # no N9X (reserved), no N11 (service codes)
    ]
    return pa.array(
        [f"+1-{a}-555-01{xx:02d}" for a in areas for xx in range(100)], type=pa.string()
    )


@cache
def hex16() -> pa.Array:
    """``"0"`` .. ``"ffff"``: the 65,536 groups an IPv6 address is written with."""
    return pa.array([f"{i:x}" for i in range(65_536)], type=pa.string())


@cache
def decimals256() -> pa.Array:
    """``"0"`` .. ``"255"``: the octets an IPv4 address is written with."""
    return pa.array([str(i) for i in range(256)], type=pa.string())


POOLS: dict[str, Callable[[], pa.Array]] = {
    "first_name": first_names,
    "last_name": last_names,
    "username": usernames,
    "address": addresses,
    "phone": phones,
}
