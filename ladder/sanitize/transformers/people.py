"""Pseudonyms for people: ``name``, ``first_name``, ``last_name``, ``username``, ``email``,
``phone``, ``address``. Picked from Faker-made pools by a keyed hash.

With ``unique: true`` a keyed base32 suffix (64 more bits from a second hash) is appended, so
distinct inputs give distinct outputs: a collision needs both hashes to collide, about
``n**2 / 2**78`` for ``n`` distinct values.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from pydantic import field_validator

from ladder.sanitize import pools
from ladder.sanitize.patterns import is_reserved_domain
from ladder.sanitize.registry import TransformerOptions, register
from ladder.sanitize.transformers._pseudonym import Pseudonymizer
from ladder.sanitize.transformers._vector import base32, decimal, join, pick

_HIGH = np.uint64(32)


class _PoolPseudonym(Pseudonymizer):
    """One pool entry per value, plus ``separator`` + suffix when unique."""

    pool_name: str
    separator = " "

    def render(self, h: np.ndarray, h2: np.ndarray | None, text: pa.Array) -> pa.Array:
        out = pick(pools.POOLS[self.pool_name](), h)
        return out if h2 is None else join(out, self.separator, base32(h2))


@register
class FirstName(_PoolPseudonym):
    """A first name (~700 in the pool)."""

    name = "first_name"
    pool_name = "first_name"


@register
class LastName(_PoolPseudonym):
    """A last name (~1,000 in the pool)."""

    name = "last_name"
    pool_name = "last_name"


@register
class Username(_PoolPseudonym):
    """A user name such as ``qzuniga`` (~19,000 in the pool); unique adds ``_<suffix>``."""

    name = "username"
    pool_name = "username"
    separator = "_"


@register
class Address(_PoolPseudonym):
    """A one-line US postal address (~10,000 in the pool); unique adds ``, #<suffix>``."""

    name = "address"
    pool_name = "address"
    separator = ", #"


@register
class Name(Pseudonymizer):
    """``First Last`` (~700,000 combinations); unique adds `` <suffix>``."""

    name = "name"

    def render(self, h: np.ndarray, h2: np.ndarray | None, text: pa.Array) -> pa.Array:
        first = pick(pools.first_names(), h)
        last = pick(pools.last_names(), h >> _HIGH)
        return join(first, " ", last) if h2 is None else join(first, " ", last, " ", base32(h2))


@register
class Phone(Pseudonymizer):
    """A fictional North American number ``+1-AAA-555-01XX``; unique adds ``;ext=<20 digits>``."""

    name = "phone"

    def render(self, h: np.ndarray, h2: np.ndarray | None, text: pa.Array) -> pa.Array:
        out = pick(pools.phones(), h)
        return out if h2 is None else join(out, ";ext=", decimal(h2))


class EmailOptions(TransformerOptions):
    domain: str = "example.com"

    @field_validator("domain")
    @classmethod
    def _reserved(cls, domain: str) -> str:
        domain = domain.strip().lower().rstrip(".")
        if not is_reserved_domain(domain):
            raise ValueError(
                f"domain {domain!r} is not reserved: use example.com, example.net, example.org "
                "or a name under .test, .example, .invalid or .localhost"
            )
        return domain


@register
class Email(Pseudonymizer):
    """``<user name>@<domain>`` on a reserved domain; unique: ``<user name>.<suffix>@<domain>``."""

    name = "email"
    Options = EmailOptions

    def render(self, h: np.ndarray, h2: np.ndarray | None, text: pa.Array) -> pa.Array:
        local = pick(pools.usernames(), h)
        at = "@" + self.options.domain
        return join(local, at) if h2 is None else join(local, ".", base32(h2), at)
