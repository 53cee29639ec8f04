"""Pools of fake values that pseudonyms are picked from.

Each pool is made once per process with ``Faker(use_weighting=False)`` seeded with a constant,
de-duplicated and sorted, so it is the same list in every run and on every machine with the same
Faker version (a Faker upgrade may change the pools, and with them every pseudonym). A pool is a
``pyarrow`` string array so that picking from it is one vectorized ``take``.

Drawing the Faker pools takes ~3 s of CPU, so each is also kept as an Arrow file in
``$LADDER_CACHE_DIR`` (default ``$XDG_CACHE_HOME/ladder`` or ``~/.cache/ladder``), named by the
Faker version, locale, seed and :data:`RECIPE` (bump it when a pool's recipe changes). A missing
or unreadable file is drawn again; an unwritable directory only costs the time.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from functools import cache
from pathlib import Path

import pyarrow as pa
import pyarrow.ipc as ipc

from ladder.settings import settings

POOL_SEED = 20_240_601
LOCALE = "en_US"
RECIPE = 1


def _faker(offset: int):
    from faker import Faker  # imported lazily: Faker costs ~0.3 s to import

    fake = Faker(LOCALE, use_weighting=False)
    fake.seed_instance(POOL_SEED + offset)  # one seed per pool: independent of build order
    return fake


def _draw(offset: int, draws: int, make: Callable[..., str]) -> pa.Array:
    path = _cache_file(offset, draws)
    cached = _read(path) if path else None
    if cached is not None:
        return cached
    fake = _faker(offset)
    pool = pa.array(sorted({make(fake) for _ in range(draws)}), type=pa.string())
    if path:
        _write(path, pool)
    return pool


def cache_dir() -> Path:
    """Where drawn pools are kept (``LADDER_CACHE_DIR``, see ladder.settings)."""
    return settings().cache_dir


@cache
def _faker_version() -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("faker")
    except PackageNotFoundError:
        return None


def _cache_file(offset: int, draws: int) -> Path | None:
    faker_version = _faker_version()
    if faker_version is None:  # no version, no cache: draw every time
        return None
    name = f"pool-{LOCALE}-{POOL_SEED}-{offset}-{draws}-r{RECIPE}-faker{faker_version}.arrow"
    return cache_dir() / "pools" / name


def _read(path: Path) -> pa.Array | None:
    try:
        with ipc.open_file(path) as f:
            table = f.read_all()
        col = table.column(0).combine_chunks()
        return col if col.type == pa.string() and len(col) else None
    except (OSError, pa.ArrowException, IndexError):
        return None


def _write(path: Path, pool: pa.Array) -> None:
    """Atomically (a temporary file renamed): concurrent runs never see half a file."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".pool-", suffix=".tmp")
        try:
            table = pa.table({"value": pool})
            with os.fdopen(fd, "wb") as sink, ipc.new_file(sink, table.schema) as writer:
                writer.write_table(table)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError:
        pass


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
