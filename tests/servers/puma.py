"""The sandbox shop on a real Puma on 127.0.0.1 for the tests: single mode, cluster mode, and a
Puma without rbtrace. Each runs in a temporary directory on a free port, is stopped by PID, and
reads a small shop database (``shop_dsn``) in which user 2's latest order is 'paid' with no
payment: ``POST /checkout`` as user 2 raises NoMethodError in ``Shop::Payment#capture!``, as user
1 it succeeds.

Skips the test when the machine has no Puma with rbtrace (names the Debian package).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ladder.sandbox import shop
from ladder.sandbox.shop import ShopServer
from servers import not_installed

__all__ = [
    "FAILING_USER", "OK_USER", "puma", "puma_as_nobody", "puma_cluster", "puma_plain", "shop_dsn",
]  # fmt: skip

OK_USER, FAILING_USER = "1", "2"

_SEED = """
INSERT INTO users (id, email, created_at, updated_at)
  VALUES (1, 'ok@example.test', now(), now()), (2, 'failing@example.test', now(), now());
INSERT INTO orders (id, user_id, status, total_cents, created_at)
  VALUES (10, 1, 'paid', 1500, now()), (20, 2, 'paid', 2500, now());
INSERT INTO payments (id, order_id, amount_cents, status, created_at)
  VALUES (100, 10, 1500, 'authorized', now());
"""


@pytest.fixture(scope="module")
def shop_dsn(pg_cluster) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """A shop database with the incident's defect, for a module's Puma servers."""
    from ladder.connectors.postgres import connect, create_database, drop_database
    from ladder.sandbox.shop_schema import create_tables

    name = "trace_shop"
    drop_database(pg_cluster.dsn(), name)
    create_database(pg_cluster.dsn(), name)
    with connect(pg_cluster.dsn(name)) as conn:
        create_tables(conn)
        conn.execute(_SEED)
    try:
        yield pg_cluster.dsn(name)
    finally:
        drop_database(pg_cluster.dsn(), name)


def _serve(directory: Path, dsn: str, **kwargs: object) -> Iterator[ShopServer]:
    missing = shop.available()
    if missing:
        not_installed("Puma with rbtrace", missing)
    server = ShopServer(directory, dsn, **kwargs)  # type: ignore[arg-type]
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def puma(tmp_path_factory: pytest.TempPathFactory, shop_dsn: str) -> Iterator[ShopServer]:
    """The shop on Puma in single mode with rbtrace loaded, for one test."""
    yield from _serve(tmp_path_factory.mktemp("puma"), shop_dsn)


@pytest.fixture
def puma_cluster(tmp_path_factory: pytest.TempPathFactory, shop_dsn: str) -> Iterator[ShopServer]:
    """The shop on Puma in cluster mode (2 workers) with rbtrace loaded, for one test."""
    yield from _serve(tmp_path_factory.mktemp("puma-cluster"), shop_dsn, workers=2)


@pytest.fixture
def puma_plain(tmp_path_factory: pytest.TempPathFactory, shop_dsn: str) -> Iterator[ShopServer]:
    """The shop on Puma *without* rbtrace, as an app that never required it."""
    yield from _serve(tmp_path_factory.mktemp("puma-plain"), shop_dsn, rbtrace=False)


@pytest.fixture
def puma_as_nobody(shop_dsn: str) -> Iterator[ShopServer]:
    """The shop on Puma with rbtrace running as ``nobody`` while the tests (and sshd's user) are
    root, as a deploy user's Puma is. Its directory is outside pytest's 0700 tmp tree so that
    ``nobody`` can write its pidfile; skipped when the tests do not run as root."""
    import os
    import shutil
    import tempfile

    if os.geteuid() != 0:
        pytest.skip("running Puma as another user needs root")
    directory = Path(tempfile.mkdtemp(prefix="trace-puma-nobody-"))
    directory.chmod(0o777)
    try:
        yield from _serve(directory, shop_dsn, user="nobody")
    finally:
        shutil.rmtree(directory, ignore_errors=True)
